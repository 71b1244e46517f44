"""The main job on a bundled default: degrade a real photo, restore it, show the three side by side,
each panel labelled (degraded | restored | original, with PSNR)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor

from ..checkpoint.format import load_checkpoint
from ..errors import UserError
from .catalogue import bundled_weights
from .files import side_by_side
from .inference import restore_tensor

DEMO_PHOTO = "astronaut"  # a held-out validation photo: the bundled models never trained on it


def run_demo(output: str | Path, *, task: str | None = None, image: str | Path | None = None,
             weights: str | Path | None = None, overwrite: bool = False) -> str:
    """Write degraded | restored | original to `output` (PNG); return a one-paragraph report.

    weights: a checkpoint instead of the task's bundled weights; the photo is degraded with its own task.
    """
    from ..data import sample_images_dir
    from ..image_io import load_image, save_image
    from ..metrics import psnr, ssim

    output = Path(output)
    if output.exists() and not overwrite:
        raise UserError(f"{output}: already exists; pass --overwrite to replace it")
    weights_label = f"weights {weights}" if weights else None
    weights = Path(weights) if weights else bundled_weights(task)
    model, deg, _ = load_checkpoint(weights)
    if task and task != deg.name:
        raise UserError(f"{weights} was trained for task {deg.name!r}, not {task!r}")
    source = Path(image) if image else sample_images_dir() / "val" / f"{DEMO_PHOTO}.png"
    clean = load_image(source, channels=3)
    degraded = deg(clean, seed=0)
    restored = restore_tensor(model, degraded[None])[0]
    visible = degraded[:3].clamp(0, 1)

    def scores(x) -> str:
        return f"PSNR {psnr(x[None], clean[None]).item():.2f} dB, SSIM {ssim(x[None], clean[None]).item():.4f}"

    def db(x) -> str:
        return f"{psnr(x[None], clean[None]).item():.2f} dB"

    labels = [f"degraded {db(visible)}", f"restored {db(restored)}", "original"]
    save_image(with_labels(side_by_side(visible, restored, clean), labels, clean.shape[2]), output, overwrite=overwrite)

    from ..degradations import BlindDegradation, describe

    drawn = f" ({describe(deg.sample(0))})" if isinstance(deg, BlindDegradation) else ""
    return (f"{source.name} ({clean.shape[2]}x{clean.shape[1]}), task {deg.name}{drawn}, "
            f"{weights_label or 'bundled ' + weights.name}:\n"
            f"  degraded  {scores(visible)}\n  restored  {scores(restored)}\n"
            f"wrote degraded | restored | original to {output}")


def with_labels(panels: Tensor, labels: list[str], panel_width: int, gap: int = 8) -> Tensor:
    """A white strip above side-by-side panels with each panel's label, in Pillow's built-in font (no files)."""
    height = max(12, min(28, panel_width // 12))
    size = height - 4
    font = ImageFont.load_default(size=size)
    while size > 6 and max(font.getlength(t) for t in labels) > panel_width - 4:
        size -= 1
        font = ImageFont.load_default(size=size)
    strip = Image.new("L", (panels.shape[2], height), 255)
    draw = ImageDraw.Draw(strip)
    for i, text in enumerate(labels):
        left = i * (panel_width + gap) + max(0, (panel_width - font.getlength(text)) / 2)
        draw.text((left, height / 2), text, fill=0, font=font, anchor="lm")
    ink = torch.from_numpy(np.asarray(strip, dtype=np.float32) / 255)[None].expand(panels.shape[0], -1, -1)
    return torch.cat([ink, panels], dim=1)
