"""The arms of a study written out: the markdown sections that answer its question with intervals,
ablations_arms.csv and ablations_bands.csv, and arms_psnr.png (mean over seeds, seed spread as bars)."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from serpentir.metrics import BAND_NAMES, band_labels

from ..compare_report import format_cell
from ..stats import RESAMPLES, PairedDifference
from .arms import ArmReading

ARM_COLUMNS = ("arm", "reference", "seeds", "variants", "model", "params", "gflops_512", "gmacs_512", "psnr_mean",
               "psnr_min", "psnr_max", "ssim_mean", "lpips_mean", "photos", "diff_db", "ci_low", "ci_high", "verdict",
               "ssim_diff", "ssim_ci_low", "ssim_ci_high", "ssim_verdict")
BAND_COLUMNS = ("arm", "band", "cycles_per_pixel", "band_psnr", "diff_db", "ci_low", "ci_high", "verdict")


def _fmt(value, spec: str) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def _seeds(reading: ArmReading) -> str:
    return " ".join("-" if s is None else str(s) for s in reading.arm.seeds)


def _cost(reading: ArmReading, kind: str) -> float | None:
    row = reading.arm.runs[0].row
    counts = row.flops if kind == "flops" else row.macs
    return counts[512] / 1e9 if 512 in counts else None


def _models(reading: ArmReading) -> str:
    return ", ".join(dict.fromkeys(r.model for r in reading.arm.runs))


def _difference_cell(d: PairedDifference | None, reference: bool, digits: int, unit: str = "") -> str:
    if reference:
        return "reference"
    return "-" if d is None else d.describe(digits, unit)


def _spread(reading: ArmReading) -> str:
    values = reading.arm.by_seed("psnr")
    if len(values) < 2:
        return "- (one run)"
    return f"{min(values):.2f} to {max(values):.2f} ({max(values) - min(values):.2f})"


def reference_bands(references: dict) -> dict[str, list[float]]:
    """'input' and 'classical' -> per band, the mean over photos of the band PSNR."""
    out = {}
    for key, s in references.items():
        rows = s.get("per_photo") or []
        if rows:
            out[key] = [sum(r["band_psnr"][b] for r in rows) / len(rows) for b in range(len(rows[0]["band_psnr"]))]
    return out


def markdown_sections(reference: str, readings: list[ArmReading], references: dict, classical: str,
                      photos: int) -> list[str]:
    """The arms table, the frequency-band table and the seed-by-seed table, each with what it means."""
    if not readings:
        return []
    scored = any(r.arm.name == reference for r in readings)
    lines = [f"## Arms against `{reference}`", ""]
    if not scored:
        lines += [f"The reference arm `{reference}` (the study's first) is not scored yet: no differences.", ""]
    lines += [
        "| arm | seeds | model | params | GFLOPs 512 | GMACs 512 | PSNR (dB), mean over seeds | seed spread (dB) "
        f"| SSIM | LPIPS | PSNR minus `{reference}`, per photo (dB) [95% interval] | SSIM minus `{reference}` [95% interval] |",
        "|---|---|---|---:|---:|---:|---:|---|---:|---:|---|---|",
    ]
    for r in readings:
        ref = r.arm.name == reference
        lines.append(
            f"| {r.arm.name} | {_seeds(r)} | {_models(r)} | {r.arm.runs[0].row.params / 1e6:.3f}M "
            f"| {_fmt(_cost(r, 'flops'), '.2f')} | {_fmt(_cost(r, 'macs'), '.2f')} | {_fmt(r.arm.mean('psnr'), '.2f')} "
            f"| {_spread(r)} | {_fmt(r.arm.mean('ssim'), '.4f')} | {_fmt(r.arm.mean('lpips'), '.4f')} "
            f"| {_difference_cell(r.psnr, ref, 2, 'dB')} | {_difference_cell(r.ssim, ref, 4)} |")
    lines += [
        "",
        f"An arm is the variants named `<arm>-s<seed>`. PSNR: the mean over seeds of each seed's mean over the "
        f"{photos} test photos; seed spread: its lowest and highest seed (and the gap). Against `{reference}` (the "
        "study's first arm): per test photo, the arm's score averaged over its seeds minus the reference's averaged "
        f"over its seeds; the cell gives the mean of these {photos} paired differences and its 95% percentile "
        f"bootstrap interval ({RESAMPLES:,} resamples of the photos, fixed RNG seed). An interval that holds 0 "
        "reads \"no difference measured\"; \"better\" / \"worse\": the interval lies above / below 0 (higher "
        "PSNR and SSIM are better). The interval is over photos, for these seeds: read it beside the seed spread.",
        "",
    ]
    labels = band_labels()
    names = [f"{n} {label}" for n, label in zip(BAND_NAMES, labels)]
    lines += ["## Error by frequency band: band PSNR (dB)", "",
              "| arm | " + " | ".join(names) + " | " + " | ".join(f"{n} minus `{reference}`" for n in BAND_NAMES) + " |",
              "|---|" + "---:|" * len(names) + "---|" * len(names)]
    for r in readings:
        ref = r.arm.name == reference
        diffs = [_difference_cell(d, ref, 2) for d in (r.bands or [None] * len(names))]
        lines.append(f"| {r.arm.name} | " + " | ".join(_fmt(v, ".2f") for v in r.arm.band_means()) + " | "
                     + " | ".join(diffs) + " |")
    for key, values in reference_bands(references).items():
        name = "degraded input" if key == "input" else classical
        lines.append(f"| {name} | " + " | ".join(_fmt(v, ".2f") for v in values) + " |" + " |" * len(names))
    lines += [
        "",
        "Band PSNR: 10 log10(1 / band MSE), where band MSE is the part of the mean squared error (restored minus "
        "clean, per pixel and channel, images in [0, 1]) carried by the 2-D DFT frequencies whose radius "
        "sqrt(fx^2 + fy^2) lies in the band, in cycles per pixel (high runs to the corners, sqrt(2)/2). The bands' "
        "MSEs sum to the MSE (Parseval): 10^(-PSNR/10) = sum over bands of 10^(-band PSNR/10). Per photo, averaged "
        "over seeds in dB, then over photos; differences paired per photo as above.",
        "",
    ]
    seeds = sorted({s for r in readings for s in r.arm.seeds if s is not None})
    columns = [*seeds, *([None] if any(s is None for r in readings for s in r.arm.seeds) else [])]
    lines += ["## Seed by seed: PSNR (dB)", "",
              "| arm | " + " | ".join("-" if s is None else f"seed {s}" for s in columns) + " |",
              "|---|" + "---:|" * len(columns)]
    for r in readings:
        by_seed = dict(zip(r.arm.seeds, r.arm.by_seed("psnr")))
        lines.append(f"| {r.arm.name} | " + " | ".join(_fmt(by_seed.get(s), ".2f") for s in columns) + " |")
    return lines + [""]


def _difference_cells(d: PairedDifference | None, reference: bool) -> list[str]:
    if reference:
        return ["", "", "", "reference"]
    if d is None:
        return ["", "", "", ""]
    return [format_cell(d.mean), format_cell(d.low), format_cell(d.high), d.verdict if not math.isnan(d.mean) else ""]


def arms_csv(reference: str, readings: list[ArmReading]) -> str:
    """ablations_arms.csv: one row per arm, the paired differences against the reference with their intervals."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(ARM_COLUMNS)
    for r in readings:
        values = r.arm.by_seed("psnr")
        ref = r.arm.name == reference
        writer.writerow([r.arm.name, reference, _seeds(r), " ".join(x.variant for x in r.arm.runs), _models(r),
                         r.arm.runs[0].row.params, format_cell(_cost(r, "flops")), format_cell(_cost(r, "macs")),
                         format_cell(r.arm.mean("psnr")), format_cell(min(values)), format_cell(max(values)),
                         format_cell(r.arm.mean("ssim")), format_cell(r.arm.mean("lpips")),
                         len(r.arm.photo_means("psnr")), *_difference_cells(r.psnr, ref), *_difference_cells(r.ssim, ref)])
    return buffer.getvalue()


def bands_csv(reference: str, readings: list[ArmReading], references: dict, classical: str) -> str:
    """ablations_bands.csv: one row per arm and band (then the references'), band PSNR and the paired difference."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(BAND_COLUMNS)
    labels = band_labels()
    for r in readings:
        ref = r.arm.name == reference
        for b, value in enumerate(r.arm.band_means()):
            d = r.bands[b] if r.bands else None
            writer.writerow([r.arm.name, BAND_NAMES[b], labels[b], format_cell(value), *_difference_cells(d, ref)])
    for key, values in reference_bands(references).items():
        for b, value in enumerate(values):
            writer.writerow(["degraded input" if key == "input" else classical, BAND_NAMES[b], labels[b],
                             format_cell(value), "", "", "", ""])
    return buffer.getvalue()


def plot_arms(study_name: str, reference: str, readings: list[ArmReading], out_dir: Path, save) -> Path:
    """arms_psnr.png: each arm's mean PSNR over seeds, bars from its lowest to its highest seed, seeds as dots."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(5.0, 1.2 * len(readings) + 2), 4.5))
    for i, r in enumerate(readings):
        values, mean = r.arm.by_seed("psnr"), r.arm.mean("psnr")
        ax.errorbar([i], [mean], yerr=[[mean - min(values)], [max(values) - mean]], fmt="o", capsize=6, ms=8,
                    color="tab:red" if r.arm.name == reference else "tab:blue", zorder=3)
        ax.scatter([i] * len(values), values, s=12, color="grey", zorder=2)
    ax.set_xticks(range(len(readings)), [r.arm.name for r in readings], rotation=20 if len(readings) > 4 else 0)
    ax.set_xlim(-0.6, len(readings) - 0.4)
    ax.set_ylabel("PSNR on the test photos (dB)")
    ax.set_title(f"{study_name}: mean over seeds (bars: lowest to highest seed; red: {reference})", fontsize=10)
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    path = out_dir / "arms_psnr.png"
    save(fig, path)
    return path
