"""The main job on a bundled default: degrade a real photo, restore it, show the three side by side."""

from __future__ import annotations

from pathlib import Path

from ..errors import UserError
from .checkpoint import load_checkpoint
from .restore import bundled_weights, restore_tensor, side_by_side

DEMO_PHOTO = "astronaut"  # a held-out validation photo: the bundled models never trained on it


def run_demo(output: str | Path, *, task: str | None = None, image: str | Path | None = None,
             overwrite: bool = False) -> str:
    """Write degraded | restored | original to `output` (PNG); return a one-paragraph report."""
    from ..data import sample_images_dir
    from ..image_io import load_image, save_image
    from ..metrics import psnr, ssim

    output = Path(output)
    if output.exists() and not overwrite:
        raise UserError(f"{output}: already exists; pass --overwrite to replace it")
    weights = bundled_weights(task)
    model, deg, _ = load_checkpoint(weights)
    source = Path(image) if image else sample_images_dir() / "val" / f"{DEMO_PHOTO}.png"
    clean = load_image(source, channels=3)
    degraded = deg(clean, seed=0)
    restored = restore_tensor(model, degraded[None])[0]
    visible = degraded[:3].clamp(0, 1)
    save_image(side_by_side(visible, restored, clean), output, overwrite=overwrite)

    def scores(x) -> str:
        return f"PSNR {psnr(x[None], clean[None]).item():.2f} dB, SSIM {ssim(x[None], clean[None]).item():.4f}"

    from ..degradations import BlindDegradation, describe

    drawn = f" ({describe(deg.sample(0))})" if isinstance(deg, BlindDegradation) else ""
    return (f"{source.name} ({clean.shape[2]}x{clean.shape[1]}), task {deg.name}{drawn}, bundled {weights.name}:\n"
            f"  degraded  {scores(visible)}\n  restored  {scores(restored)}\n"
            f"wrote degraded | restored | original to {output}")
