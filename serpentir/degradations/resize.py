"""Super-resolution inputs at full size: downscale, then scale back up so the model maps size to size."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from .base import Degradation

DOWNSCALE_MODES = ("bicubic", "bilinear", "area")


def downscale(clean: Tensor, scale: int, mode: str = "bicubic") -> Tensor:
    """(C, H, W) -> (C, H // scale, W // scale) with `mode`: antialiased bicubic or bilinear, or area
    (the mean of each block), clipped to [0, 1]."""
    if mode not in DOWNSCALE_MODES:
        raise ValueError(f"mode must be one of {', '.join(DOWNSCALE_MODES)}, not {mode!r}")
    H, W = clean.shape[-2:]
    if H < scale or W < scale:
        raise ValueError(f"a {H}x{W} image is too small to downscale by {scale}")
    size = (H // scale, W // scale)
    if mode == "area":
        small = F.interpolate(clean[None], size=size, mode="area")
    else:
        small = F.interpolate(clean[None], size=size, mode=mode, antialias=True, align_corners=False)
    return small[0].clamp(0, 1)


def down_up(clean: Tensor, scale: int, mode: str = "bicubic") -> Tensor:
    """Downscale (C, H, W) by `scale` with `mode`, then bicubic back to H x W, clipped."""
    small = downscale(clean, scale, mode)
    return F.interpolate(small[None], size=clean.shape[-2:], mode="bicubic", align_corners=False)[0].clamp(0, 1)


class BicubicDownUp(Degradation):
    """Super-resolution input at full size: antialiased bicubic downscale by `scale`, bicubic back up."""

    def __init__(self, scale: int = 4, name: str = "bicubic_down_up") -> None:
        if not isinstance(scale, int) or scale < 2:
            raise ValueError(f"scale must be an integer >= 2, not {scale!r}")
        super().__init__(name, scale=scale)

    def degrade(self, clean: Tensor, seed: int) -> Tensor:
        return down_up(clean, self.params["scale"], "bicubic")
