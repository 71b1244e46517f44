"""The whole-against-tiled report: means per (model, mode, size), each model's whole image against its
tiles photo by photo (a paired difference with a 95% bootstrap interval, serpentir_lab.stats), and a plot.

Read from the per-photo rows alone, so a report can be rewritten from scaling_per_photo.csv at any time.
"""

from __future__ import annotations

import csv
import math
import os
import platform
from datetime import datetime, timezone
from pathlib import Path

from serpentir.atomic_write import atomic_path, write_text_atomic

from ..stats import PairedDifference, paired_difference

COLUMNS = ("model", "mode", "size", "psnr", "ssim", "lpips", "seconds", "peak_mb")
GAIN_COLUMNS = ("model", "size", "tiles", "photos", "diff_db", "ci_low", "ci_high", "verdict")


def _mean(values: list[str]) -> float:
    numbers = [float(v) for v in values if v not in ("", "nan")]
    return sum(numbers) / len(numbers) if numbers else math.nan


def _size_key(size: str) -> list[int]:
    return [int(v) for v in size.split("x")]


def _mode_key(mode: str) -> tuple[int, int]:
    """whole first, then tiles from large to small (the order in which context is lost)."""
    if mode == "whole":
        return (0, 0)
    return (1, -int(mode.rpartition("-")[2])) if mode.startswith("tiled-") else (2, 0)


def summarise(rows: list[dict]) -> list[dict]:
    """Means over photos per (model, mode, size); a case that failed anywhere reports its error."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["model"], r["mode"], r["size"]), []).append(r)
    out = []
    for (model, mode, size), group in groups.items():
        errors = [r["psnr"] for r in group if r["seconds"] == "" and r["mode"] != "input"]
        if errors:
            out.append({"model": model, "mode": mode, "size": size, "psnr": errors[0], "ssim": "", "lpips": "",
                        "seconds": "", "peak_mb": "", "photos": len(group)})
            continue
        out.append({"model": model, "mode": mode, "size": size, "photos": len(group),
                    **{k: _mean([r[k] for r in group]) for k in ("psnr", "ssim", "lpips", "seconds", "peak_mb")}})
        if mode == "input":
            out[-1].update(seconds="", peak_mb="")
    return sorted(out, key=lambda r: (r["model"], _size_key(r["size"]), _mode_key(r["mode"])))


def whole_against_tiles(rows: list[dict]) -> list[dict]:
    """Per model, size and tile size: whole minus tiled PSNR, photo by photo, with its bootstrap interval."""
    psnr: dict[tuple, dict[str, float]] = {}
    for r in rows:
        try:
            value = float(r["psnr"])
        except ValueError:
            continue  # a failed case (its error in place of the score) pairs with nothing
        psnr.setdefault((r["model"], r["mode"], r["size"]), {})[r["photo"]] = value
    out = []
    for (model, mode, size), tiled in psnr.items():
        whole = psnr.get((model, "whole", size))
        if not mode.startswith("tiled") or whole is None:
            continue
        diff: PairedDifference = paired_difference(whole, tiled)
        out.append({"model": model, "size": size, "tiles": mode, "photos": diff.n, "diff": diff})
    return sorted(out, key=lambda r: (r["model"], _size_key(r["size"]), _mode_key(r["tiles"])))


def _fmt(value, spec: str) -> str:
    return format(value, spec) if isinstance(value, float) and not math.isnan(value) else str(value or "-")


def write_report(rows: list[dict], out: Path, *, task: dict, skipped: dict, threads: int, tiles: tuple[int, ...],
                 overlap: int, command: str) -> list[dict]:
    """scaling.csv (the issue's columns), scaling_whole_vs_tiled.csv, scaling.md and scaling.png; the summary."""
    import torch

    summary, gains = summarise(rows), whole_against_tiles(rows)
    with atomic_path(out / "scaling.csv") as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(COLUMNS)
        for r in summary:
            writer.writerow([r["model"], r["mode"], r["size"]] + [_fmt(r[k], ".6g") for k in COLUMNS[3:]])
    with atomic_path(out / "scaling_whole_vs_tiled.csv") as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(GAIN_COLUMNS)
        for g in gains:
            d = g["diff"]
            writer.writerow([g["model"], g["size"], g["tiles"], g["photos"], f"{d.mean:.6g}", f"{d.low:.6g}",
                             f"{d.high:.6g}", d.verdict])
    seen = sorted({r["photo"] for r in rows if r["held_out"] in ("False", False)})
    used: dict[str, set] = {}
    for r in rows:
        used.setdefault(r["size"], set()).add(r["photo"])
    tile_text = " or ".join(f"{t}-px" for t in tiles)
    lines = [
        f"# Whole against tiled at high resolution: `{task['name']}` {task.get('params') or ''}".rstrip(),
        "",
        "Each photo is centre-cropped to the size, degraded once with a fixed seed (the same pixels for every "
        f"model and mode) and restored whole (one forward pass) or in {tile_text} tiles overlapping by {overlap} px "
        f"(`tiled-N`), each in a fresh process with {threads} torch thread(s). Seconds: the restoration's wall time "
        "after a 64-px warm-up; peak MB: the process's resident-memory high-water mark during the restoration (the "
        "model, the degraded image and the idle interpreter included). Scores on the whole image; means "
        "over the photos of each size.",
        "",
        "| model | mode | size | photos | PSNR (dB) | SSIM | LPIPS | seconds | peak MB |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in summary:
        lines.append(f"| {r['model']} | {r['mode']} | {r['size']} | {r['photos']} | {_fmt(r['psnr'], '.2f')} "
                     f"| {_fmt(r['ssim'], '.4f')} | {_fmt(r['lpips'], '.4f')} | {_fmt(r['seconds'], '.1f')} "
                     f"| {_fmt(r['peak_mb'], '.0f')} |")
    if gains:
        lines += ["", "Whole minus tiled, photo by photo (PSNR, dB; mean and 95% bootstrap interval over the photos; "
                  "an interval that holds 0 is no difference measured):", "",
                  "| model | size | against | photos | whole minus tiled (dB) |", "|---|---|---|---:|---|"]
        lines += [f"| {g['model']} | {g['size']} | {g['tiles']} | {g['photos']} | {g['diff'].describe()} |"
                  for g in gains]
    lines += ["", "Photos per size: " + "; ".join(f"{s}: {', '.join(sorted(p))}" for s, p in
                                                  sorted(used.items(), key=lambda kv: _size_key(kv[0])))]
    if seen:
        lines += ["", f"Not held out: {', '.join(seen)} (a training photo, seen in training at a lower resolution; "
                  "used only where no held-out photo is large enough)."]
    if skipped:
        lines += ["", "Too small for a size (skipped): " + "; ".join(f"{s}: {', '.join(p)}" for s, p in skipped.items())]
    lines += ["", "What it shows: TODO", "",
              f"Produced by `{command}` on {platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}, "
              f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC. Per-photo rows: `scaling_per_photo.csv`."]
    report = out / "scaling.md"
    if report.is_file() and "What it shows: TODO" not in report.read_text():
        report = out / "scaling_latest.md"  # never overwrite a report someone has written the reading of
    write_text_atomic(report, "\n".join(lines) + "\n")
    plot(summary, gains, out / "scaling.png")
    return summary


def plot(summary: list[dict], gains: list[dict], path: Path) -> None:
    """PSNR, whole minus tiled (with its interval), seconds and peak MB against megapixels, per model and mode."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def megapixels(size: str) -> float:
        w, h = _size_key(size)
        return w * h / 1e6

    fig, axes = plt.subplots(1, 4, figsize=(19, 4.5))
    series: dict[tuple, list] = {}
    for r in summary:
        if isinstance(r["seconds"], float):
            series.setdefault((r["model"], r["mode"]), []).append((megapixels(r["size"]), r))
    for (model, mode), points in series.items():
        points.sort(key=lambda p: p[0])
        xs = [p[0] for p in points]
        for ax, key in zip((axes[0], axes[2], axes[3]), ("psnr", "seconds", "peak_mb")):
            ax.plot(xs, [p[1][key] for p in points], marker="o", linestyle="-" if mode == "whole" else "--",
                    label=f"{model} {mode}")
    lines: dict[tuple, list] = {}
    for g in gains:
        lines.setdefault((g["model"], g["tiles"]), []).append((megapixels(g["size"]), g["diff"]))
    for (model, tiles), points in lines.items():
        points.sort(key=lambda p: p[0])
        xs, diffs = [p[0] for p in points], [p[1] for p in points]
        axes[1].errorbar(xs, [d.mean for d in diffs], yerr=[[d.mean - d.low for d in diffs],
                                                            [d.high - d.mean for d in diffs]],
                         marker="o", capsize=3, label=f"{model} vs {tiles}")
    axes[1].axhline(0, color="grey", linewidth=0.8)
    labels = ("PSNR (dB)", "PSNR whole minus tiled (dB, 95% interval)", "seconds", "peak resident memory (MB)")
    for ax, label in zip(axes, labels):
        ax.set_xlabel("megapixels")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small")
    fig.suptitle("whole against tiled restoration as the image grows")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
