"""Validating a blind model on the corpus' held-out photos, whole images, one strength at a time.

A blind model meets every strength of its task, so one mean over random draws hides where it
fails. Each row here is one fixed strength (a `BlindDegradation.apply` parameter set: the code
that training draws from) on every held-out photo: PSNR/SSIM/LPIPS of input and output, the
worst image's gain, and the colour shift (mean output minus mean clean, per channel, in 8-bit
levels). A last row uses the task's own random draws, one per photo, as training saw them.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from serpentir.errors import UserError
from serpentir.infer import restore_tensor, score


def _blur(sigma: float) -> dict:
    return {"blur": "isotropic", "sigma_x": sigma, "sigma_y": sigma, "angle": 0.0}


# label, class (rows of one class share the floor "improves by >= 1 dB"), parameters
STRENGTHS: dict[str, list[tuple[str, str, dict]]] = {
    "general": [
        ("sharp photo, no degradation", "clean", {}),
        ("Gaussian blur sigma 1", "blur", _blur(1.0)),
        ("Gaussian blur sigma 2", "blur", _blur(2.0)),
        ("camera shake 15 px", "blur", {"blur": "motion", "kernel_size": 15}),
        ("noise 10/255", "noise", {"noise": "gaussian", "noise_sigma": 10 / 255}),
        ("noise 25/255", "noise", {"noise": "gaussian", "noise_sigma": 25 / 255}),
        ("JPEG q30", "jpeg", {"jpeg": [30]}),
        ("JPEG q70", "jpeg", {"jpeg": [70]}),
        ("blur 1.5 + noise 10/255 + JPEG q50", "chain", {**_blur(1.5), "noise": "gaussian",
                                                         "noise_sigma": 10 / 255, "jpeg": [50]}),
    ],
    "jpeg_blind": [(f"JPEG q{q}", "jpeg", {"jpeg": [q]}) for q in (10, 30, 50, 80, 95)]
    + [("JPEG q40 then q70", "jpeg", {"jpeg": [40, 70]})],
    "denoise_blind": [(f"noise {s}/255", "noise", {"noise": "gaussian", "noise_sigma": s / 255}) for s in (5, 15, 25, 50)]
    + [("Poisson-Gaussian 0.1 + 0.01", "noise", {"noise": "poisson_gaussian", "shot": 0.1, "read": 0.01})],
    "deblur": [(f"Gaussian blur sigma {s}", "blur", {**_blur(s), "noise": "gaussian", "noise_sigma": 2 / 255})
               for s in (0.5, 1.0, 2.0, 3.5)] + [("camera shake 21 px", "blur", {"blur": "motion", "kernel_size": 21})],
    "sr4_blind": [(f"x4 {m}", "resize", {"mode": m}) for m in ("bicubic", "bilinear", "area")],
}


@dataclass
class StrengthRow:
    """Scores of one strength over the held-out photos (means), with the worst photo and the colour shift."""

    label: str
    kind: str
    input: dict = field(default_factory=dict)
    output: dict = field(default_factory=dict)
    gains: dict = field(default_factory=dict)  # photo -> output PSNR - input PSNR
    output_psnr: dict = field(default_factory=dict)  # photo -> output PSNR
    colour_shift: list = field(default_factory=list)  # per photo: (R, G, B) mean output - mean clean, levels
    input_colour_shift: list = field(default_factory=list)  # the same for the degraded input
    left_out: list = field(default_factory=list)  # photos whose random draw was "clean" (scored in the sharp row)

    @property
    def worst(self) -> tuple[str, float]:
        """The photo the model helps least (lowest output PSNR when the input is clean)."""
        if self.kind == "clean":
            name = min(self.output_psnr, key=self.output_psnr.get)
            return name, self.output_psnr[name]
        name = min(self.gains, key=self.gains.get)
        return name, self.gains[name]

    @property
    def max_colour_shift(self) -> float:
        return max(abs(v) for shift in self.colour_shift for v in shift)

    @property
    def max_input_colour_shift(self) -> float:
        return max(abs(v) for shift in self.input_colour_shift for v in shift)


def load_val_photos(val_dir: Path, max_side: int | None = None) -> list[tuple[str, Tensor]]:
    """The held-out photos as (name, (3, H, W)), long side capped (area averaging) when asked."""
    from serpentir.image_io import list_images, load_image

    photos = []
    for path in list_images(val_dir):
        img = load_image(path, channels=3)
        H, W = img.shape[-2:]
        if max_side and max(H, W) > max_side:
            s = max_side / max(H, W)
            img = F.interpolate(img[None], size=(round(H * s), round(W * s)), mode="area")[0]
        photos.append((path.stem, img))
    if not photos:
        raise UserError(f"{val_dir}: no held-out photos")
    return photos


def _means(rows: list[dict]) -> dict:
    out = {}
    for key in ("psnr", "ssim", "lpips"):
        finite = [r[key] for r in rows if not math.isinf(r[key]) and not math.isnan(r[key])]
        out[key] = sum(finite) / len(finite) if finite else (math.inf if key == "psnr" else math.nan)
    return out


@torch.no_grad()
def evaluate_strengths(model, task, photos: list[tuple[str, Tensor]], strengths=None, *, draws: bool = True,
                       with_lpips: bool = True, progress: bool = True) -> list[StrengthRow]:
    """One StrengthRow per strength (default: STRENGTHS[task.name], none for a fixed task) plus, if draws, the
    task's own draws. A task that appends channels to its input (inpainting's mask) is scored on the image's.
    with_lpips=False leaves LPIPS out (NaN), for curves that need only the gains."""
    from tqdm import tqdm

    strengths = STRENGTHS.get(task.name, []) if strengths is None else strengths
    cases = [(label, kind, params) for label, kind, params in strengths]
    if draws:
        cases.append((f"{task.name} draws, one per photo", "draws", None))
    rows = []
    bar = tqdm(total=len(cases) * len(photos), desc="validate", unit="img", disable=not progress)
    for label, kind, params in cases:
        row, inputs, outputs = StrengthRow(label, kind), [], []
        for i, (name, clean) in enumerate(photos):
            seed = 1000 + i
            degraded = task(clean, seed) if params is None else task.apply(clean, params, seed)
            if kind == "draws" and torch.equal(degraded, clean):
                row.left_out.append(name)
                bar.update(1)
                continue
            restored = restore_tensor(model, degraded[None])[0]
            degraded = degraded[:clean.shape[0]]
            s_in = {k: v[0] for k, v in score(degraded[None], clean[None], with_lpips=with_lpips).items()}
            s_out = {k: v[0] for k, v in score(restored[None], clean[None], with_lpips=with_lpips).items()}
            inputs.append(s_in)
            outputs.append(s_out)
            row.gains[name] = s_out["psnr"] - s_in["psnr"]
            row.output_psnr[name] = s_out["psnr"]
            row.colour_shift.append(((restored - clean).mean(dim=(-2, -1)) * 255).tolist())
            row.input_colour_shift.append(((degraded - clean).mean(dim=(-2, -1)) * 255).tolist())
            bar.update(1)
        row.input, row.output = _means(inputs), _means(outputs)
        rows.append(row)
    bar.close()
    return rows


def _fmt(value: float, digits: int) -> str:
    if math.isinf(value):
        return "inf"
    return "-" if math.isnan(value) else f"{value:.{digits}f}"


def strengths_table(rows: list[StrengthRow]) -> str:
    """Markdown: input and output scores per strength, the worst photo and the largest colour shift."""
    lines = ["| degradation | input PSNR | output PSNR | gain (dB) | input SSIM | output SSIM | input LPIPS "
             "| output LPIPS | worst photo | max colour shift: input / output (levels) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|"]
    for r in rows:
        name, value = r.worst
        gain = r.output["psnr"] - r.input["psnr"]
        worst = f"{name}: {value:.2f} dB" if r.kind == "clean" else f"{name}: {value:+.2f} dB"
        label = r.label + (f" ({len(r.left_out)} clean draws left out: {', '.join(r.left_out)})" if r.left_out else "")
        lines.append(f"| {label} | {_fmt(r.input['psnr'], 2)} | {_fmt(r.output['psnr'], 2)} | {_fmt(gain, 2)} "
                     f"| {_fmt(r.input['ssim'], 4)} | {_fmt(r.output['ssim'], 4)} | {_fmt(r.input['lpips'], 4)} "
                     f"| {_fmt(r.output['lpips'], 4)} | {worst} | {r.max_input_colour_shift:.2f} / {r.max_colour_shift:.2f} |")
    return "\n".join(lines)


def floors(rows: list[StrengthRow], *, general: bool) -> list[str]:
    """The issue's floors, each as a line 'met' or 'MISSED' with the number behind it."""
    lines = []
    for r in rows:
        if r.kind == "clean":
            name, value = r.worst
            lines.append(f"- sharp photos >= 38 dB: {'met' if value >= 38 else 'MISSED'} (worst {name}: {value:.2f} dB)")
    if general:
        for kind in ("blur", "noise", "jpeg"):
            gains = [r.output["psnr"] - r.input["psnr"] for r in rows if r.kind == kind]
            if gains:
                lines.append(f"- every {kind} strength improved by >= 1 dB (mean over photos): "
                             f"{'met' if min(gains) >= 1 else 'MISSED'} (smallest {min(gains):+.2f} dB)")
    worst = min((r.worst[1], r.worst[0], r.label) for r in rows if r.kind not in ("clean",))
    lines.append(f"- no held-out image of its own task loses more than 0.1 dB: {'met' if worst[0] >= -0.1 else 'MISSED'} "
                 f"(worst {worst[1]} under {worst[2]}: {worst[0]:+.2f} dB)")
    for r in rows:
        if r.kind == "clean":
            lines.append(f"- no colour cast on sharp photos (mean shift per channel under 0.5 levels): "
                         f"{'met' if r.max_colour_shift < 0.5 else 'MISSED'} (largest {r.max_colour_shift:.2f} levels)")
    worst_shift = max(rows, key=lambda r: r.max_colour_shift)
    lines.append(f"- colour cast under 0.5 levels per channel at every strength: "
                 f"{'met' if worst_shift.max_colour_shift < 0.5 else 'MISSED'} (largest {worst_shift.max_colour_shift:.2f} "
                 f"levels, under {worst_shift.label}, where the degraded input itself is off by up to "
                 f"{worst_shift.max_input_colour_shift:.2f})")
    return lines


def timed(fn, *args, **kwargs):
    """(result, seconds) of a call, for the card's record of how long evaluation took."""
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start
