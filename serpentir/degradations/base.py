"""The degradation protocol: clean image + seed -> degraded image, reproducibly; shared helpers.

Seeds feed independent random streams (kernel, noise, mask, blind parameters), so e.g. the blur
kernel of a seed can be recomputed without replaying the noise. Blurs are true convolutions with
borders extended by reflection, as scipy.ndimage.convolve(mode="reflect") does.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

# Independent random streams derived from one seed, so e.g. the blur kernel of a seed can be
# recomputed without replaying the noise.
_KERNEL_STREAM, _NOISE_STREAM, _MASK_STREAM, _PARAM_STREAM, _JPEG_STREAM = 0, 1, 2, 3, 4


def seeded_generator(seed: int, stream: int = 0) -> torch.Generator:
    """A CPU generator for (seed, stream); nearby seeds give unrelated streams (numpy SeedSequence)."""
    state = np.random.SeedSequence([int(seed) % 2**64, stream]).generate_state(2, np.uint32)
    return torch.Generator().manual_seed((int(state[0]) << 32) | int(state[1]))


class Degradation:
    """Base class: subclasses implement `degrade(clean (C, H, W), seed)`."""

    name: str = ""
    description: str = ""
    extra_channels: int = 0

    def __init__(self, name: str, **params) -> None:
        self.name = name
        self.params = params

    def __call__(self, clean: Tensor, seed: int) -> Tensor:
        if not isinstance(clean, Tensor) or not clean.is_floating_point() or clean.dim() not in (3, 4):
            raise ValueError("a degradation takes a float tensor of shape (C, H, W) or (N, C, H, W)")
        if clean.dim() == 4:
            return torch.stack([self.degrade(img, seed + i) for i, img in enumerate(clean)])
        return self.degrade(clean, seed)

    def degrade(self, clean: Tensor, seed: int) -> Tensor:
        raise NotImplementedError

    def kernel(self, seed: int) -> Tensor | None:
        """The blur kernel (point-spread function) used for this seed; None for tasks without blur."""
        return None

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}[{self.name}]({args})"


def _add_noise(img: Tensor, sigma: float, seed: int) -> Tensor:
    if sigma <= 0:
        return img
    noise = torch.randn(img.shape, generator=seeded_generator(seed, _NOISE_STREAM), dtype=torch.float32)
    return img + sigma * noise.to(img.device, img.dtype)


def _finish(img: Tensor, clip: bool) -> Tensor:
    return img.clamp(0.0, 1.0) if clip else img


def _reflect_indices(n: int, before: int, after: int, device: torch.device) -> Tensor:
    """Indices that extend 0..n-1 by half-sample reflection (d c b a | a b c d), any pad width."""
    i = torch.arange(-before, n + after, device=device) % (2 * n)
    return torch.where(i >= n, 2 * n - 1 - i, i)


def reflect_pad(img: Tensor, pad_h: int, pad_w: int) -> Tensor:
    """Extend (..., H, W) by pad_h rows and pad_w columns on each side, mirrored as scipy's mode='reflect'.

    torch's own "reflect" mode skips the edge pixel (scipy's "mirror") and fails when the pad is
    wider than the image; this one matches scipy and works for any size.
    """
    H, W = img.shape[-2:]
    rows = _reflect_indices(H, pad_h, pad_h, img.device)
    cols = _reflect_indices(W, pad_w, pad_w, img.device)
    return img.index_select(-2, rows).index_select(-1, cols)


def convolve(img: Tensor, kernel: Tensor) -> Tensor:
    """True 2-D convolution of every channel of (C, H, W) with an odd-sized kernel, reflected borders."""
    kh, kw = kernel.shape
    padded = reflect_pad(img, kh // 2, kw // 2)
    C = img.shape[0]
    weight = kernel.flip(0, 1).to(img.device, img.dtype).expand(C, 1, kh, kw)
    return F.conv2d(padded.unsqueeze(0), weight, groups=C).squeeze(0)


def _check_kernel_size(size: int) -> None:
    if not isinstance(size, int) or size < 1 or size % 2 == 0:
        raise ValueError(f"kernel_size must be a positive odd integer, not {size!r}")


def _check_sigma(name: str, value: float) -> None:
    if not isinstance(value, (int, float)) or value < 0 or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number >= 0, not {value!r}")
