"""serpentir.load_model / serpentir.restore: every kind of image in, the same kind back (type, mode, dtype,
size, alpha bit-exact), with the colour equal to the network applied directly (the independent path)."""

import numpy as np
import pytest
import torch
from PIL import Image

import serpentir
from real_photos import photo, photo_array
from serpentir.checkpoint import build_model, build_task, save_checkpoint
from serpentir.errors import UserError
from serpentir.metrics import psnr

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "denoise.safetensors"
    save_checkpoint(path, model=build_model("serpent-t", {}, channels=3), task=build_task("denoise"), step=0)
    return serpentir.load_model(path)


def _direct(model, rgb01: torch.Tensor) -> torch.Tensor:
    """The network on a (3, H, W) float image, as the reference."""
    with torch.no_grad():
        return model(rgb01[None])[0].clamp(0, 1)


def _u8(x: torch.Tensor) -> np.ndarray:
    return np.rint(x.permute(1, 2, 0).numpy() * 255).astype(np.uint8)


def test_load_model_reads_task_and_architecture_from_the_file(model, tmp_path):
    assert model.task_name == "denoise" and not model.training
    bundled = serpentir.load_model("gaussian_deblur")
    assert bundled.task_name == "gaussian_deblur" and bundled.arch["kwargs"].get("embed_dim") == 24
    with pytest.raises(UserError, match="no bundled weights for task 'dehaze'"):
        serpentir.load_model("dehaze")
    with pytest.raises(UserError, match="no such checkpoint"):
        serpentir.load_model(tmp_path / "none.safetensors")


def test_numpy_uint8_rgb_is_the_network_output_quantised(model):
    array = photo_array(size=(40, 48))
    out = serpentir.restore(array, model=model)
    assert out.shape == array.shape and out.dtype == np.uint8
    expected = _u8(_direct(model, torch.from_numpy(array).permute(2, 0, 1).float() / 255))
    assert np.abs(out.astype(int) - expected.astype(int)).max() <= 1  # float rounding at the .5 boundary


@pytest.mark.parametrize("dtype", [np.uint16, np.float32, np.float64])
def test_numpy_dtypes_and_rgba_alpha_come_back(model, dtype):
    rgb = photo_array(size=(40, 48)).astype(np.float64) / 255
    alpha = np.random.default_rng(0).random((40, 48))
    alpha[:8, :8] = 0
    rgba = np.dstack([rgb, alpha])
    array = (rgba * 65535).round().astype(np.uint16) if dtype == np.uint16 else rgba.astype(dtype)
    out = serpentir.restore(array, model=model)
    assert out.dtype == array.dtype and out.shape == array.shape
    assert np.array_equal(out[:, :, 3], array[:, :, 3])  # alpha bit-exact
    colour = torch.from_numpy(array[:, :, :3].astype(np.float32) / (65535 if dtype == np.uint16 else 1)).permute(2, 0, 1)
    expected = _direct(model, colour).permute(1, 2, 0).numpy()
    scale = 65535 if dtype == np.uint16 else 1
    assert np.abs(out[:, :, :3] / scale - expected).max() <= 1e-5 + 0.5 / 65535


def test_grey_stays_grey_through_a_colour_model(model):
    grey = photo_array(size=(40, 48))[:, :, 1]
    out = serpentir.restore(grey, model=model)
    assert out.shape == grey.shape and out.dtype == np.uint8
    rgb = torch.from_numpy(grey).float().div(255)[None].expand(3, -1, -1)
    r, g, b = _direct(model, rgb)
    expected = np.rint((0.299 * r + 0.587 * g + 0.114 * b).numpy() * 255)
    assert np.abs(out - expected).max() <= 1


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA", "I;16"])
def test_pil_images_keep_mode_size_alpha_and_profile(model, mode):
    base = Image.fromarray(photo_array(size=(40, 48)))
    if mode == "I;16":
        im = Image.fromarray((np.asarray(base.convert("L")).astype(np.uint16) * 257))
    else:
        im = base.convert(mode)
    if "A" in mode:
        im.putalpha(Image.fromarray(np.random.default_rng(1).integers(0, 256, (40, 48), dtype=np.uint8)))
    im.info["icc_profile"] = b"profile bytes"
    out = serpentir.restore(im, model=model)
    assert isinstance(out, Image.Image) and out.mode == im.mode and out.size == im.size
    assert out.info["icc_profile"] == b"profile bytes"
    if "A" in mode:
        assert np.array_equal(np.asarray(out.getchannel("A")), np.asarray(im.getchannel("A")))
    assert not np.array_equal(np.asarray(out), np.asarray(im))  # it was restored, not passed through


def test_tensors_keep_shape_dtype_and_alpha(model):
    rgb = photo()[:, :40, :48]
    out = serpentir.restore(rgb, model=model)
    assert out.shape == rgb.shape and out.dtype == torch.float32
    torch.testing.assert_close(out, _direct(model, rgb), atol=1e-5, rtol=0)
    batch = torch.cat([torch.stack([rgb, rgb.flip(-1)]), torch.rand(2, 1, 40, 48)], dim=1).half()
    out = serpentir.restore(batch, model=model)
    assert out.shape == batch.shape and out.dtype == torch.float16 and torch.equal(out[:, 3], batch[:, 3])
    as_u8 = (rgb * 255).round().to(torch.uint8)
    assert serpentir.restore(as_u8, model=model).dtype == torch.uint8


def test_one_channel_model_restores_rgb_channel_by_channel(tmp_path):
    torch.manual_seed(1)
    path = save_checkpoint(tmp_path / "g.safetensors", model=build_model("serpent-t", {}, channels=1),
                           task=build_task("denoise"), step=0)
    grey_model = serpentir.load_model(path)
    rgb = photo()[:, :40, :48]
    with torch.no_grad():
        expected = grey_model(rgb[:, None])[:, 0].clamp(0, 1)
    torch.testing.assert_close(serpentir.restore(rgb, model=grey_model), expected, atol=1e-5, rtol=0)


def test_task_mismatch_and_masks_are_refused_clearly(model, tmp_path):
    with pytest.raises(UserError, match="trained for task 'denoise', not 'sr4'"):
        serpentir.restore(photo_array(), task="sr4", model=model)
    path = save_checkpoint(tmp_path / "i.safetensors", model=build_model("serpent-t", {}, channels=3, extra_channels=1),
                           task=build_task("inpaint"), step=0)
    inpaint = serpentir.load_model(path)
    with pytest.raises(UserError, match="needs a mask"):
        serpentir.restore(photo_array(size=(32, 32)), model=inpaint)
    mask = np.zeros((32, 32), np.uint8)
    mask[8:16, 8:16] = 255
    assert serpentir.restore(photo_array(size=(32, 32)), model=inpaint, mask=mask).shape == (32, 32, 3)


def test_bundled_denoiser_cleans_a_held_out_photo():
    clean = photo_array("astronaut", (96, 96), top=60, left=180)
    noisy = np.clip(clean + np.random.default_rng(0).normal(0, 25, clean.shape), 0, 255).astype(np.uint8)
    out = serpentir.restore(noisy, task="denoise")

    def score(a):
        return psnr(torch.from_numpy(a).permute(2, 0, 1)[None] / 255., torch.from_numpy(clean).permute(2, 0, 1)[None] / 255.).item()

    assert score(out) > score(noisy) + 3
