"""Blur degradations: the paper's fixed Gaussian blur and random camera shake, with their kernels."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from .base import (_KERNEL_STREAM, Degradation, _add_noise, _check_kernel_size, _check_sigma, _finish, convolve,
                   reflect_pad, seeded_generator)

def gaussian_kernel_1d(size: int, sigma: float) -> Tensor:
    """Sampled, normalised Gaussian over size taps centred on the middle one."""
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return (g / g.sum()).float()


def anisotropic_gaussian_kernel(size: int, sigma_x: float, sigma_y: float, angle: float) -> Tensor:
    """A (size, size) Gaussian with standard deviations sigma_x, sigma_y along axes turned by `angle`
    radians, sampled at pixel centres and normalised to sum 1 (isotropic when sigma_x == sigma_y)."""
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    y, x = torch.meshgrid(r, r, indexing="ij")
    c, s = math.cos(angle), math.sin(angle)
    u, v = c * x + s * y, -s * x + c * y
    g = torch.exp(-(u**2) / (2 * sigma_x**2) - (v**2) / (2 * sigma_y**2))
    return (g / g.sum()).float()


class GaussianBlur(Degradation):
    """Gaussian blur (the Serpent paper's deblurring task) plus optional white Gaussian noise."""

    def __init__(self, kernel_size: int = 61, sigma: float = 3.0, noise_sigma: float = 0.01, clip: bool = True,
                 name: str = "gaussian_blur") -> None:
        _check_kernel_size(kernel_size)
        _check_sigma("noise_sigma", noise_sigma)
        if not isinstance(sigma, (int, float)) or not sigma > 0:
            raise ValueError(f"sigma must be > 0, not {sigma!r}")
        super().__init__(name, kernel_size=kernel_size, sigma=float(sigma), noise_sigma=float(noise_sigma), clip=clip)
        self._taps = gaussian_kernel_1d(kernel_size, sigma)

    def kernel(self, seed: int = 0) -> Tensor:
        return torch.outer(self._taps, self._taps)

    def degrade(self, clean: Tensor, seed: int) -> Tensor:
        # Separable: two 1-D passes cost 2k instead of k*k multiply-adds per pixel.
        r = self.params["kernel_size"] // 2
        C = clean.shape[0]
        taps = self._taps.to(clean.device, clean.dtype)
        x = reflect_pad(clean, r, r).unsqueeze(0)
        x = F.conv2d(x, taps.view(1, 1, 1, -1).expand(C, 1, 1, -1), groups=C)
        x = F.conv2d(x, taps.view(1, 1, -1, 1).expand(C, 1, -1, 1), groups=C).squeeze(0)
        return _finish(_add_noise(x, self.params["noise_sigma"], seed), self.params["clip"])


def camera_shake_kernel(size: int, generator: torch.Generator) -> Tensor:
    """A random motion-blur kernel: a shaky random-walk trajectory rasterised and normalised to sum 1.

    The camera moves with a drifting velocity plus small jitter and rare jerks (in the spirit of
    Boracchi and Foi, 2012); the path is scaled to 25-100% of the kernel width and splatted
    bilinearly at sub-pixel density so thin trajectories stay connected.
    """
    steps = 64
    g = generator
    angle = float(torch.rand((), generator=g, dtype=torch.float64)) * 2 * math.pi
    velocity = torch.tensor([math.cos(angle), math.sin(angle)], dtype=torch.float64)
    jitter = torch.randn(steps, 2, generator=g, dtype=torch.float64) * 0.15
    jerks = (torch.rand(steps, generator=g, dtype=torch.float64) < 0.05).double()[:, None]
    jerk_size = torch.randn(steps, 2, generator=g, dtype=torch.float64) * 1.5
    points = [torch.zeros(2, dtype=torch.float64)]
    for t in range(steps):
        velocity = velocity + jitter[t] + jerks[t] * jerk_size[t]
        velocity = velocity / velocity.norm().clamp_min(1e-8)
        points.append(points[-1] + velocity)
    path = torch.stack(points)
    extent = (path.max(0).values - path.min(0).values).max().clamp_min(1e-8)
    length = (0.25 + 0.75 * float(torch.rand((), generator=g, dtype=torch.float64))) * (size - 1)
    path = (path - (path.max(0).values + path.min(0).values) / 2) * (length / extent) + (size - 1) / 2

    # Densify to ~10 samples per pixel of travel, then splat each sample bilinearly.
    seg = path[1:] - path[:-1]
    per_seg = int(max(2, math.ceil(10 * float(seg.norm(dim=1).max()))))
    frac = torch.arange(per_seg, dtype=torch.float64) / per_seg
    samples = (path[:-1, None, :] + frac[None, :, None] * seg[:, None, :]).reshape(-1, 2)
    samples = samples.clamp(0, size - 1)
    x0 = samples.floor().clamp(max=size - 2 if size > 1 else 0)
    w1 = samples - x0
    x0 = x0.long()
    kernel = torch.zeros(size + 1, size + 1, dtype=torch.float64)
    for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1)):
        weight = (w1[:, 0] if dx else 1 - w1[:, 0]) * (w1[:, 1] if dy else 1 - w1[:, 1])
        kernel.index_put_((x0[:, 1] + dy, x0[:, 0] + dx), weight, accumulate=True)
    kernel = kernel[:size, :size]
    return (kernel / kernel.sum()).float()


class MotionBlur(Degradation):
    """Random camera-shake blur (a different kernel for every seed) plus optional noise."""

    def __init__(self, kernel_size: int = 31, noise_sigma: float = 0.01, clip: bool = True,
                 name: str = "motion_blur") -> None:
        _check_kernel_size(kernel_size)
        if kernel_size < 3:
            raise ValueError(f"kernel_size must be at least 3 for motion blur, not {kernel_size}")
        _check_sigma("noise_sigma", noise_sigma)
        super().__init__(name, kernel_size=kernel_size, noise_sigma=float(noise_sigma), clip=clip)

    def kernel(self, seed: int) -> Tensor:
        return camera_shake_kernel(self.params["kernel_size"], seeded_generator(seed, _KERNEL_STREAM))

    def degrade(self, clean: Tensor, seed: int) -> Tensor:
        blurred = convolve(clean, self.kernel(seed))
        return _finish(_add_noise(blurred, self.params["noise_sigma"], seed), self.params["clip"])
