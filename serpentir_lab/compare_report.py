"""A comparison written out: compare.csv, compare.md and quality_vs_flops.png (quality against compute).

The plot puts forward GFLOPs on a log axis and quality on a linear one, with the degraded input and
the classical method as horizontal lines: "on par at a fraction of the cost" reads as a point level
with the others and far to their left.
"""

from __future__ import annotations

import csv
import io
import math
import os
import platform
from datetime import datetime, timezone
from pathlib import Path

import torch

from serpentir.atomic_write import atomic_path, write_text_atomic
from serpentir.ops import SCAN_FLOP_FORMULA

from .compare import Comparison, CompareRow

MACS_NOTE = ("matmuls and convolutions: FlopCounterMode's count / 2; scans: the formula's MACs; FLOPs = 2 x MACs "
             "for every model, scans included, the one rule of every report here; the field's 'FLOPs' are often MACs")

CSV_COLUMNS = ("run", "model", "params", "flops_256", "flops_512", "macs_256", "macs_512", "latency_ms",
               "train_seconds", "step", "psnr", "ssim", "lpips")


def format_cell(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def csv_text(c: Comparison) -> str:
    """One row per run, then the references (input and classical method) with empty cost cells."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in c.rows:
        writer.writerow([r.run, r.model, r.params, r.flops.get(256, ""), r.flops.get(512, ""), r.macs.get(256, ""),
                         r.macs.get(512, ""), format_cell(r.latency_ms), format_cell(r.train_seconds), r.step,
                         format_cell(r.psnr), format_cell(r.ssim), format_cell(r.lpips)])
    for label, s in c.references.items():
        name = "degraded input" if label == "input" else c.classical_method
        writer.writerow(["", name] + [""] * 8 + [format_cell(s["psnr"]), format_cell(s["ssim"]), format_cell(s["lpips"])])
    return buffer.getvalue()


def _gflops(r: CompareRow, size: int) -> str:
    return f"{r.flops[size] / 1e9:.2f}" if size in r.flops else "-"


def _gmacs(r: CompareRow, size: int) -> str:
    return f"{r.macs[size] / 1e9:.2f}" if size in r.macs else "-"


def _latency(r: CompareRow) -> str:
    if isinstance(r.latency_ms, (int, float)):
        return f"{r.latency_ms / 1000:.2f}"
    return f"**{r.latency_ms}**" if r.latency_ms else "-"


def _minutes(r: CompareRow) -> str:
    return f"{r.train_seconds / 60:.1f}" if r.train_seconds is not None else "-"


def _score(v: float, digits: int) -> str:
    return "-" if v is None or math.isnan(v) else f"{v:.{digits}f}"


def markdown_text(c: Comparison) -> str:
    """compare.md: the table, the references, what each column means, and every caveat found."""
    lat = f"CPU latency {c.latency_size} (s)" if c.latency_size else "latency"
    lines = [
        f"# Comparison on `{c.task}`",
        "",
        f"Scored on the whole held-out photos {', '.join(c.val_photos)} (mean; degradation seeded per image, "
        "the same for every model). Machine: "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}; "
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC.",
        "",
        f"| model | params | GFLOPs 256 | GFLOPs 512 | GMACs 512 | {lat} | training (min) | steps | PSNR (dB) | SSIM "
        "| LPIPS |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in sorted(c.rows, key=lambda r: r.flops.get(512, 0)):
        lines.append(f"| {r.model} | {r.params / 1e6:.2f}M | {_gflops(r, 256)} | {_gflops(r, 512)} | {_gmacs(r, 512)} "
                     f"| {_latency(r)} | "
                     f"{_minutes(r)} | {r.step} | {_score(r.psnr, 2)} | {_score(r.ssim, 4)} | {_score(r.lpips, 4)} |")
    for label, s in c.references.items():
        name = "degraded input" if label == "input" else c.classical_method
        if label != "input" and s.get("strength") is not None:
            name += f" (strength {s['strength']:.3g}, tuned on these photos)"
        lines.append(f"| {name} | | | | | | | | {_score(s['psnr'], 2)} | {_score(s['ssim'], 4)} | "
                     f"{_score(s['lpips'], 4)} |")
    serpents = [r for r in c.rows if r.model.startswith("serpent")]
    if serpents and len(c.rows) > 1:
        ref = max(serpents, key=lambda r: r.psnr)
        lines += ["", f"Against {ref.model} ({ref.run}):", ""]
        for r in c.rows:
            if r is ref:
                continue
            ratio = r.flops.get(512, 0) / ref.flops[512] if ref.flops.get(512) else math.nan
            lines.append(f"- {r.model}: {r.psnr - ref.psnr:+.2f} dB PSNR, {r.ssim - ref.ssim:+.4f} SSIM, "
                         f"{r.lpips - ref.lpips:+.4f} LPIPS (lower is better), {ratio:.2f}x the FLOPs at 512, "
                         f"{r.params / ref.params:.2f}x the parameters")
    lines += [
        "",
        "Columns: MACs are forward multiply-accumulates for one 3-channel image (matmuls and convolutions by "
        f"torch's FlopCounterMode, selective scans by the formula `{SCAN_FLOP_FORMULA}`) and FLOPs are twice "
        f"them ({MACS_NOTE}); latency is the "
        f"median of timed forward passes at batch 1 in a fresh process (torch threads: {c.threads or 'all'}), "
        "after a warm-up; "
        "training time is the logged wall time of the training loop (periodic validation included). "
        "PSNR/SSIM on RGB, no border crop; LPIPS-alex v0.1, lower is better.",
    ]
    if c.notes:
        lines += ["", "Notes:", ""] + [f"- {n}" for n in c.notes]
    return "\n".join(lines) + "\n"


def plot_quality_vs_flops(c: Comparison, path: str | Path, size: int = 512) -> Path:
    """Two panels, PSNR and LPIPS against GFLOPs at `size` (log axis), references as dashed lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    for ax, metric, label in ((axes[0], "psnr", "PSNR (dB), higher is better"),
                              (axes[1], "lpips", "LPIPS-alex, lower is better")):
        for r in c.rows:
            serpent = r.model.startswith("serpent")
            ax.scatter(r.flops[size] / 1e9, getattr(r, metric), s=60 + 200 * r.params / 1e6,
                       marker="*" if serpent else "o", color="tab:red" if serpent else "tab:blue", zorder=3)
            ax.annotate(f"{r.model} ({r.params / 1e6:.2f}M)", (r.flops[size] / 1e9, getattr(r, metric)),
                        textcoords="offset points", xytext=(6, -14 if serpent else 6), fontsize=9)
        for key, style in (("input", ":"), ("classical", "--")):
            name = "degraded input" if key == "input" else c.classical_method
            ax.axhline(c.references[key][metric], linestyle=style, color="grey", label=name)
        ax.set_xscale("log")
        ax.set_xlabel(f"forward GFLOPs at {size}x{size} (log scale)")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="small", loc="best")
    fig.suptitle(f"{c.task}: quality on the held-out photos against compute")
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path


def write_comparison(c: Comparison, out_dir: str | Path, plot: bool = True) -> str:
    """compare.csv, compare.md and (unless plot=False) quality_vs_flops.png in out_dir; returns the markdown."""
    out = Path(out_dir)
    text = markdown_text(c)
    write_text_atomic(out / "compare.csv", csv_text(c))
    write_text_atomic(out / "compare.md", text)
    if plot:
        plot_quality_vs_flops(c, out / "quality_vs_flops.png", size=max(c.rows[0].flops))
    return text
