"""PSNR and SSIM against skimage.metrics on real photos with real degradations, RGB and Y channel."""

import numpy as np
import pytest
import torch
from skimage.color import rgb2ycbcr
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from real_photos import photo
from serpentir.degradations import get_task
from serpentir.metrics import psnr, rgb_to_y, ssim


@pytest.fixture(scope="module")
def pairs():
    """Three real photo crops and their degraded versions, as one (N, 3, H, W) batch each."""
    clean = torch.stack([photo("astronaut", (72, 96), 40, 180), photo("coffee", (72, 96), 150, 250),
                         photo("chelsea", (72, 96), 90, 140)])
    degraded = torch.stack([get_task("gaussian_deblur")(clean[0], 0), get_task("denoise")(clean[1], 1),
                            get_task("jpeg")(clean[2], 2)])
    return clean, degraded


def _hwc(t):
    return t.permute(1, 2, 0).double().numpy()


def _y(t):
    return rgb2ycbcr(_hwc(t))[:, :, 0] / 255  # skimage's own BT.601 conversion, independently written


@pytest.mark.parametrize("crop", [0, 4])
def test_psnr_matches_skimage(pairs, crop):
    clean, degraded = pairs
    c = slice(crop, -crop) if crop else slice(None)
    rgb = psnr(degraded, clean, crop_border=crop)
    y = psnr(degraded, clean, crop_border=crop, y_channel=True)
    assert rgb.shape == (3,) and y.shape == (3,)
    for i in range(3):
        ref = peak_signal_noise_ratio(_hwc(clean[i])[c, c], _hwc(degraded[i])[c, c], data_range=1)
        assert abs(float(rgb[i]) - ref) < 1e-4
        ref_y = peak_signal_noise_ratio(_y(clean[i])[c, c], _y(degraded[i])[c, c], data_range=1)
        assert abs(float(y[i]) - ref_y) < 1e-4
    assert not torch.allclose(rgb, y)


@pytest.mark.parametrize("crop", [0, 4])
def test_ssim_matches_skimage(pairs, crop):
    clean, degraded = pairs
    c = slice(crop, -crop) if crop else slice(None)
    rgb = ssim(degraded, clean, crop_border=crop)
    y = ssim(degraded, clean, crop_border=crop, y_channel=True)
    opts = dict(data_range=1, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    for i in range(3):
        ref = structural_similarity(_hwc(clean[i])[c, c], _hwc(degraded[i])[c, c], channel_axis=2, **opts)
        assert abs(float(rgb[i]) - ref) < 1e-4
        ref_y = structural_similarity(_y(clean[i])[c, c], _y(degraded[i])[c, c], **opts)
        assert abs(float(y[i]) - ref_y) < 1e-4


def test_hand_computed_values():
    x = torch.full((1, 3, 16, 16), 0.5)
    assert float(psnr(x + 0.1, x)) == pytest.approx(20.0, abs=1e-4)  # MSE 0.01
    assert float(psnr(x + 0.1, x, data_range=2.0)) == pytest.approx(20 + 20 * np.log10(2), abs=1e-4)
    assert torch.isinf(psnr(x, x)).all()
    assert float(ssim(x, x)) == pytest.approx(1.0)
    # Constant images: SSIM reduces to its luminance term (2 mu_x mu_y + C1) / (mu_x^2 + mu_y^2 + C1).
    c1 = 0.01**2
    assert float(ssim(x + 0.2, x)) == pytest.approx((2 * 0.7 * 0.5 + c1) / (0.49 + 0.25 + c1), abs=1e-6)
    white = torch.ones(1, 3, 1, 1)
    assert float(rgb_to_y(white)) == pytest.approx(235 / 255) and float(rgb_to_y(0 * white)) == pytest.approx(16 / 255)


def test_shapes_and_errors(pairs):
    clean, degraded = pairs
    assert psnr(degraded[0], clean[0]).shape == (1,)  # a single (C, H, W) image
    assert ssim(degraded[:, :1], clean[:, :1], y_channel=True).shape == (3,)  # greyscale is already luma
    with pytest.raises(ValueError, match="same shape"):
        psnr(degraded, clean[:2])
    with pytest.raises(ValueError, match="crop_border"):
        ssim(degraded, clean, crop_border=40)
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(degraded[..., :10, :10], clean[..., :10, :10])


def test_ssim_is_differentiable(pairs):
    clean, degraded = pairs
    x = degraded.clone().requires_grad_()
    (1 - ssim(x, clean)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
