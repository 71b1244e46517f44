"""Blind degradations: drawn strengths cover their documented ranges, and each stage's statistics
match hand-computed expectations (noise std, JPEG through Pillow, 4:2:0 chroma, block means, kernel moments)."""

import io
import math

import numpy as np
import pytest
import torch
from PIL import Image

from real_photos import photo, photo_array
from serpentir.degradations import (BicubicDownUp, BlindDeblur, anisotropic_gaussian_kernel, convolve, describe,
                                    down_up, downscale, get_task, jpeg_bytes, jpeg_roundtrip)
from serpentir.errors import UserError

BLIND = ["general", "deblur", "denoise_blind", "jpeg_blind", "sr4_blind", "sr2_blind"]


@pytest.fixture(scope="module")
def clean():
    return photo("astronaut", size=(64, 64), top=100, left=180)


@pytest.mark.parametrize("name", BLIND)
def test_blind_task_is_reproducible_rebuildable_and_varies_per_seed(name, clean):
    task = get_task(name)
    again = get_task(task.name, **task.params)
    assert torch.equal(task(clean, 5), again(clean, 5))
    outputs = [task(clean, s) for s in range(6)]
    assert outputs[0].shape == clean.shape and all(0 <= o.min() and o.max() <= 1 for o in outputs)
    assert len({describe(task.sample(s)) for s in range(12)}) > 3  # strengths differ between images


def test_blind_task_rejects_bad_options():
    with pytest.raises(UserError, match="max_quality"):
        get_task("jpeg_blind", min_quality=50, max_quality=20)
    with pytest.raises(UserError, match="bad option"):
        get_task("general", sigma=2)


def test_gaussian_noise_has_the_drawn_std(clean):
    task = get_task("denoise_blind")
    flat = torch.full((3, 128, 128), 0.5)
    out = task.apply(flat, {"noise": "gaussian", "noise_sigma": 20 / 255}, seed=3)
    # 49152 samples: the std of the sample std is sigma / sqrt(2 n) ~ 0.3%
    assert abs(out.std().item() - 20 / 255) < 0.01 * 20 / 255
    assert abs(out.mean().item() - 0.5) < 0.002


def test_poisson_gaussian_noise_variance_grows_with_intensity():
    task = get_task("denoise_blind")
    params = {"noise": "poisson_gaussian", "shot": 0.1, "read": 0.01}
    for level in (0.1, 0.4, 0.8):
        out = task.apply(torch.full((3, 128, 128), level), params, seed=1)
        expected = math.sqrt(0.1**2 * level + 0.01**2)
        assert abs(out.std().item() - expected) < 0.02 * expected, level


def test_denoise_blind_draws_cover_the_documented_ranges():
    task = get_task("denoise_blind")
    draws = [task.sample(s) for s in range(400)]
    gaussian = [d["noise_sigma"] for d in draws if d["noise"] == "gaussian"]
    assert abs(1 - len(gaussian) / 400 - 0.4) < 0.08  # Poisson-Gaussian share 40%
    assert 0 <= min(gaussian) < 5 / 255 and 45 / 255 < max(gaussian) <= 50 / 255


def test_general_keeps_about_ten_percent_clean_and_mixes_stages(clean):
    task = get_task("general")
    draws = [task.sample(s) for s in range(1000)]
    clean_share = sum(d == {} for d in draws) / 1000
    assert abs(clean_share - 0.10) < 0.03  # binomial sd ~0.01
    degraded = [d for d in draws if d]
    # each stage on with p 1/2, one forced on when none is: P(on) = 1/2 + (1/8) / 3
    for key in ("blur", "noise", "jpeg"):
        share = sum(key in d for d in degraded) / len(degraded)
        assert abs(share - (0.5 + 0.125 / 3)) < 0.05, key
    qualities = [q for d in degraded for q in d.get("jpeg", [])]
    assert min(qualities) >= 20 and max(qualities) <= 95
    # a clean draw leaves the photo untouched, bit for bit
    seed = next(s for s, d in enumerate(draws) if d == {})
    assert torch.equal(task(clean, seed), clean)


def test_deblur_blur_is_the_kernel_it_reports(clean):
    task = BlindDeblur(max_noise=0.0)
    for seed in range(8):
        params = task.sample(seed)
        kernel = task.kernel(seed)
        if params["blur"] == "none":
            assert kernel is None and torch.equal(task(clean, seed), clean)
            continue
        assert torch.allclose(task(clean, seed), convolve(clean, kernel).clamp(0, 1), atol=1e-6)
        assert abs(kernel.sum().item() - 1) < 1e-5


def test_deblur_draws_cover_kinds_and_sigmas():
    task = get_task("deblur")
    draws = [task.sample(s) for s in range(400)]
    kinds = {k: sum(d["blur"] == k for d in draws) / 400 for k in ("none", "isotropic", "anisotropic", "motion")}
    for kind, share in {"none": 0.10, "isotropic": 0.40, "anisotropic": 0.25, "motion": 0.25}.items():
        assert abs(kinds[kind] - share) < 0.07, kind
    sigmas = [d["sigma_x"] for d in draws if d["blur"] in ("isotropic", "anisotropic")]
    assert 0.2 <= min(sigmas) < 0.5 and 3.5 < max(sigmas) <= 4.0
    assert max(d["noise_sigma"] for d in draws) <= 10 / 255


def test_anisotropic_kernel_has_the_requested_covariance():
    sx, sy, angle = 1.5, 3.0, 0.6
    k = anisotropic_gaussian_kernel(41, sx, sy, angle).double()
    r = torch.arange(41, dtype=torch.float64) - 20
    y, x = torch.meshgrid(r, r, indexing="ij")
    cov = torch.tensor([[(k * x * x).sum(), (k * x * y).sum()], [(k * x * y).sum(), (k * y * y).sum()]])
    c, s = math.cos(angle), math.sin(angle)
    rot = torch.tensor([[c, -s], [s, c]], dtype=torch.float64)
    expected = rot @ torch.diag(torch.tensor([sx**2, sy**2], dtype=torch.float64)) @ rot.T
    assert torch.allclose(cov, expected, atol=0.01)


def test_jpeg_matches_pillow_with_420_chroma(clean):
    data = jpeg_bytes(clean, 40)
    with Image.open(io.BytesIO(data)) as im:
        # component 1 (Y) sampled 2x2 against 1x1 chroma: 4:2:0
        assert [(c[1], c[2]) for c in im.layer] == [(2, 2), (1, 1), (1, 1)]
    array = photo_array("astronaut", size=(64, 64), top=100, left=180)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=40, subsampling=2)
    reference = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"), dtype=np.float32) / 255
    assert np.array_equal(jpeg_roundtrip(clean, 40).permute(1, 2, 0).numpy(), reference)


def test_420_chroma_loses_one_pixel_colour_stripes():
    """Alternating red and blue columns: 4:2:0 averages their chroma away, 4:4:4 keeps it."""
    stripes = torch.zeros(3, 32, 32)
    stripes[0, :, 0::2] = 1.0
    stripes[2, :, 1::2] = 1.0
    err_420 = (jpeg_roundtrip(stripes, 95, "4:2:0") - stripes).abs().mean().item() * 255
    err_444 = (jpeg_roundtrip(stripes, 95, "4:4:4") - stripes).abs().mean().item() * 255
    assert err_420 > 40 and err_444 < 10


def test_blind_jpeg_compresses_twice_when_drawn(clean):
    task = get_task("jpeg_blind")
    draws = [task.sample(s) for s in range(400)]
    assert abs(sum(len(d["jpeg"]) == 2 for d in draws) / 400 - 0.25) < 0.07
    seed = next(s for s, d in enumerate(draws) if len(d["jpeg"]) == 2)
    q1, q2 = draws[seed]["jpeg"]
    assert torch.equal(task(clean, seed), jpeg_roundtrip(jpeg_roundtrip(clean, q1), q2))


def test_area_downscale_is_the_block_mean(clean):
    blocks = clean.reshape(3, 16, 4, 16, 4).mean(dim=(2, 4))
    assert torch.allclose(downscale(clean, 4, "area"), blocks, atol=1e-6)


def test_bicubic_down_up_is_unchanged_by_the_split(clean):
    assert torch.equal(down_up(clean, 4, "bicubic"), BicubicDownUp(4)(clean, 0))


def test_sr_blind_draws_every_downscaling_mode(clean):
    task = get_task("sr4_blind")
    draws = [task.sample(s) for s in range(60)]
    assert {d["mode"] for d in draws} == {"bicubic", "bilinear", "area"}
    seed = next(s for s, d in enumerate(draws) if d["mode"] == "area" and "blur" not in d)
    assert torch.equal(task(clean, seed), down_up(clean, 4, "area"))
