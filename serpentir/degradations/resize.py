"""Super-resolution inputs at full size: downscale, then scale back up so the model maps size to size."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from .base import Degradation

DOWNSCALE_MODES = ("bicubic", "bilinear", "area")


def down_up(clean: Tensor, scale: int, mode: str = "bicubic") -> Tensor:
    """Downscale (C, H, W) by `scale` with `mode` (antialiased), then bicubic back to H x W, clipped."""
    H, W = clean.shape[-2:]
    if H < scale or W < scale:
        raise ValueError(f"a {H}x{W} image is too small to downscale by {scale}")
    size = (H // scale, W // scale)
    if mode == "area":
        small = F.interpolate(clean[None], size=size, mode="area")
    else:
        small = F.interpolate(clean[None], size=size, mode=mode, antialias=True, align_corners=False)
    small = small.clamp(0, 1)
    return F.interpolate(small, size=(H, W), mode="bicubic", align_corners=False)[0].clamp(0, 1)


class BicubicDownUp(Degradation):
    """Super-resolution input at full size: antialiased bicubic downscale by `scale`, bicubic back up."""

    def __init__(self, scale: int = 4, name: str = "bicubic_down_up") -> None:
        if not isinstance(scale, int) or scale < 2:
            raise ValueError(f"scale must be an integer >= 2, not {scale!r}")
        super().__init__(name, scale=scale)

    def degrade(self, clean: Tensor, seed: int) -> Tensor:
        return down_up(clean, self.params["scale"], "bicubic")
