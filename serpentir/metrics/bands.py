"""The error of a restoration split by spatial frequency: where, coarse structure or fine detail, one
model loses to another. A single PSNR cannot say whether a large patch costs fine detail; the same
mean squared error split into radial bands of the 2-D spectrum can.

Band MSE: the part of the mean squared error (restored minus clean, per pixel and channel, images in
[0, 1]) carried by the 2-D DFT frequencies whose radius sqrt(fx^2 + fy^2), in cycles per pixel, lies
in the band. By Parseval the bands' MSEs sum to the MSE. Band PSNR is 10 log10(1 / band MSE): higher
is better, and 10 ** (-PSNR / 10) is the sum of 10 ** (-band PSNR / 10) over the bands.
"""

from __future__ import annotations

from fractions import Fraction

import torch
from torch import Tensor

# edges between bands, cycles per pixel: low [0, 1/8), mid [1/8, 1/4), high [1/4, sqrt(2)/2] (the corners)
BAND_EDGES: tuple[float, ...] = (1 / 8, 1 / 4)
BAND_NAMES: tuple[str, ...] = ("low", "mid", "high")


def band_labels(edges: tuple[float, ...] = BAND_EDGES) -> list[str]:
    """'[0, 1/8)', '[1/8, 1/4)', '[1/4, 0.71]': each band's radial frequencies in cycles per pixel."""
    def text(v: float) -> str:
        f = Fraction(v).limit_denominator(64)
        return str(f) if abs(float(f) - v) < 1e-12 else f"{v:.3g}"

    bounds = ["0", *(text(e) for e in edges)]
    return [f"[{a}, {b})" for a, b in zip(bounds, bounds[1:])] + [f"[{bounds[-1]}, 0.71]"]


def radial_frequency(height: int, width: int, device=None) -> Tensor:
    """(H, W) radius sqrt(fx^2 + fy^2) of each 2-D DFT bin, in cycles per pixel (0 to sqrt(2)/2)."""
    fy = torch.fft.fftfreq(height, device=device, dtype=torch.float64)
    fx = torch.fft.fftfreq(width, device=device, dtype=torch.float64)
    return torch.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2)


def band_mse(pred: Tensor, target: Tensor, edges: tuple[float, ...] = BAND_EDGES) -> Tensor:
    """(N, len(edges) + 1): each band's share of the per-image MSE of (N, C, H, W) images; rows sum to the MSE."""
    if pred.shape != target.shape or pred.dim() != 4:
        raise ValueError(f"expected two (N, C, H, W) tensors of one shape, got {tuple(pred.shape)} and "
                         f"{tuple(target.shape)}")
    dtype = torch.float64 if pred.device.type == "cpu" else torch.float32
    error = pred.to(dtype) - target.to(dtype)
    n, c, h, w = error.shape
    power = torch.fft.fft2(error).abs().pow(2).sum(dim=1)  # (N, H, W), summed over channels
    radius = radial_frequency(h, w, device=error.device)
    band = torch.bucketize(radius, torch.tensor(edges, dtype=radius.dtype, device=radius.device), right=True)
    out = torch.zeros(n, len(edges) + 1, dtype=dtype, device=error.device)
    for b in range(len(edges) + 1):
        # Parseval: sum |e|^2 = sum |E|^2 / (H W); the mean over C H W pixels divides by C H W again
        out[:, b] = power[:, band == b].sum(dim=1) / (h * w) / (c * h * w)
    return out


def band_psnr(pred: Tensor, target: Tensor, edges: tuple[float, ...] = BAND_EDGES) -> Tensor:
    """(N, bands) 10 log10(1 / band MSE) in dB, images in [0, 1]; inf for a band with no error."""
    return -10.0 * torch.log10(band_mse(pred, target, edges))
