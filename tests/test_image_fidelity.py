"""Files keep what restoration must not change: bit depth, greyscale, alpha (bit-exact), ICC profile,
EXIF; checked by reading the written files back with Pillow and tifffile, the independent readers."""

import io

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image, ImageCms, ImageOps

from png_fixtures import png16_bytes, read_png16
from real_photos import photo_array
from serpentir.errors import UserError
from serpentir.image_io import picture_from_pil, read_picture, write_picture

ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _exif(orientation=None) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "SerpentCam"  # Make
    if orientation:
        exif[0x0112] = orientation
    return exif


def _alpha(shape, dtype):
    """An alpha with every kind of pixel: holes, opaque, and in-between values."""
    top = np.iinfo(dtype).max
    alpha = np.random.default_rng(3).integers(0, top + 1, shape, dtype=np.int64).astype(dtype)
    alpha[:5, :5] = 0
    alpha[-5:, -5:] = top
    return alpha


def _rgb16():
    rng = np.random.default_rng(4)
    return (photo_array(size=(24, 30)).astype(np.uint16) * 257 + rng.integers(0, 257, (24, 30, 3))).astype(np.uint16)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
@pytest.mark.parametrize("kind", ["L", "LA", "RGB", "RGBA"])
def test_8bit_kinds_round_trip_exactly(tmp_path, suffix, kind):
    rgb = photo_array(size=(24, 30))
    im = Image.fromarray(rgb).convert(kind[0] if kind in ("L", "LA") else "RGB")
    if "A" in kind:
        im.putalpha(Image.fromarray(_alpha((24, 30), np.uint8)))
    src, out = tmp_path / f"in{suffix}", tmp_path / f"out{suffix}"
    im.save(src, icc_profile=ICC)
    picture = read_picture(src)
    assert picture.colour.shape[0] == (1 if kind.startswith("L") else 3) and picture.bit_depth == 8
    write_picture(picture, out)
    back = Image.open(out)
    assert back.mode == kind
    assert np.array_equal(np.asarray(back), np.asarray(im))
    assert back.info.get("icc_profile") == ICC


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_16bit_png_round_trips_exactly_with_icc_and_exif(tmp_path, channels):
    values = _rgb16()
    samples = {1: values[:, :, :1], 2: np.dstack([values[:, :, :1], _alpha((24, 30), np.uint16)]), 3: values,
               4: np.dstack([values, _alpha((24, 30), np.uint16)])}[channels]
    src = tmp_path / "in.png"
    src.write_bytes(png16_bytes(samples, icc=ICC, exif=_exif().tobytes()))
    picture = read_picture(src)
    assert picture.bit_depth == 16
    write_picture(picture, tmp_path / "out.png")
    im = Image.open(tmp_path / "out.png")
    assert im.info["icc_profile"] == ICC and im.getexif()[0x010F] == "SerpentCam"
    back = read_picture(tmp_path / "out.png")
    assert torch.equal(back.colour, picture.colour)
    assert (back.alpha is None) == (channels in (1, 3))
    if back.alpha is not None:
        assert back.alpha.dtype == np.uint16 and np.array_equal(back.alpha, samples[:, :, -1])
    if channels == 1:  # Pillow reads 16-bit grey whole: an independent check of every sample
        assert np.array_equal(np.asarray(im).astype(np.uint16), values[:, :, 0])
    # an independent decoder (pypng) reads every sample of what was written
    assert np.array_equal(read_png16((tmp_path / "out.png").read_bytes()), samples)


@pytest.mark.parametrize("channels", [2, 3, 4])
def test_interlaced_16bit_png_reads_every_sample(tmp_path, channels):
    """Adam7-interlaced 16-bit colour PNGs (written by pypng) read whole, with their metadata."""
    values = _rgb16()
    samples = {2: np.dstack([values[:, :, :1], _alpha((24, 30), np.uint16)]), 3: values,
               4: np.dstack([values, _alpha((24, 30), np.uint16)])}[channels]
    src = tmp_path / "interlaced.png"
    src.write_bytes(png16_bytes(samples, interlace=True, icc=ICC))
    assert src.read_bytes()[28] == 1  # IHDR's interlace method: Adam7
    picture = read_picture(src)
    assert picture.bit_depth == 16 and picture.icc_profile == ICC
    colour = samples[:, :, :1 if channels == 2 else 3].astype(np.float32) / 65535
    assert torch.equal(picture.colour, torch.from_numpy(colour).permute(2, 0, 1))
    assert (picture.alpha is None) == (channels == 3)
    if picture.alpha is not None:
        assert np.array_equal(picture.alpha, samples[:, :, -1])


def test_a_truncated_16bit_png_is_one_line_naming_the_file(tmp_path):
    data = png16_bytes(_rgb16())
    path = tmp_path / "cut.png"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError) as info:
        read_picture(path)
    assert str(info.value).startswith(f"{path}: ") and "\n" not in str(info.value)


@pytest.mark.parametrize("alpha", [False, True])
def test_16bit_tiff_round_trips_exactly(tmp_path, alpha):
    values = _rgb16()
    if alpha:
        values = np.dstack([values, _alpha((24, 30), np.uint16)])
    tifffile.imwrite(tmp_path / "in.tif", values, photometric="rgb", extrasamples=["unassalpha"] if alpha else None)
    write_picture(read_picture(tmp_path / "in.tif"), tmp_path / "out.tiff")
    assert np.array_equal(tifffile.imread(tmp_path / "out.tiff"), values)


def test_lossy_formats_keep_metadata_and_quality_matters(tmp_path):
    im = Image.fromarray(photo_array(size=(64, 80)))
    im.save(tmp_path / "in.png", icc_profile=ICC, exif=_exif())
    picture = read_picture(tmp_path / "in.png")
    sizes = {}
    for name, quality in (("hi.jpg", 95), ("lo.jpg", 20), ("x.webp", 90)):
        write_picture(picture, tmp_path / name, quality=quality)
        back = Image.open(tmp_path / name)
        assert back.format == ("JPEG" if name.endswith("jpg") else "WEBP")
        assert back.info["icc_profile"] == ICC and back.getexif()[0x010F] == "SerpentCam"
        sizes[name] = (tmp_path / name).stat().st_size
    assert sizes["lo.jpg"] < sizes["hi.jpg"] / 2
    with_alpha = im.copy()
    with_alpha.putalpha(Image.fromarray(_alpha((64, 80), np.uint8)))
    rgba = picture_from_pil(with_alpha)
    with pytest.raises(UserError, match="JPEG has no alpha"):
        write_picture(rgba, tmp_path / "a.jpg")
    write_picture(rgba, tmp_path / "a.webp", quality=90)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "a.webp"))[:, :, 3], rgba.alpha)  # WebP alpha is lossless


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_applied_as_pillow_does_and_reset_in_the_output(tmp_path, orientation):
    im = Image.fromarray(photo_array(size=(20, 30)))
    im.save(tmp_path / "in.png", exif=_exif(orientation))
    picture = read_picture(tmp_path / "in.png")
    upright = np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / "in.png")))
    assert np.array_equal((picture.colour.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8), upright)
    write_picture(picture, tmp_path / "out.jpg")
    exif = Image.open(tmp_path / "out.jpg").getexif()
    assert exif.get(0x0112, 1) == 1 and exif[0x010F] == "SerpentCam"  # upright now, the rest kept


def test_written_files_are_complete_or_absent(tmp_path):
    picture = read_picture(_save(tmp_path / "in.png", Image.fromarray(photo_array())))
    write_picture(picture, tmp_path / "o.png")
    with pytest.raises(UserError, match="already exists"):
        write_picture(picture, tmp_path / "o.png")
    with pytest.raises(UserError, match="unknown image format"):
        write_picture(picture, tmp_path / "o.xyz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png", "o.png"]


def _save(path, im):
    buffer = io.BytesIO()
    im.save(buffer, format="PNG")
    path.write_bytes(buffer.getvalue())
    return path
