"""Image files in and out: Pillow/tifffile as the independent reference, bad files as one-line UserErrors."""

import struct
import zlib

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from real_photos import photo, photo_array
from serpentir.errors import UserError
from serpentir.image_io import IMAGE_EXTENSIONS, list_images, load_image, save_image, verify_image


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif", ".webp"])
def test_lossless_8bit_files_load_as_pillow_reads_them(tmp_path, suffix):
    array = photo_array()
    path = tmp_path / f"cat{suffix}"
    Image.fromarray(array).save(path, **({"lossless": True} if suffix == ".webp" else {}))
    img = load_image(path)
    assert img.dtype == torch.float32 and img.shape == (3, 64, 80)
    assert torch.equal(img, torch.from_numpy(array).permute(2, 0, 1).float() / 255)


def test_jpeg_loads_as_pillow_decodes_it(tmp_path):
    path = tmp_path / "cat.JPG"
    Image.fromarray(photo_array()).save(path, quality=80)
    expected = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255
    assert torch.equal(load_image(path), torch.from_numpy(expected).permute(2, 0, 1))


def test_greyscale_and_channel_conversion(tmp_path):
    grey = photo_array()[:, :, 1]
    Image.fromarray(grey).save(tmp_path / "grey.png")
    one = load_image(tmp_path / "grey.png")
    assert one.shape == (1, 64, 80)
    assert torch.equal(load_image(tmp_path / "grey.png", channels=3), one.expand(3, -1, -1))
    Image.fromarray(photo_array()).save(tmp_path / "rgb.png")
    luma = load_image(tmp_path / "rgb.png", channels=1)
    pillow_luma = np.asarray(Image.open(tmp_path / "rgb.png").convert("L"), dtype=np.float32) / 255
    assert luma.shape == (1, 64, 80)
    assert (luma[0] - torch.from_numpy(pillow_luma)).abs().max() <= 1 / 255 + 1e-6  # Pillow rounds to 8 bits
    with pytest.raises(UserError, match="channels"):
        load_image(tmp_path / "rgb.png", channels=4)


def test_rgba_is_composited_on_white(tmp_path):
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[0, 0] = (255, 0, 0, 255)  # opaque red stays red
    rgba[0, 1] = (0, 0, 0, 0)  # fully transparent black becomes white
    rgba[1, 0] = (0, 0, 255, 51)  # 20% blue over white
    rgba[1, 1] = (0, 255, 0, 255)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    img = load_image(tmp_path / "a.png")
    assert img.shape == (3, 2, 2)
    torch.testing.assert_close(img[:, 0, 0], torch.tensor([1.0, 0, 0]))
    torch.testing.assert_close(img[:, 0, 1], torch.tensor([1.0, 1, 1]))
    torch.testing.assert_close(img[:, 1, 0], torch.tensor([0.8, 0.8, 1.0]))


def test_palette_image_with_transparency(tmp_path):
    im = Image.new("P", (3, 1))
    im.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    im.putdata([0, 1, 0])
    im.info["transparency"] = 1
    im.save(tmp_path / "p.png", transparency=1)
    img = load_image(tmp_path / "p.png")
    assert img[:, 0, 0].tolist() == [1.0, 0.0, 0.0]
    assert img[:, 0, 1].tolist() == [1.0, 1.0, 1.0]  # the transparent index composites to white


def test_16bit_greyscale_png_keeps_full_precision(tmp_path):
    values = np.random.default_rng(0).integers(0, 65536, (9, 7), dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "g16.png")
    img = load_image(tmp_path / "g16.png")
    assert img.shape == (1, 9, 7)
    assert torch.equal(img[0], torch.from_numpy(values.astype(np.float32) / 65535))


def _png16_with_filters(values: np.ndarray, filters: list[int]) -> bytes:
    """A 16-bit colour PNG whose rows use the given filter types (forward filters written out here)."""
    h, w, c = values.shape
    bpp = 2 * c
    rows = values.astype(">u2").reshape(h, w * c).view(np.uint8).astype(np.int32)
    out = []
    for y in range(h):
        cur, up = rows[y], rows[y - 1] if y else np.zeros_like(rows[y])
        left = np.concatenate([np.zeros(bpp, np.int32), cur[:-bpp]])
        upleft = np.concatenate([np.zeros(bpp, np.int32), up[:-bpp]])
        kind = filters[y % len(filters)]
        if kind == 0:
            pred = 0
        elif kind == 1:
            pred = left
        elif kind == 2:
            pred = up
        elif kind == 3:
            pred = (left + up) // 2
        else:
            p = left + up - upleft
            pa, pb, pc = abs(p - left), abs(p - up), abs(p - upleft)
            pred = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, upleft))
        out.append(bytes([kind]) + ((cur - pred) % 256).astype(np.uint8).tobytes())

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    colour = {2: 4, 3: 2, 4: 6}[c]
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, colour, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"".join(out))) + chunk(b"IEND", b""))


@pytest.mark.parametrize("channels", [3, 4])
def test_16bit_colour_png_with_every_row_filter(tmp_path, channels):
    rng = np.random.default_rng(1)
    values = (photo_array(size=(10, 12)).astype(np.uint16) * 257 + rng.integers(0, 257, (10, 12, 3), dtype=np.uint16))
    if channels == 4:
        values = np.concatenate([values, np.full((10, 12, 1), 65535, np.uint16)], axis=2)
    path = tmp_path / "c16.png"
    path.write_bytes(_png16_with_filters(values, [0, 1, 2, 3, 4]))
    assert Image.open(path).mode in ("RGB", "RGBA")  # Pillow itself would keep only the high byte
    img = load_image(path)
    assert torch.equal(img, torch.from_numpy(values[:, :, :3].astype(np.float32) / 65535).permute(2, 0, 1))


def test_16bit_colour_tiff(tmp_path):
    values = np.random.default_rng(2).integers(0, 65536, (8, 6, 3), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "c16.tiff", values)
    expected = torch.from_numpy(values.astype(np.float32) / 65535).permute(2, 0, 1)
    assert torch.equal(load_image(tmp_path / "c16.tiff"), expected)


@pytest.mark.parametrize("channels", [1, 3])
def test_save_16bit_png_round_trip(tmp_path, channels):
    img = photo()[:channels] + torch.rand(channels, 64, 80) / 255
    save_image(img, tmp_path / "out.png", bit_depth=16)
    back = load_image(tmp_path / "out.png")
    assert back.shape == img.shape
    assert (back - img.clamp(0, 1)).abs().max() <= 0.5 / 65535 + 1e-7
    high_byte = np.asarray(Image.open(tmp_path / "out.png"))  # Pillow reads the file we wrote
    assert high_byte.shape[:2] == (64, 80)


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tiff", ".webp", ".jpg"])
def test_save_8bit_formats_and_batch_of_one(tmp_path, suffix):
    img = photo()
    save_image(img[None], tmp_path / f"out{suffix}")  # (1, C, H, W) is accepted
    written = np.asarray(Image.open(tmp_path / f"out{suffix}").convert("RGB"), dtype=np.float32) / 255
    error = np.abs(written - img.permute(1, 2, 0).numpy())
    if suffix in (".jpg", ".webp"):  # lossy at quality 95
        assert error.mean() < 0.01
    else:
        assert error.max() <= 0.5 / 255 + 1e-6


def test_save_clamps_creates_folders_and_refuses_to_overwrite(tmp_path):
    path = tmp_path / "deep" / "er" / "x.png"
    save_image(torch.tensor([[[-0.5, 0.5, 1.5]]]), path)
    assert np.asarray(Image.open(path)).tolist() == [[0, 128, 255]]
    with pytest.raises(UserError, match="x.png: already exists"):
        save_image(torch.zeros(1, 1, 3), path)
    assert np.asarray(Image.open(path)).tolist() == [[0, 128, 255]]
    save_image(torch.zeros(1, 1, 3), path, overwrite=True)
    assert np.asarray(Image.open(path)).tolist() == [[0, 0, 0]]
    assert sorted(p.name for p in path.parent.iterdir()) == ["x.png"]  # no temporary file left


def test_failed_save_leaves_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "x.png"
    save_image(torch.ones(3, 4, 4), path)
    before = path.read_bytes()

    def broken_save(self, *args, **kwargs):
        raise KeyboardInterrupt  # interrupted halfway through writing

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(KeyboardInterrupt):
        save_image(torch.zeros(3, 4, 4), path, overwrite=True)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["x.png"]


def test_save_rejects_unknown_suffix(tmp_path):
    with pytest.raises(UserError, match=r"out\.xyz: unknown image format"):
        save_image(torch.zeros(3, 2, 2), tmp_path / "out.xyz")
    with pytest.raises(UserError, match="16-bit"):
        save_image(torch.zeros(3, 2, 2), tmp_path / "out.jpg", bit_depth=16)


def _bad_files(tmp_path):
    Image.fromarray(photo_array()).save(tmp_path / "good.png")
    data = (tmp_path / "good.png").read_bytes()
    (tmp_path / "truncated.png").write_bytes(data[: len(data) // 2])
    (tmp_path / "notes.png").write_text("this is not an image\n")
    return {
        "truncated.png": "broken or truncated",
        "notes.png": "not an image file",
        "missing.png": "no such file",
    }


def test_bad_files_give_one_line_errors_naming_the_file(tmp_path):
    for name, problem in _bad_files(tmp_path).items():
        for reader in (load_image, verify_image):
            with pytest.raises(UserError) as info:
                reader(tmp_path / name)
            message = str(info.value)
            assert message.startswith(str(tmp_path / name) + ": ") and problem in message
            assert "\n" not in message
    with pytest.raises(UserError, match="is a folder"):
        load_image(tmp_path)


def test_truncated_jpeg_fails_when_decoded(tmp_path):
    Image.fromarray(photo_array()).save(tmp_path / "a.jpg")
    data = (tmp_path / "a.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match=r"cut\.jpg: broken or truncated image"):
        load_image(tmp_path / "cut.jpg")


def test_list_images_recursive_sorted_case_insensitive(tmp_path):
    for rel in ["b.PNG", "a/z.jpeg", "a/c.Tif", "notes.txt", ".hidden.png", ".cache/x.png", "a/._y.jpg", "d.webp"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    found = [p.relative_to(tmp_path).as_posix() for p in list_images(tmp_path)]
    assert found == ["a/c.Tif", "a/z.jpeg", "b.PNG", "d.webp"]
    assert ".png" in IMAGE_EXTENSIONS and ".tiff" in IMAGE_EXTENSIONS
    with pytest.raises(UserError, match="no such folder"):
        list_images(tmp_path / "nope")


def test_exif_orientation_is_applied(tmp_path):
    array = photo_array(size=(20, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    Image.fromarray(array).save(tmp_path / "phone.jpg", exif=exif, quality=95)
    img = load_image(tmp_path / "phone.jpg")
    assert img.shape == (3, 30, 20)
    upright = np.asarray(Image.open(tmp_path / "phone.jpg").transpose(Image.Transpose.ROTATE_270), dtype=np.float32) / 255
    assert torch.equal(img, torch.from_numpy(upright).permute(2, 0, 1))


def test_16bit_grey_with_alpha_png(tmp_path):
    values = np.stack([np.full((3, 4), 30000, np.uint16), np.full((3, 4), 65535, np.uint16)], axis=2)
    path = tmp_path / "la16.png"
    values[0, 0, 1] = 0  # one fully transparent pixel: white
    path.write_bytes(_png16_with_filters(values, [4, 1, 3]))
    expected = torch.full((1, 3, 4), 30000 / 65535)
    expected[0, 0, 0] = 1.0
    torch.testing.assert_close(load_image(path), expected)
