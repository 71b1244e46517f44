"""Learning curves per degradation strength: a blind run's numbered checkpoints scored as its model card scores them.

A run's own validation PSNR mixes every degradation, so it cannot say whether blur or JPEG is still
improving. Issue 18 lets a floor be declared out of reach only with a curve that has flattened
(under 0.05 dB per 1000 steps) below it. This scores the run's numbered checkpoints on the card's
held-out photos and strengths (LPIPS left out: it does not enter the gains). It reports each
strength's gain, its slope over the last 1000 steps, and the floor it is held to. Each checkpoint's
scores are cached, so a curve extended later only scores the new steps.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from serpentir.atomic_write import write_text_atomic
from serpentir.errors import UserError
from serpentir.train import numbered_checkpoints

from .blind_validation import evaluate_strengths, load_val_photos
from .regression_gate import row_score

# issue 18's floors per strength (gain in dB; sharp photos: output PSNR)
FLOORS: dict[str, dict[str, float]] = {
    "general": {"sharp photo, no degradation": 38.0, "Gaussian blur sigma 1": 1.0, "Gaussian blur sigma 2": 1.0,
                "camera shake 15 px": 0.5, "noise 10/255": 4.0, "noise 25/255": 4.0, "JPEG q30": 0.5,
                "blur 1.5 + noise 10/255 + JPEG q50": 1.5},
    "deblur": {"Gaussian blur sigma 1.0": 1.5, "Gaussian blur sigma 2.0": 1.5},
    "jpeg_blind": {"JPEG q10": 1.0, "JPEG q30": 1.0, "JPEG q95": 0.0},
    "motion_deblur": {"motion_deblur draws, one per photo": 1.0},
}
FLAT_DB_PER_1000 = 0.05
CACHE = "class_curve_scores.json"


def checkpoints_every(run_dir: Path, every: int) -> list[tuple[int, Path]]:
    """(step, path) of the run's numbered checkpoints whose step is a multiple of `every`."""
    found = [(step, path) for step, path in numbered_checkpoints(run_dir) if step % every == 0]
    if not found:
        raise UserError(f"{run_dir}: no numbered checkpoints at multiples of {every} steps in checkpoints/")
    return found


def score_checkpoint(path: Path, photos) -> dict[str, float]:
    """Strength label -> mean gain over the photos (for sharp photos: the mean output PSNR)."""
    from serpentir.checkpoint import load_checkpoint

    model, task, _ = load_checkpoint(path, use_ema=True)
    rows = evaluate_strengths(model, task, photos, with_lpips=False, progress=False)
    return {r.label: row_score(r) for r in rows}


def class_curve(run_dir: str | Path, corpus_dir: str | Path, out_dir: str | Path, *, every: int = 500,
                max_side: int | None = 768, progress: bool = True) -> list[dict]:
    """Score every `every`-th checkpoint of the run (cached in out_dir); rows of step and gains, in step order."""
    from tqdm import tqdm

    run_dir, out_dir = Path(run_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cache_path = out_dir / CACHE
    key = scoring_key(corpus_dir, max_side)
    cache = json.loads(cache_path.read_text()) if cache_path.is_file() else {}
    if cache.get("key") != key:
        cache = {"key": key, "steps": {}}
    photos = None
    for step, path in tqdm(checkpoints_every(run_dir, every), desc="checkpoints", disable=not progress):
        entry = cache["steps"].get(str(step))
        mtime = path.stat().st_mtime
        if entry is None or entry["mtime"] != mtime:
            photos = photos or load_val_photos(Path(corpus_dir) / "val", max_side)
            cache["steps"][str(step)] = {"mtime": mtime, "gains": score_checkpoint(path, photos)}
            write_text_atomic(cache_path, json.dumps(cache, indent=1))
    return rows_of(cache)


def scoring_key(corpus_dir: str | Path, max_side: int | None) -> dict:
    """What a curve's scores depend on besides the checkpoints: the held-out photos and their size."""
    return {"corpus": str(Path(corpus_dir).resolve()), "max_side": max_side}


def rows_of(cache: dict) -> list[dict]:
    """A cache's rows of step and gains, in step order."""
    return [{"step": int(s), **e["gains"]} for s, e in sorted(cache["steps"].items(), key=lambda kv: int(kv[0]))]


def cached_rows(curve_dir: str | Path) -> tuple[dict, list[dict]]:
    """The scoring key and the rows of an earlier curve, read from its folder's cache."""
    cache_path = Path(curve_dir) / CACHE
    if not cache_path.is_file():
        raise UserError(f"{curve_dir}: no {CACHE} (the --out folder of an earlier class_curve run)")
    cache = json.loads(cache_path.read_text())
    return cache["key"], rows_of(cache)


def continued(earlier: list[dict], later: list[dict]) -> list[dict]:
    """One curve of two rounds trained one after the other: the later round's steps count on from the earlier's last.

    A round that warm-starts from the weights the earlier one ended with, at the same constant rate,
    continues the same curve; joined, the fitted slope can span both rounds."""
    if not earlier:
        return list(later)
    if later and set(earlier[0]) != set(later[0]):
        raise UserError("the two rounds are scored on different strengths: their curves cannot be joined")
    offset = earlier[-1]["step"]
    return list(earlier) + [{**r, "step": r["step"] + offset} for r in later]


def last_slope(rows: list[dict], label: str, span: int = 1000) -> float | None:
    """dB per 1000 steps between the last row and the row `span` steps before it (None if the run is shorter)."""
    last = rows[-1]
    earlier = [r for r in rows if r["step"] <= last["step"] - span]
    if not earlier:
        return None
    first = earlier[-1]
    return (last[label] - first[label]) * 1000 / (last["step"] - first["step"])


def fitted_slope(rows: list[dict], label: str, span: int = 3000) -> tuple[float, float, float] | None:
    """dB per 1000 steps of the least-squares line through the rows of the last `span` steps, with its 95%
    interval (Student's t on n - 2 degrees of freedom); None under 3 rows.

    At a constant learning rate the EMA weights wander by about 0.1 dB between checkpoints, which two
    endpoints 1000 steps apart read as a slope; a line through several checkpoints is steadier, and its
    interval says whether the curve is flat within the issue's 0.05 dB per 1000 steps or too short to tell."""
    import numpy as np
    from scipy import stats

    last = rows[-1]["step"]
    x, y = (np.array(v, dtype=float) for v in zip(*[(r["step"] / 1000, r[label]) for r in rows if r["step"] >= last - span]))
    if len(x) < 3 or not np.isfinite(y).all():  # sharp photos restored exactly score an infinite PSNR
        return None
    slope, intercept = np.polyfit(x, y, 1)
    stderr = np.sqrt(np.sum((y - slope * x - intercept) ** 2) / (len(x) - 2) / np.sum((x - x.mean()) ** 2))
    half = stats.t.ppf(0.975, len(x) - 2) * stderr
    return float(slope), float(slope - half), float(slope + half)


def curve_table(rows: list[dict], task_name: str, fit_span: int = 3000) -> str:
    """Markdown: per strength, its gain at the first and last scored step, the last 1000 steps' slope (the
    reading's), the fitted slope over the last `fit_span` steps beside it, and the floor."""
    floors = FLOORS.get(task_name, {})
    labels = [k for k in rows[0] if k != "step"]
    lines = [f"| strength | step {rows[0]['step']} | step {rows[-1]['step']} | slope over the last 1000 steps "
             f"(dB per 1000) | fitted slope, last {fit_span} steps [95% interval] | floor | reading |", "|---|---:|---:|---:|---:|---:|---|"]
    for label in labels:
        slope, floor, fitted = last_slope(rows, label), floors.get(label), fitted_slope(rows, label, fit_span)
        value = rows[-1][label]
        if floor is None:
            reading = "-"
        elif value >= floor:
            reading = "met"
        elif slope is None:
            reading = "below, run too short to judge"
        elif abs(slope) < FLAT_DB_PER_1000:
            reading = "below, flat"
        elif fitted is not None and -FLAT_DB_PER_1000 < fitted[1] and fitted[2] < FLAT_DB_PER_1000:
            reading = "below, flat by the fitted line (its interval within 0.05; the last 1000 steps wander)"
        else:
            reading = "below, still " + ("rising" if slope > 0 else "falling")
        lines.append(f"| {label} | {rows[0][label]:.2f} | {value:.2f} | "
                     f"{'-' if slope is None else f'{slope:+.3f}'} | "
                     f"{'-' if fitted is None else '{:+.3f} [{:+.3f}, {:+.3f}]'.format(*(round(v, 6) + 0.0 for v in fitted))} | "
                     f"{'-' if floor is None else f'{floor:g}'} | {reading} |")
    return "\n".join(lines)


def curve_csv(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in r.items()} for r in rows)
    return out.getvalue()


def plot_curve(rows: list[dict], task_name: str, path: Path, title: str) -> None:
    """Gain per strength against the step (sharp photos on their own axis), floors dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    floors = FLOORS.get(task_name, {})
    labels = [k for k in rows[0] if k != "step"]
    sharp = [k for k in labels if k.startswith("sharp")]
    gains = [k for k in labels if k not in sharp]
    fig, axes = plt.subplots(1, 2 if sharp else 1, figsize=(12 if sharp else 8, 4.5), squeeze=False,
                             gridspec_kw={"width_ratios": [3, 1]} if sharp else None)
    steps = [r["step"] for r in rows]
    for ax, group, ylabel in ((axes[0][0], gains, "gain over the input (dB)"),
                              *(((axes[0][1], sharp, "sharp photos: output PSNR (dB)"),) if sharp else ())):
        for i, label in enumerate(group):
            line, = ax.plot(steps, [r[label] for r in rows], marker="o", ms=3, label=label, color=f"C{i}")
            if label in floors:
                ax.axhline(floors[label], ls="--", lw=0.8, color=line.get_color())
        ax.set_xlabel("step")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title + " (dashed: the floors)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_curve(rows: list[dict], task_name: str, out_dir: Path, *, title: str, command: str,
                fit_span: int = 3000) -> Path:
    """class_curve.csv, class_curve.png and class_curve.md in out_dir; returns the markdown's path."""
    out_dir = Path(out_dir)
    write_text_atomic(out_dir / "class_curve.csv", curve_csv(rows))
    plot_curve(rows, task_name, out_dir / "class_curve.png", title)
    text = (f"# {title}\n\nEach numbered checkpoint's EMA weights, scored as the model card scores them (the "
            f"held-out photos, whole, long side capped; gain = output minus input PSNR, mean over photos). A floor "
            f"counts as out of reach only where the curve is flat (under {FLAT_DB_PER_1000} dB per 1000 steps) "
            f"below it.\n\n{curve_table(rows, task_name, fit_span)}\n\n![gain per strength against the step](class_curve.png)\n\n"
            f"Per step: `class_curve.csv`. Produced by `{command}`.\n")
    write_text_atomic(out_dir / "class_curve.md", text)
    return out_dir / "class_curve.md"
