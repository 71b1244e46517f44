"""Cost against resolution, log-log, one line per model: flops.png, memory.png, latency.png.

On log-log axes a cost linear in pixels is a straight line of slope 2 against the side length, so
models that scale alike are parallel and the vertical gap between lines is their cost ratio.
matplotlib is imported only here, and lazily, with the file-only Agg backend.
"""

from __future__ import annotations

from pathlib import Path

from serpentir.atomic_write import atomic_path

from .cost import CostRow


def _series(rows: list[CostRow], column: str, scale: float) -> dict[str, tuple[list[int], list[float]]]:
    out: dict[str, tuple[list[int], list[float]]] = {}
    for r in sorted(rows, key=lambda r: r.size):
        v = getattr(r, column)
        if isinstance(v, (int, float)) and v > 0:
            xs, ys = out.setdefault(r.model, ([], []))
            xs.append(r.size)
            ys.append(v / scale)
    return out


def _draw(ax, rows: list[CostRow], column: str, scale: float, ylabel: str, title: str) -> None:
    sizes = sorted({r.size for r in rows})
    for model, (xs, ys) in _series(rows, column, scale).items():
        ax.plot(xs, ys, marker="o", label=model)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(sizes, [str(s) for s in sizes])
    ax.set_xlabel("input size (pixels per side, square)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small", loc="upper left")


def plot_costs(rows: list[CostRow], out_dir: str | Path) -> list[Path]:
    """Write flops.png, memory.png and latency.png into out_dir (atomically); return their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    figures = {
        "flops.png": [("flops", 1e9, "GFLOPs (forward)", "FLOPs")],
        "memory.png": [("infer_peak_mb", 1.0, "peak memory growth (MB)", "inference"),
                       ("train_peak_mb", 1.0, "peak memory growth (MB)", "training step")],
        "latency.png": [("latency_ms", 1.0, "median latency (ms)", "inference latency")],
    }
    paths = []
    for filename, panels in figures.items():
        fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.8), squeeze=False)
        for ax, (column, scale, ylabel, title) in zip(axes[0], panels):
            _draw(ax, rows, column, scale, ylabel, title)
        fig.tight_layout()
        path = out / filename
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths
