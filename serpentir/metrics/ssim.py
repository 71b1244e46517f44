"""Structural similarity per image (Wang et al. 2004), as skimage and restoration papers compute it."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .paper_convention import prepare_pair

WINDOW_SIZE = 11
WINDOW_SIGMA = 1.5
K1, K2 = 0.01, 0.03


def _gaussian_window(dtype: torch.dtype, device: torch.device) -> Tensor:
    x = torch.arange(WINDOW_SIZE, dtype=torch.float64) - WINDOW_SIZE // 2
    g = torch.exp(-(x**2) / (2 * WINDOW_SIGMA**2))
    return (g / g.sum()).to(device, dtype)


def ssim(x: Tensor, y: Tensor, *, crop_border: int = 0, y_channel: bool = False, data_range: float = 1.0) -> Tensor:
    """Mean SSIM of each image pair, shape (N,): 11x11 Gaussian window (sigma 1.5), K1=0.01, K2=0.03.

    Statistics are population (not sample) moments over the window, the mean is over the valid
    region (no padding) and over channels: skimage's structural_similarity with
    gaussian_weights=True, use_sample_covariance=False. Differentiable, so 1 - ssim works as a loss.
    """
    x, y = prepare_pair(x, y, crop_border, y_channel)
    if min(x.shape[-2:]) < WINDOW_SIZE:
        raise ValueError(f"SSIM needs images of at least {WINDOW_SIZE}x{WINDOW_SIZE}, got {x.shape[-2]}x{x.shape[-1]}")
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    x, y = x.to(dtype), y.to(dtype)
    N, C, H, W = x.shape
    g = _gaussian_window(dtype, x.device)

    def local_mean(t: Tensor) -> Tensor:  # separable Gaussian filter, valid region only
        t = F.conv2d(t.reshape(N * C, 1, *t.shape[-2:]), g.view(1, 1, 1, -1))
        return F.conv2d(t, g.view(1, 1, -1, 1))

    # Moments of mean-centred images: E[x^2] - E[x]^2 then cancels far less in float32 (variance
    # and covariance do not change under a shift; the means get the shift added back).
    shift_x, shift_y = x.mean(dim=(2, 3), keepdim=True), y.mean(dim=(2, 3), keepdim=True)
    x, y = x - shift_x, y - shift_y
    mu_x, mu_y = local_mean(x), local_mean(y)
    var_x = local_mean(x * x) - mu_x**2
    var_y = local_mean(y * y) - mu_y**2
    cov = local_mean(x * y) - mu_x * mu_y
    mu_x, mu_y = mu_x + shift_x.reshape(N * C, 1, 1, 1), mu_y + shift_y.reshape(N * C, 1, 1, 1)
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    s = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return s.reshape(N, -1).mean(dim=1)
