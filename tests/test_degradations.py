"""Degradations against scipy / Pillow references, plus determinism, shapes and the task registry."""

import io

import numpy as np
import pytest
import scipy.ndimage as ndi
import torch
from PIL import Image

from real_photos import photo
from serpentir.degradations import (
    TASKS,
    BicubicDownUp,
    Degradation,
    GaussianBlur,
    MotionBlur,
    get_task,
    list_tasks,
    reflect_pad,
)
from serpentir.errors import UserError

REQUIRED = ["gaussian_deblur", "motion_deblur", "denoise", "denoise15", "denoise50", "sr2", "sr4", "sr8",
            "inpaint", "jpeg", "jpeg30"]


@pytest.fixture(scope="module")
def clean():
    return photo("coffee", size=(48, 64), top=120, left=200)


def test_gaussian_blur_matches_scipy(clean):
    task = get_task("gaussian_deblur", noise_sigma=0.0)
    out = task(clean, seed=0).double().numpy()
    for c in range(3):
        ref = ndi.gaussian_filter(clean[c].double().numpy(), sigma=3.0, radius=30, mode="reflect")
        np.testing.assert_allclose(out[c], ref, atol=1e-6)
        ref2 = ndi.correlate(clean[c].double().numpy(), task.kernel(0).double().numpy(), mode="reflect")
        np.testing.assert_allclose(out[c], ref2, atol=1e-6)
    k = task.kernel(0)
    assert k.shape == (61, 61) and abs(float(k.sum()) - 1) < 1e-5
    assert torch.equal(task.kernel(0), task.kernel(7))  # Gaussian blur is the same for every seed


def test_gaussian_blur_on_image_smaller_than_kernel():
    tiny = photo(size=(9, 12))
    out = GaussianBlur(noise_sigma=0.0)(tiny, 0)
    ref = np.stack([ndi.gaussian_filter(c.double().numpy(), 3.0, radius=30, mode="reflect") for c in tiny])
    np.testing.assert_allclose(out.numpy(), ref, atol=1e-6)


def test_reflect_pad_matches_numpy_symmetric_even_when_wider_than_image():
    x = torch.arange(12.0).view(1, 3, 4)
    for ph, pw in [(1, 2), (5, 9)]:
        ref = np.pad(x.numpy(), ((0, 0), (ph, ph), (pw, pw)), mode="symmetric")
        assert np.array_equal(reflect_pad(x, ph, pw).numpy(), ref)


def test_motion_blur_is_a_convolution_with_its_kernel(clean):
    task = get_task("motion_deblur", noise_sigma=0.0)
    for seed in (0, 5):
        k = task.kernel(seed)
        assert k.shape == (31, 31) and (k >= 0).all() and abs(float(k.sum()) - 1) < 1e-5
        out = task(clean, seed).double().numpy()
        for c in range(3):
            ref = ndi.convolve(clean[c].double().numpy(), k.double().numpy(), mode="reflect")
            np.testing.assert_allclose(out[c], ref, atol=1e-5)
    assert not torch.equal(task.kernel(0), task.kernel(1))
    assert torch.equal(task.kernel(3), task.kernel(3))


def test_motion_kernels_are_trajectories_not_blobs():
    kernels = [MotionBlur(kernel_size=31).kernel(s) for s in range(20)]
    support = [int((k > 1e-3).sum()) for k in kernels]
    assert all(10 < n < 31 * 31 // 3 for n in support), support  # a thin path, neither a dot nor a disc
    mass_centre = [float((k * torch.arange(31.0)[:, None]).sum()) for k in kernels]
    assert all(5 < m < 25 for m in mass_centre)


@pytest.mark.parametrize("name", REQUIRED)
def test_every_task_keeps_size_range_and_is_deterministic(clean, name):
    task = get_task(name)
    out = task(clean, seed=3)
    assert out.shape == (3 + task.extra_channels, 48, 64) and out.dtype == torch.float32
    assert out.min() >= 0 and out.max() <= 1
    assert torch.equal(out, task(clean, seed=3))
    rebuilt = get_task(task.name, **task.params)
    assert torch.equal(out, rebuilt(clean, seed=3))
    assert task.description and "\n" not in task.description and TASKS[name].description == task.description


@pytest.mark.parametrize("name", ["gaussian_deblur", "motion_deblur", "denoise", "inpaint"])
def test_random_tasks_differ_between_seeds(clean, name):
    task = get_task(name)
    assert not torch.equal(task(clean, 0), task(clean, 1))


def test_batch_uses_consecutive_seeds(clean):
    task = get_task("motion_deblur")
    batch = torch.stack([clean, clean.flip(-1)])
    out = task(batch, seed=10)
    assert torch.equal(out[0], task(clean, 10)) and torch.equal(out[1], task(clean.flip(-1), 11))


def test_noise_has_the_requested_sigma():
    grey = torch.full((3, 128, 128), 0.5)
    for name, sigma in [("denoise15", 15 / 255), ("denoise", 25 / 255), ("denoise50", 50 / 255)]:
        noise = get_task(name)(grey, 0) - grey
        assert abs(float(noise.std()) - sigma) < 0.03 * sigma
        assert abs(float(noise.mean())) < 0.01 * sigma * 10


def test_blur_noise_level_is_a_parameter(clean):
    quiet = get_task("gaussian_deblur", noise_sigma=0.0)(clean, 0)
    noisy = get_task("gaussian_deblur")(clean, 0)
    assert abs(float((noisy - quiet).std()) - 0.01) < 0.002


def test_super_resolution_input_loses_more_detail_at_larger_scale(clean):
    errors = [float((get_task(f"sr{s}")(clean, 0) - clean).pow(2).mean()) for s in (2, 4, 8)]
    assert 0 < errors[0] < errors[1] < errors[2]
    flat = torch.full((3, 40, 40), 0.3)
    torch.testing.assert_close(BicubicDownUp(scale=4)(flat, 0), flat)


def test_super_resolution_downscale_agrees_with_pillow_bicubic():
    """torch's antialiased bicubic is meant to match Pillow's resize; check the down step we rely on."""
    import torch.nn.functional as F

    img = photo(size=(64, 64))
    ours = F.interpolate(img[None], size=(16, 16), mode="bicubic", antialias=True)[0].clamp(0, 1)
    pil = Image.fromarray((img.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).resize((16, 16), Image.BICUBIC)
    assert (ours.permute(1, 2, 0) - torch.from_numpy(np.asarray(pil) / 255.0).float()).abs().max() < 2 / 255


def test_inpaint_masks_pixels_and_appends_the_mask(clean):
    task = get_task("inpaint")
    out = task(clean, 4)
    image, mask = out[:3], out[3]
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(mask, task.mask(48, 64, 4))
    assert torch.equal(image[:, mask == 1], torch.zeros_like(image[:, mask == 1]))
    assert torch.equal(image[:, mask == 0], clean[:, mask == 0])
    coverage = [float(task.mask(96, 128, s).mean()) for s in range(20)]
    assert all(0.1 <= c <= 0.6 for c in coverage) and np.std(coverage) > 0.02


def test_inpaint_shapes_and_mean_fill(clean):
    boxes = get_task("inpaint", shapes="boxes", min_fraction=0.3, max_fraction=0.3, fill="mean")
    out = boxes(clean, 0)
    mask = out[3].bool()
    visible_mean = clean[:, ~mask].mean(dim=1)
    torch.testing.assert_close(out[:3, mask], visible_mean[:, None].expand(-1, int(mask.sum())))
    strokes = get_task("inpaint", shapes="strokes")(clean, 0)[3]
    assert 0 < float(strokes.mean()) < 1


@pytest.mark.parametrize("name,quality", [("jpeg", 10), ("jpeg30", 30)])
def test_jpeg_matches_a_pillow_round_trip(clean, name, quality):
    array = (clean.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=quality)
    expected = np.asarray(Image.open(buffer), dtype=np.float32) / 255
    assert torch.equal(get_task(name)(clean, 0), torch.from_numpy(expected).permute(2, 0, 1))
    grey = get_task(name)(clean[:1], 0)
    assert grey.shape == (1, 48, 64)


def test_registry():
    assert set(REQUIRED) <= set(list_tasks())
    assert all(isinstance(get_task(n), Degradation) for n in list_tasks())
    assert get_task("denoise").params["sigma"] == pytest.approx(25 / 255)
    assert get_task("jpeg30").params["quality"] == 30 and get_task("sr8").params["scale"] == 8
    assert get_task("gaussian_deblur").params == {"kernel_size": 61, "sigma": 3.0, "noise_sigma": 0.01, "clip": True}
    assert get_task("motion_deblur").kernel(0) is not None and get_task("denoise").kernel(0) is None
    with pytest.raises(UserError, match="unknown task 'blurr'; known tasks: gaussian_deblur, "):
        get_task("blurr")
    with pytest.raises(UserError, match="bad option for task 'denoise': sigmaa"):
        get_task("denoise", sigmaa=0.1)
    with pytest.raises(UserError, match="bad option for task 'gaussian_deblur': kernel_size"):
        get_task("gaussian_deblur", kernel_size=60)
    with pytest.raises(UserError, match="bad option for task 'jpeg'"):
        get_task("jpeg", quality=0)
