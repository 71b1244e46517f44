"""A study written out: ablations.csv (per variant), ablations_arms.csv and ablations_bands.csv (per arm,
against the reference arm with intervals), ablations.md and PNG plots (arms with their seed spread,
quality against cost, against each knob that varies, and every variant's learning curves, so a reader
sees whether a ranking is settled)."""

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
from serpentir.classical import classical_method_name

from ..compare_report import MACS_NOTE, format_cell
from .arms import read_arms
from .arms_report import arms_csv, bands_csv, markdown_sections, plot_arms
from .result import KNOBS, VariantResult
from .study import Study

CSV_COLUMNS = ("variant", "directions", "order", "patch_size", "d_state", "params", "gflops_512", "gmacs_512",
               "latency_512_ms", "train_minutes", "steps", "psnr", "ssim", "lpips")


def _number(value) -> float | None:
    return value if isinstance(value, (int, float)) and not (isinstance(value, float) and math.isnan(value)) else None


def _gflops(r: VariantResult) -> float | None:
    return r.row.flops[512] / 1e9 if 512 in r.row.flops else None


def _gmacs(r: VariantResult) -> float | None:
    return r.row.macs[512] / 1e9 if 512 in r.row.macs else None


def _minutes(r: VariantResult) -> float | None:
    return r.row.train_seconds / 60 if r.row.train_seconds is not None else None


def csv_text(results: list[VariantResult], references: dict, classical: str) -> str:
    """One row per variant (knobs empty for models without them), then the references with empty cost cells."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in results:
        k = r.knobs
        writer.writerow([r.variant, format_cell(k.get("directions")), format_cell(k.get("order")), format_cell(k.get("patch_size")),
                         format_cell(k.get("d_state")), r.row.params, format_cell(_gflops(r)), format_cell(_gmacs(r)),
                         format_cell(_number(r.row.latency_ms)),
                         format_cell(_minutes(r)), r.row.step, format_cell(r.row.psnr), format_cell(r.row.ssim),
                         format_cell(r.row.lpips)])
    for label, s in references.items():
        name = "degraded input" if label == "input" else classical
        writer.writerow([name] + [""] * 10 + [format_cell(s["psnr"]), format_cell(s["ssim"]), format_cell(s["lpips"])])
    return buffer.getvalue()


def _fmt(value, spec: str) -> str:
    value = _number(value)
    return "-" if value is None else format(value, spec)


def _scored(study: Study, photos: list[str]) -> str:
    crop = f"the centre {study.test_crop}-px squares of" if study.test_crop else "the whole"
    return (f"Scored on {crop} {len(photos)} test photos of `{study.test_dir}` ({', '.join(photos)}), each degraded "
            "with its own fixed seed, the same for every variant")


def _tuning(references: dict, classical: str, tuned_on: str) -> str:
    strength = references.get("classical", {}).get("strength")
    if strength is None:
        return f"The classical reference ({classical}) has no strength to tune."
    return f"The classical reference ({classical}) had its strength ({strength:.3g}) chosen on {tuned_on}."


def markdown_text(study: Study, results: list[VariantResult], references: dict, classical: str, *, photos: list[str],
                  differences: list[str], command: str, threads: int | None, latency_size: int | None,
                  tuned_on: str = "the scored photos themselves", arms: tuple | None = None) -> str:
    """ablations.md: the question, the shared protocol, the arms against the reference with intervals, the
    error by frequency band, the seed-by-seed and per-variant tables, caveats and the command.

    arms: read_arms' (reference, readings) when the caller has them (their intervals are not free).
    """
    c = study.variants[0].config
    train_photos = c.data.train_dir or "the bundled sample photos"
    params = f" {c.task.params}" if c.task.params else ""
    lines = [f"# Study `{study.name}`", ""]
    if study.question:
        lines += [f"**{study.question}**", ""]
    own = {o.split("=")[0] for v in study.variants for o in v.overrides}
    seed = "each variant's own seed" if "seed" in own else f"seed {c.seed}"
    lr = "each variant's own lr" if "optim.lr" in own else f"lr {c.optim.lr:g}"
    warmup = "each variant's own warm-up" if "optim.warmup_steps" in own else f"warm-up {c.optim.warmup_steps}"
    length = (f"{c.time_budget_min:g} minutes of stepping by the trainer's own clock (at most {c.steps} steps; "
              "each variant's steps in the last table)" if c.time_budget_min else f"{c.steps} steps")
    lines += [
        f"Protocol shared by every variant: task `{c.task.name}`{params}, training photos "
        f"`{train_photos}`, {c.data.crop_size}-px crops, batch {c.data.batch_size}, {length}, {seed}, "
        f"AdamW {lr} ({warmup}, cosine to {c.optim.min_lr:g}"
        f"{' over the share of the budget spent' if c.time_budget_min else ''}), "
        f"{c.optim.loss} loss, EMA {c.ema_decay}. {_scored(study, photos)}. {_tuning(references, classical, tuned_on)}",
        "",
    ]
    reference, readings = arms or read_arms([v.name for v in study.variants], results)
    lines += markdown_sections(reference, readings, references, classical, len(photos))
    lines += [
        "## Every variant (means over the test photos)",
        "",
        "| variant | model | overrides | directions | order | patch | d_state | width | params | GFLOPs 512 | GMACs 512 "
        + (f"| latency {latency_size} (ms) | peak MB {latency_size} " if latency_size else "| latency (not measured) | peak MB (not measured) ")
        + "| training (min) | steps | PSNR (dB) | SSIM "
        "| LPIPS |",
        "|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    overrides = {v.name: v.overrides for v in study.variants}
    for r in results:
        k = r.knobs
        own = ", ".join(f"`{o}`" for o in overrides.get(r.variant, [])) or "(base)"
        lines.append(
            f"| {r.variant} | {r.model} | {own} | {format_cell(k.get('directions')) or '-'} | {k.get('order') or '-'} "
            f"| {format_cell(k.get('patch_size')) or '-'} | {format_cell(k.get('d_state')) or '-'} | {format_cell(k.get('embed_dim')) or '-'} "
            f"| {r.row.params / 1e6:.3f}M | {_fmt(_gflops(r), '.2f')} | {_fmt(_gmacs(r), '.2f')} "
            f"| {_fmt(r.row.latency_ms, '.0f')} "
            f"| {_fmt(r.row.infer_peak_mb, '.0f')} "
            f"| {_fmt(_minutes(r), '.1f')} | {r.row.step} | {_fmt(r.row.psnr, '.2f')} | {_fmt(r.row.ssim, '.4f')} "
            f"| {_fmt(r.row.lpips, '.4f')} |")
    for label, s in references.items():
        name = "degraded input" if label == "input" else classical
        lines.append(f"| {name} | | | | | | | | | | | | | | | {_fmt(s['psnr'], '.2f')} | {_fmt(s['ssim'], '.4f')} "
                     f"| {_fmt(s['lpips'], '.4f')} |")
    notes = list(study.notes)
    notes += [f"training settings that differ beyond the variants' own overrides: {d}" for d in differences]
    notes += [n for r in results for n in r.notes]
    lines += [
        "",
        "GMACs: forward multiply-accumulates of one 3-channel 512x512 image, by the same counter as "
        f"`serpentir bench`; GFLOPs = 2 x GMACs ({MACS_NOTE}). Latency: median "
        "forward time at "
        f"batch 1 in a fresh process ({threads or 'all'} torch threads); peak MB: the memory one inference "
        "adds to that process (resident-set high-water mark); training: logged wall time of the "
        "training loop. PSNR/SSIM on RGB, no border crop; LPIPS-alex v0.1, lower is better. Plots: "
        "`arms_psnr.png` (each arm's mean over seeds, bars from its lowest to its highest seed), "
        "`quality_vs_gflops.png`, `psnr_vs_<knob>.png`, `learning_curves.png` (validation PSNR on centre "
        "crops of the validation photos during training, and the training loss). Tables as CSV: "
        "`ablations.csv` (variants), `ablations_arms.csv` (arms, with diff_db, ci_low, ci_high, verdict), "
        "`ablations_bands.csv` (band PSNR per arm and band).",
    ]
    if notes:
        lines += ["", "Notes:", ""] + [f"- {n}" for n in notes]
    lines += ["", f"Produced by `{command}` on {platform.machine()}, {os.cpu_count()} CPU cores, torch "
              f"{torch.__version__}, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC."]
    return "\n".join(lines) + "\n"


def _save(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def plot_all(study: Study, results: list[VariantResult], references: dict, classical: str, out_dir: Path) -> list[Path]:
    """quality_vs_gflops.png, psnr_vs_<knob>.png for each knob with several values, learning_curves.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    fig, ax = plt.subplots(figsize=(7.5, 5))
    for r in results:
        if _gflops(r) is None:
            continue
        ax.scatter(_gflops(r), r.row.psnr, s=50, zorder=3, marker="*" if r.model.startswith("serpent") else "o")
        ax.annotate(r.variant, (_gflops(r), r.row.psnr), textcoords="offset points", xytext=(5, 5), fontsize=9)
    for key, style in (("input", ":"), ("classical", "--")):
        ax.axhline(references[key]["psnr"], linestyle=style, color="grey",
                   label="degraded input" if key == "input" else classical)
    ax.set_xscale("log")
    ax.set_xlabel("forward GFLOPs at 512x512 (log scale)")
    ax.set_ylabel("PSNR on the test photos (dB)")
    ax.set_title(f"{study.name}: quality against compute")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    _save(fig, out_dir / "quality_vs_gflops.png")
    written.append(out_dir / "quality_vs_gflops.png")

    for knob in KNOBS:
        points = [(r.knobs.get(knob), r) for r in results if r.knobs.get(knob) is not None]
        if len({str(v) for v, _ in points}) < 2:
            continue
        fig, ax = plt.subplots(figsize=(6.5, 4.5))
        labels = [str(v) for v, _ in points]
        ax.scatter(range(len(points)), [r.row.psnr for _, r in points], zorder=3)
        for i, (_, r) in enumerate(points):
            ax.annotate(r.variant, (i, r.row.psnr), textcoords="offset points", xytext=(5, 5), fontsize=9)
        ax.set_xticks(range(len(points)), labels)
        ax.set_xlabel(knob)
        ax.set_ylabel("PSNR on the test photos (dB)")
        ax.set_title(f"{study.name}: PSNR against {knob}")
        ax.grid(True, alpha=0.3)
        fig.tight_layout()
        _save(fig, out_dir / f"psnr_vs_{knob}.png")
        written.append(out_dir / f"psnr_vs_{knob}.png")

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 7), sharex=True)
    for r in results:
        curves = r.curves()
        steps, psnr = curves["psnr"]
        top.plot(steps, psnr, marker="o", ms=3, label=r.variant)
        steps, loss = curves["loss"]
        if loss:  # a running mean over 10 log rows: the raw loss is as noisy as its batches
            smooth = [sum(loss[max(0, i - 9):i + 1]) / len(loss[max(0, i - 9):i + 1]) for i in range(len(loss))]
            bottom.plot(steps, smooth, label=r.variant)
    top.set_ylabel("validation PSNR (dB, centre crops)")
    bottom.set_ylabel("training loss (running mean)")
    bottom.set_xlabel("step")
    bottom.set_yscale("log")
    for ax in (top, bottom):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    top.set_title(f"{study.name}: learning curves")
    fig.tight_layout()
    _save(fig, out_dir / "learning_curves.png")
    written.append(out_dir / "learning_curves.png")
    return written


def write_report(study: Study, results: list[VariantResult], references: dict, task, out_dir: str | Path, *,
                 photos: list[str], differences: list[str], command: str, threads: int | None,
                 latency_size: int | None, tuned_on: str = "the scored photos themselves", plots: bool = True) -> str:
    """ablations.csv, ablations_arms.csv, ablations_bands.csv, ablations.md and the plots in out_dir; returns
    the markdown."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    classical = classical_method_name(task)
    reference, readings = read_arms([v.name for v in study.variants], results)
    text = markdown_text(study, results, references, classical, photos=photos, differences=differences,
                         command=command, threads=threads, latency_size=latency_size, tuned_on=tuned_on,
                         arms=(reference, readings))
    write_text_atomic(out / "ablations.csv", csv_text(results, references, classical))
    write_text_atomic(out / "ablations_arms.csv", arms_csv(reference, readings))
    write_text_atomic(out / "ablations_bands.csv", bands_csv(reference, readings, references, classical))
    write_text_atomic(out / "ablations.md", text)
    if plots:
        plot_all(study, results, references, classical, out)
        plot_arms(study.name, reference, readings, out, _save)
    return text
