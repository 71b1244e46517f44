"""Noise: fixed-strength additive white Gaussian noise, and signal-dependent (Poisson-Gaussian) noise."""

from __future__ import annotations

import torch
from torch import Tensor

from .base import _NOISE_STREAM, Degradation, _add_noise, _check_sigma, _finish, seeded_generator

class GaussianNoise(Degradation):
    """Additive white Gaussian noise of a fixed standard deviation (in [0, 1] units)."""

    def __init__(self, sigma: float = 25 / 255, clip: bool = True, name: str = "gaussian_noise") -> None:
        _check_sigma("sigma", sigma)
        super().__init__(name, sigma=float(sigma), clip=clip)

    def degrade(self, clean: Tensor, seed: int) -> Tensor:
        return _finish(_add_noise(clean, self.params["sigma"], seed), self.params["clip"])


def poisson_gaussian_noise(img: Tensor, shot: float, read: float, seed: int) -> Tensor:
    """Sensor-like noise, unclipped: variance shot^2 * x + read^2 at intensity x (the Gaussian
    approximation of Poisson photon noise plus read noise; shot is the std at x = 1 without read noise)."""
    noise = torch.randn(img.shape, generator=seeded_generator(seed, _NOISE_STREAM), dtype=torch.float32)
    std = torch.sqrt(shot**2 * img.clamp(min=0) + read**2)
    return img + std * noise.to(img.device, img.dtype)

