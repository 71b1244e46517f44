"""Peak signal-to-noise ratio per image, the fidelity score every restoration paper reports."""

from __future__ import annotations

import torch
from torch import Tensor

from .paper_convention import prepare_pair


def psnr(x: Tensor, y: Tensor, *, crop_border: int = 0, y_channel: bool = False, data_range: float = 1.0) -> Tensor:
    """PSNR in dB of each image pair, shape (N,): 10 log10(data_range^2 / MSE); inf for identical images.

    Float32 unless the input is float64 (some accelerators have no float64); torch's pairwise sums
    keep it within 1e-4 dB of skimage.metrics.peak_signal_noise_ratio, far below the 0.01 dB
    papers print.
    """
    x, y = prepare_pair(x, y, crop_border, y_channel)
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    mse = (x.to(dtype) - y.to(dtype)).pow(2).flatten(1).mean(dim=1)
    return 10.0 * torch.log10(data_range**2 / mse)
