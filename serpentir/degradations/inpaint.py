"""Inpainting: random boxes and brush strokes cut out, the hole mask appended as an extra channel."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .base import _MASK_STREAM, Degradation, seeded_generator

def _segment_distance(ys: Tensor, xs: Tensor, a: Tensor, b: Tensor) -> Tensor:
    """Distance from every pixel centre to the segment a-b (points as (y, x))."""
    d = b - a
    t = (((ys - a[0]) * d[0] + (xs - a[1]) * d[1]) / (d @ d).clamp_min(1e-12)).clamp(0, 1)
    return torch.hypot(ys - (a[0] + t * d[0]), xs - (a[1] + t * d[1]))


def random_mask(height: int, width: int, generator: torch.Generator, min_fraction: float = 0.1,
                max_fraction: float = 0.4, shapes: str = "mixed") -> Tensor:
    """An (H, W) float mask, 1 = missing: random boxes and/or thick brush strokes until a coverage drawn
    from [min_fraction, max_fraction] is reached (the last shape may overshoot it a little)."""
    g = generator

    def uniform(lo: float, hi: float) -> float:
        return lo + (hi - lo) * float(torch.rand((), generator=g, dtype=torch.float64))

    mask = torch.zeros(height, width, dtype=torch.bool)
    ys = torch.arange(height, dtype=torch.float32)[:, None]
    xs = torch.arange(width, dtype=torch.float32)[None, :]
    side = min(height, width)
    target = uniform(min_fraction, max_fraction)
    for _ in range(200):
        if mask.float().mean() >= target:
            break
        use_box = shapes == "boxes" or (shapes == "mixed" and uniform(0, 1) < 0.4)
        if use_box:
            bh, bw = max(1, round(uniform(0.1, 0.35) * height)), max(1, round(uniform(0.1, 0.35) * width))
            top, left = int(uniform(0, height - bh + 1)), int(uniform(0, width - bw + 1))
            mask[top:top + bh, left:left + bw] = True
        else:
            radius = max(1.0, uniform(0.015, 0.05) * side)
            point = torch.tensor([uniform(0, height - 1), uniform(0, width - 1)])
            heading = uniform(0, 2 * math.pi)
            for _ in range(int(uniform(2, 7))):
                heading += uniform(-1.2, 1.2)
                step = uniform(0.1, 0.35) * side
                nxt = point + step * torch.tensor([math.sin(heading), math.cos(heading)])
                nxt = torch.stack([nxt[0].clamp(0, height - 1), nxt[1].clamp(0, width - 1)])
                mask |= _segment_distance(ys, xs, point, nxt) <= radius
                point = nxt
    return mask.float()


class Inpaint(Degradation):
    """Random holes (boxes and brush strokes) filled with zeros or the visible mean; mask appended."""

    extra_channels = 1

    def __init__(self, min_fraction: float = 0.1, max_fraction: float = 0.4, shapes: str = "mixed",
                 fill: str = "zero", name: str = "inpaint") -> None:
        if not 0 <= min_fraction <= max_fraction < 1:
            raise ValueError(f"need 0 <= min_fraction <= max_fraction < 1, got {min_fraction} and {max_fraction}")
        if shapes not in ("mixed", "boxes", "strokes"):
            raise ValueError(f"shapes must be 'mixed', 'boxes' or 'strokes', not {shapes!r}")
        if fill not in ("zero", "mean"):
            raise ValueError(f"fill must be 'zero' or 'mean', not {fill!r}")
        super().__init__(name, min_fraction=float(min_fraction), max_fraction=float(max_fraction), shapes=shapes, fill=fill)

    def mask(self, height: int, width: int, seed: int) -> Tensor:
        """The (H, W) hole mask used for this seed, 1 = missing."""
        p = self.params
        generator = seeded_generator(seed, _MASK_STREAM)
        return random_mask(height, width, generator, p["min_fraction"], p["max_fraction"], p["shapes"])

    def degrade(self, clean: Tensor, seed: int) -> Tensor:
        mask = self.mask(*clean.shape[-2:], seed).to(clean.device, clean.dtype)[None]
        if self.params["fill"] == "mean":
            visible = (1 - mask).sum().clamp_min(1)
            fill = ((clean * (1 - mask)).sum(dim=(1, 2), keepdim=True) / visible)
        else:
            fill = torch.zeros((), device=clean.device, dtype=clean.dtype)
        return torch.cat([clean * (1 - mask) + fill * mask, mask])
