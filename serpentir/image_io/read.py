"""Reading image files: a `Picture` that keeps depth, mode, alpha and metadata, or a plain float tensor.

Conventions:
- 8-bit samples are scaled by 255, 16-bit ones by 65535. Pillow alone would cut 16-bit colour to
  8 bits, so 16-bit colour PNGs (interlaced or not) are decoded by imagecodecs (libpng; chosen in
  docs/png16_codecs.md) and 16-bit colour TIFFs through tifffile (a dependency of scikit-image).
  Their ICC profile and EXIF still come from Pillow, which reads the chunks of any PNG.
- The EXIF orientation tag is applied, so a photo comes out the way a viewer shows it; the EXIF kept
  for the output says "upright" (orientation 1), every other byte of it unchanged.
- Only the first frame of a multi-frame file is read.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from ..errors import UserError
from .files import named_read_errors, one_line
from .picture import Picture, sample_max, to_grey

_ORIENTATION = 0x0112
# Modes Pillow reads that are neither grey nor RGB: converted, and their ICC profile (made for that
# colour space) dropped, since the pixels no longer live in it.
_FOREIGN_SPACES = ("CMYK", "LAB", "HSV", "YCbCr")


def read_picture(path: str | Path) -> Picture:
    """An image file as a Picture: grey stays grey, 16 bits stay 16, alpha and metadata ride along."""
    path = Path(path)
    with named_read_errors(path), Image.open(path) as im:
        icc = im.info.get("icc_profile") or None
        if _is_16bit_colour_png(im):
            samples, depth = _decode_png16(path), 16
        elif _is_16bit_colour_tiff(im):
            samples, depth = _decode_tiff16(path), 16
        else:
            if im.mode in _FOREIGN_SPACES:
                icc = None
            samples, depth = pil_samples(im)
        raw_exif = im.info.get("exif") or None  # read after the pixels: PNG may keep it after the image data
        samples = _orient(samples, im.getexif().get(_ORIENTATION, 1))
    exif = _upright_exif(raw_exif) if raw_exif else None
    return _picture(samples, depth, icc, exif)


def picture_from_pil(im: Image.Image) -> Picture:
    """An in-memory PIL image as a Picture, turned as it is (no EXIF rotation: the caller gets it back as given)."""
    samples, depth = pil_samples(im)
    icc = None if im.mode in _FOREIGN_SPACES else im.info.get("icc_profile") or None
    return _picture(samples, depth, icc, im.info.get("exif") or None)


def load_image(path: str | Path, channels: int | None = None) -> Tensor:
    """Read an image file as a (C, H, W) float32 tensor in [0, 1]; channels=1 or 3 converts.

    Without `channels`, greyscale files give C=1 and everything else C=3. An alpha channel is
    composited on white, not dropped: pixels under full transparency hold arbitrary colours (often
    black), and a white backdrop is how such images are usually shown. (`read_picture` keeps alpha.)
    """
    if channels not in (None, 1, 3):
        raise UserError(f"channels must be 1 or 3, not {channels!r}")
    picture = read_picture(path)
    img, alpha = picture.colour, picture.alpha_fraction()
    if alpha is not None:
        img = img * alpha + (1.0 - alpha)
    if channels == 1 and img.shape[0] == 3:
        img = to_grey(img)
    elif channels == 3 and img.shape[0] == 1:
        img = img.expand(3, -1, -1)
    return img.contiguous()


def _is_16bit_colour_png(im: Image.Image) -> bool:
    """A 16-bit PNG that Pillow would narrow: RGB, RGBA or grey + alpha (16-bit plain grey it reads whole)."""
    if im.format != "PNG":
        return False
    pos = im.fp.tell()
    im.fp.seek(24)  # IHDR's bit depth and colour type, after the signature, the chunk header and the size
    depth_and_colour = tuple(im.fp.read(2))
    im.fp.seek(pos)
    return depth_and_colour in ((16, 2), (16, 4), (16, 6))


def _decode_png16(path: Path) -> np.ndarray:
    """(H, W, C) uint16 samples of a 16-bit PNG; a broken file raises ValueError (named by the caller)."""
    import imagecodecs  # only 16-bit colour PNGs need it

    try:
        samples = imagecodecs.png_decode(path.read_bytes())
    except imagecodecs.PngError as e:
        raise ValueError(str(e)) from None
    return samples if samples.ndim == 3 else samples[:, :, None]


def _picture(samples: np.ndarray, depth: int, icc: bytes | None, exif: bytes | None) -> Picture:
    """(H, W, C) samples, C in 1..4 (grey, grey + alpha, RGB, RGBA) -> Picture."""
    channels = samples.shape[2]
    n_colour = 1 if channels <= 2 else 3
    colour = samples[:, :, :n_colour].astype(np.float32) / np.float32(sample_max(samples.dtype))
    alpha = np.ascontiguousarray(samples[:, :, n_colour]) if channels in (2, 4) else None
    if alpha is not None and alpha.dtype.kind == "f":  # float alpha (rare): kept as 16-bit samples
        alpha = np.rint(np.clip(alpha, 0, 1) * 65535).astype(np.uint16)
    tensor = torch.from_numpy(np.clip(colour, 0.0, 1.0)).permute(2, 0, 1).contiguous()
    return Picture(tensor, alpha, depth, icc, exif)


def pil_samples(im: Image.Image) -> tuple[np.ndarray, int]:
    """(H, W, C) samples in the file's own dtype (uint8, uint16, or float32 in [0, 1]) and the bit depth."""
    mode = im.mode
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif mode in ("PA", "RGBa"):
        im = im.convert("RGBA")
    elif mode == "La":
        im = im.convert("LA")
    elif mode == "1":
        im = im.convert("L")
    elif mode not in ("L", "LA", "RGB", "RGBA", "F") and not mode.startswith("I"):
        im = im.convert("RGBA" if "A" in mode else "RGB")  # CMYK, YCbCr, LAB, HSV, RGBX, ...
    if im.mode == "LA":
        im.load()
    array = np.asarray(im)
    if im.mode.startswith("I"):  # 16-bit greyscale (I;16, I;16B, or I as Pillow reads 16-bit PNG)
        array, depth = np.clip(array, 0, 65535).astype(np.uint16), 16
    elif im.mode == "F":  # float TIFF: taken as already in [0, 1], written back as 16-bit
        array, depth = np.clip(array.astype(np.float32), 0.0, 1.0), 16
    else:
        depth = 8
    if array.ndim == 2:
        array = array[:, :, None]
    return array, depth


def _orient(samples: np.ndarray, orientation: int) -> np.ndarray:
    """(H, W, C) samples turned upright for an EXIF orientation, as ImageOps.exif_transpose turns them."""
    turned = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.transpose(1, 0, 2),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: np.rot90(a, 2).transpose(1, 0, 2),
        8: lambda a: np.rot90(a, 1),
    }.get(orientation)
    return np.ascontiguousarray(turned(samples)) if turned else samples


def _upright_exif(raw: bytes) -> bytes:
    """The EXIF block with its orientation set to 1 (the pixels are turned already), every other byte kept."""
    prefix = b"Exif\x00\x00" if raw.startswith(b"Exif\x00\x00") else b""
    tiff = bytearray(raw[len(prefix):])
    order = {b"II": "<", b"MM": ">"}.get(bytes(tiff[:2]))
    try:
        (ifd,) = struct.unpack_from(order + "I", tiff, 4)
        (count,) = struct.unpack_from(order + "H", tiff, ifd)
        for i in range(count):
            entry = ifd + 2 + 12 * i
            tag, kind = struct.unpack_from(order + "HH", tiff, entry)
            if tag == _ORIENTATION and kind == 3:  # SHORT, stored in the entry itself
                struct.pack_into(order + "H", tiff, entry + 8, 1)
    except (TypeError, struct.error):  # no byte order mark, or a cut-off block: kept as it came
        return raw
    return b"Exif\x00\x00" + bytes(tiff)


def _is_16bit_colour_tiff(im: Image.Image) -> bool:
    if im.format != "TIFF" or im.mode not in ("RGB", "RGBA"):
        return False
    bits = im.tag_v2.get(258, (8,))  # BitsPerSample
    return max(bits if isinstance(bits, tuple) else (bits,)) > 8


def _decode_tiff16(path: Path) -> np.ndarray:
    """First page of a 16-bit colour TIFF as (H, W, C) samples (uint16, or float32 in [0, 1])."""
    import tifffile  # imported here: only these files need it

    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            array, axes = page.asarray(), page.axes
    except Exception as e:  # tifffile raises many kinds (missing codecs among them)
        raise ValueError(f"cannot decode 16-bit TIFF: {one_line(e)}") from None
    if axes.startswith("S"):  # planar storage: samples first
        array = np.moveaxis(array, 0, -1)
    if array.dtype.kind == "f":
        return np.clip(array.astype(np.float32), 0.0, 1.0)
    if array.dtype != np.uint16:
        array = np.rint(array.astype(np.float64) / np.iinfo(array.dtype).max * 65535).astype(np.uint16)
    return array
