"""serpentir.metrics.bands: the error split by radial frequency, against Parseval and pure sinusoids."""

from __future__ import annotations

import math

import pytest
import torch

from serpentir.metrics import band_labels, band_mse, band_psnr, psnr


def wave(kx: int, ky: int, size: int = 64, amplitude: float = 0.1) -> torch.Tensor:
    """A cosine of kx and ky whole periods across a size x size image: frequency (kx, ky) / size cycles/pixel."""
    y, x = torch.meshgrid(torch.arange(size, dtype=torch.float64), torch.arange(size, dtype=torch.float64),
                          indexing="ij")
    return amplitude * torch.cos(2 * math.pi * (kx * x + ky * y) / size)


def test_band_energies_sum_to_the_mean_squared_error():
    g = torch.Generator().manual_seed(0)
    pred, clean = torch.rand(2, 3, 20, 30, generator=g), torch.rand(2, 3, 20, 30, generator=g)
    bands = band_mse(pred, clean)
    assert bands.shape == (2, 3) and (bands >= 0).all()
    mse = (pred.double() - clean.double()).pow(2).flatten(1).mean(1)
    assert torch.allclose(bands.sum(1), mse, rtol=1e-12, atol=0)
    # the same in dB: 10^(-PSNR/10) is the sum over bands of 10^(-band PSNR/10)
    total = torch.pow(10.0, -band_psnr(pred, clean) / 10).sum(1)
    assert torch.allclose(total, torch.pow(10.0, -psnr(pred, clean).double() / 10), rtol=1e-5)


@pytest.mark.parametrize("kx, ky, band", [
    (4, 0, 0),    # 0.0625 cycles/pixel: low [0, 1/8)
    (0, 12, 1),   # 0.1875: mid [1/8, 1/4)
    (20, 0, 2),   # 0.3125: high [1/4, ...)
    (6, 6, 1),    # each axis 0.094 (low alone), radius 0.133: mid, so the split is radial
    (16, 0, 2),   # exactly 1/4: the high band's lower edge belongs to it
    (24, 24, 2),  # radius 0.53, beyond 1/2 in the corners: still high
])
def test_a_sinusoid_error_lands_in_its_band(kx, ky, band):
    clean = torch.full((1, 3, 64, 64), 0.5, dtype=torch.float64)
    pred = clean + wave(kx, ky)
    bands = band_mse(pred, clean)[0]
    assert bands[band].item() == pytest.approx(0.1 ** 2 / 2, rel=1e-9)  # mean of (A cos)^2 over whole periods
    assert bands.sum().item() == pytest.approx(bands[band].item(), rel=1e-9)


def test_labels_and_shape_errors():
    assert band_labels() == ["[0, 1/8)", "[1/8, 1/4)", "[1/4, 0.71]"]
    assert band_labels((0.1,)) == ["[0, 1/10)", "[1/10, 0.71]"]
    with pytest.raises(ValueError, match="one shape"):
        band_mse(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 9))
    assert band_psnr(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8)).isinf().all()
