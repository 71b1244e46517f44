"""A `Picture`: the colour a model restores, and everything else of the image that must come back unchanged."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import Tensor

# ITU-R BT.601 luma weights, as Pillow's convert("L") uses, applied in float to keep 16-bit precision.
LUMA = (0.299, 0.587, 0.114)


@dataclass(frozen=True, eq=False)
class Picture:
    """colour: (C, H, W) float32 in [0, 1], C = 1 (grey) or 3 (RGB); alpha: the (H, W) samples exactly
    as stored (uint8 or uint16), never restored; bit_depth: 8 or 16 bits per sample, what a
    lossless output is written with; icc_profile, exif: raw bytes carried to the output (EXIF with its
    orientation tag reset, the pixels being already turned upright)."""

    colour: Tensor
    alpha: np.ndarray | None = None
    bit_depth: int = 8
    icc_profile: bytes | None = None
    exif: bytes | None = None

    def with_colour(self, colour: Tensor) -> "Picture":
        """The same picture with restored colour (same size; grey or RGB)."""
        if tuple(colour.shape[-2:]) != tuple(self.colour.shape[-2:]):
            raise ValueError(f"restored colour is {tuple(colour.shape[-2:])}, the picture {tuple(self.colour.shape[-2:])}")
        return replace(self, colour=colour)

    def alpha_fraction(self) -> Tensor | None:
        """Alpha as a (1, H, W) float tensor in [0, 1] (for compositing when a plain image is wanted)."""
        if self.alpha is None:
            return None
        return torch.from_numpy(self.alpha.astype(np.float32) / sample_max(self.alpha.dtype))[None]


def sample_max(dtype) -> float:
    """The value of full intensity for stored samples of this dtype (floats are already in [0, 1])."""
    dtype = np.dtype(dtype)
    return float(np.iinfo(dtype).max) if dtype.kind in "ui" else 1.0


def quantise(values: np.ndarray, bit_depth: int) -> np.ndarray:
    """Floats in [0, 1] (NaN as 0) -> uint8 or uint16 samples, rounded to nearest."""
    scale, dtype = (65535, np.uint16) if bit_depth == 16 else (255, np.uint8)
    return np.rint(np.clip(np.nan_to_num(values, nan=0.0), 0.0, 1.0) * scale).astype(dtype)


def alpha_at_depth(alpha: np.ndarray, bit_depth: int) -> np.ndarray:
    """Alpha samples for an output of this bit depth: the stored samples themselves when the depth matches."""
    want = np.uint16 if bit_depth == 16 else np.uint8
    if alpha.dtype == want:
        return alpha
    return quantise(alpha.astype(np.float64) / sample_max(alpha.dtype), bit_depth)


def to_grey(colour: Tensor) -> Tensor:
    """(3, H, W) or (N, 3, H, W) RGB -> the same with one BT.601 luma channel."""
    r, g, b = colour.unbind(-3)
    return (LUMA[0] * r + LUMA[1] * g + LUMA[2] * b).unsqueeze(-3)
