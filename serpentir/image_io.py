"""Reading and writing images as (C, H, W) float tensors in [0, 1], with one-line errors for bad files.

Every failure a user can cause (a missing, truncated or non-image file, an unwritable name) becomes
a `UserError` whose message starts with the file name, so the command line and a DataLoader worker
can both say which file is at fault instead of printing a decoder traceback.

Conventions:
- 8-bit images are scaled by 255, 16-bit ones by 65535. Pillow alone would cut 16-bit colour to
  8 bits, so 16-bit colour PNGs (non-interlaced) are decoded here and 16-bit colour TIFFs through tifffile (a
  dependency of scikit-image).
- An alpha channel is composited on white, not dropped: pixels under full transparency hold
  arbitrary colours (often black), and a white backdrop is how such images are usually shown.
- The EXIF orientation tag is applied, so a photo comes out the way a viewer shows it.
- Only the first frame of a multi-frame file is read.
"""

from __future__ import annotations

import contextlib
import os
import struct
import zlib
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor

from .atomic_write import atomic_path
from .errors import UserError

IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")

# ITU-R BT.601 luma weights, as Pillow's convert("L") uses, applied in float to keep 16-bit precision.
_LUMA = (0.299, 0.587, 0.114)
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error, IndexError)


def list_images(root: str | Path) -> list[Path]:
    """Every image under root (recursive, by extension, case-insensitive), sorted; hidden files skipped.

    Hidden files and folders (names starting with ".") are skipped: they are editor backups, macOS
    "._" resource forks and the temporary files of `save_image`, never photos someone meant to use.
    """
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"{root}: not a folder" if root.exists() else f"{root}: no such folder")
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS):
                found.append(Path(dirpath) / name)
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


@contextlib.contextmanager
def _named_read_errors(path: Path) -> Iterator[None]:
    """Every way reading an image can fail becomes one UserError line that names the file."""
    try:
        yield
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a folder, not an image file") from None
    except PermissionError:
        raise UserError(f"{path}: permission denied") from None
    except UnidentifiedImageError:
        raise UserError(f"{path}: not an image file (cannot identify image)") from None
    except Image.DecompressionBombError as e:
        raise UserError(f"{path}: image too large ({e})") from None
    except UserError:
        raise
    except _DECODE_ERRORS as e:
        raise UserError(f"{path}: broken or truncated image ({_one_line(e)})") from None


def verify_image(path: str | Path) -> None:
    """Cheaply check that a file is a readable image (header and, for PNG, chunk checksums).

    Used when a dataset is built, so a bad file is named before training starts rather than deep
    inside a DataLoader worker. A truncated JPEG can still pass; `load_image` catches that one.
    """
    path = Path(path)
    with _named_read_errors(path), Image.open(path) as im:
        im.verify()


def load_image(path: str | Path, channels: int | None = None) -> Tensor:
    """Read an image file as a (C, H, W) float32 tensor in [0, 1]; channels=1 or 3 converts.

    Without `channels`, greyscale files give C=1 and everything else C=3 (alpha composited on white).
    """
    path = Path(path)
    if channels not in (None, 1, 3):
        raise UserError(f"channels must be 1 or 3, not {channels!r}")
    with _named_read_errors(path), Image.open(path) as im:
        if _is_16bit_colour_png(im):
            array = _decode_png16(path)
        elif _is_16bit_colour_tiff(im):
            array = _decode_tiff16(path)
        else:
            im = ImageOps.exif_transpose(im)
            array = _pil_to_array(im)
    img = _composite_alpha(torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1))
    return _convert_channels(img, channels).contiguous()


def save_image(img: Tensor, path: str | Path, *, overwrite: bool = False, bit_depth: int = 8, quality: int = 95) -> None:
    """Write a (C, H, W) or (1, C, H, W) tensor (clamped to [0, 1]) atomically; the format follows the suffix.

    The file appears complete or not at all (temporary file in the same folder, then os.replace), so
    an interrupted run never leaves a half-written image that a later run would trip over. An
    existing file is kept unless overwrite=True. bit_depth=16 writes a 16-bit PNG (.png only).
    """
    path = Path(path)
    if img.dim() == 4 and img.shape[0] == 1:
        img = img[0]
    if img.dim() != 3 or img.shape[0] not in (1, 3, 4):
        raise ValueError(f"save_image wants a (C, H, W) tensor with C = 1, 3 or 4, got shape {tuple(img.shape)}")
    if bit_depth not in (8, 16):
        raise UserError(f"bit_depth must be 8 or 16, not {bit_depth!r}")
    suffix = path.suffix.lower()
    fmt = Image.registered_extensions().get(suffix)
    if fmt is None:
        raise UserError(f"{path}: unknown image format {path.suffix!r} (use one of {', '.join(IMAGE_EXTENSIONS)})")
    if bit_depth == 16 and suffix != ".png":
        raise UserError(f"{path}: 16-bit output is only written as PNG")
    if path.exists() and not overwrite:
        raise UserError(f"{path}: already exists (pass overwrite to replace it)")

    array = torch.nan_to_num(img.detach().float().cpu(), nan=0.0).clamp(0, 1).permute(1, 2, 0).numpy()
    scale, dtype = (65535, np.uint16) if bit_depth == 16 else (255, np.uint8)
    array = np.rint(array * scale).astype(dtype)
    if fmt == "JPEG" and array.shape[2] == 4:
        raise UserError(f"{path}: JPEG has no alpha channel; save RGBA images as PNG")

    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            if bit_depth == 16 and array.shape[2] != 1:
                f.write(_encode_png16(array))
            else:
                pil = Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)
                options = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
                pil.save(f, format=fmt, **options)
    except OSError as e:
        raise UserError(f"{path}: cannot write ({_one_line(e)})") from None


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def _pil_to_array(im: Image.Image) -> np.ndarray:
    """An (H, W, C) float32 array in [0, 1] with C in (1, 2, 3, 4): grey, grey+alpha, RGB, RGBA."""
    mode = im.mode
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif mode == "PA":
        im = im.convert("RGBA")
    elif mode == "1":
        im = im.convert("L")
    elif mode not in ("L", "LA", "RGB", "RGBA", "F") and not mode.startswith("I"):
        im = im.convert("RGBA" if "A" in mode else "RGB")  # CMYK, YCbCr, LAB, HSV, RGBX, La, ...
    if im.mode == "LA":
        im.load()
    array = np.asarray(im)
    if im.mode.startswith("I"):  # 16-bit greyscale (I;16, I;16B, or I as older Pillow reads 16-bit PNG)
        array = array.astype(np.float32) / 65535.0
    elif im.mode == "F":  # float TIFF: taken as already in [0, 1]
        array = array.astype(np.float32)
    else:
        array = array.astype(np.float32) / 255.0
    if array.ndim == 2:
        array = array[:, :, None]
    return np.clip(array, 0.0, 1.0)


def _composite_alpha(img: Tensor) -> Tensor:
    """Drop alpha by compositing on white: colour * alpha + (1 - alpha)."""
    if img.shape[0] in (2, 4):
        colour, alpha = img[:-1], img[-1:]
        return colour * alpha + (1.0 - alpha)
    return img


def _convert_channels(img: Tensor, channels: int | None) -> Tensor:
    if channels is None or channels == img.shape[0]:
        return img
    if channels == 1:
        r, g, b = img
        return (_LUMA[0] * r + _LUMA[1] * g + _LUMA[2] * b).unsqueeze(0)
    return img.expand(3, -1, -1)


# --- 16-bit colour PNG: Pillow has no 16-bit RGB mode and would keep only the high byte. ---

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}  # colour type -> samples per pixel


def _is_16bit_colour_png(im: Image.Image) -> bool:
    return im.format == "PNG" and im.info.get("interlace", 0) == 0 and _png_header(im.fp) in ((16, 2), (16, 4), (16, 6))


def _png_header(fp) -> tuple[int, int] | None:
    """(bit depth, colour type) from the IHDR chunk."""
    pos = fp.tell()
    fp.seek(0)
    head = fp.read(29)
    fp.seek(pos)
    if len(head) < 29 or not head.startswith(_PNG_SIGNATURE) or head[12:16] != b"IHDR":
        return None
    return head[24], head[25]


def _decode_png16(path: Path) -> np.ndarray:
    """Decode a non-interlaced 16-bit PNG into (H, W, C) float32 in [0, 1] (undoing the row filters)."""
    data = path.read_bytes()
    pos, idat, header = 8, [], None
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if len(body) != length:
            raise EOFError("image file is truncated")
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + length
    else:
        raise EOFError("image file is truncated (no IEND chunk)")
    width, height, depth, colour, _, _, interlace = header
    channels = _PNG_CHANNELS[colour]
    bpp = 2 * channels
    stride = width * bpp
    raw = np.frombuffer(zlib.decompress(b"".join(idat)), dtype=np.uint8)
    if raw.size < height * (stride + 1):
        raise EOFError("image file is truncated")
    rows = raw[: height * (stride + 1)].reshape(height, stride + 1)
    out = np.zeros((height, stride), dtype=np.uint8)
    prev = np.zeros(stride, dtype=np.int32)
    for y in range(height):
        kind, line = rows[y, 0], rows[y, 1:].astype(np.int32)
        if kind == 0:
            cur = line
        elif kind == 1:  # Sub: a running sum per byte position within the pixel
            cur = np.cumsum(line.reshape(width, bpp), axis=0).reshape(-1) & 0xFF
        elif kind == 2:  # Up
            cur = (line + prev) & 0xFF
        elif kind in (3, 4):  # Average, Paeth: each pixel needs its finished left neighbour
            cur = _unfilter_sequential(kind, line, prev, bpp)
        else:
            raise ValueError(f"bad PNG filter type {kind}")
        out[y] = cur
        prev = cur.astype(np.int32)
    samples = out.view(">u2").reshape(height, width, channels)
    return samples.astype(np.float32) / 65535.0


def _unfilter_sequential(kind: int, line: np.ndarray, prev: np.ndarray, bpp: int) -> np.ndarray:
    cur = line.copy()
    left = np.zeros(bpp, dtype=np.int32)
    upleft = np.zeros(bpp, dtype=np.int32)
    for x in range(0, line.size, bpp):
        up = prev[x:x + bpp]
        if kind == 3:
            value = (line[x:x + bpp] + ((left + up) >> 1)) & 0xFF
        else:
            p = left + up - upleft
            pa, pb, pc = np.abs(p - left), np.abs(p - up), np.abs(p - upleft)
            pred = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, upleft))
            value = (line[x:x + bpp] + pred) & 0xFF
        cur[x:x + bpp] = value
        left, upleft = value, up
    return cur


def _is_16bit_colour_tiff(im: Image.Image) -> bool:
    if im.format != "TIFF" or im.mode not in ("RGB", "RGBA"):
        return False
    bits = im.tag_v2.get(258, (8,))  # BitsPerSample
    return max(bits if isinstance(bits, tuple) else (bits,)) > 8


def _decode_tiff16(path: Path) -> np.ndarray:
    """First page of a 16-bit colour TIFF as (H, W, C) float32 in [0, 1]."""
    import tifffile  # imported here: only these files need it

    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            array, axes = page.asarray(), page.axes
    except Exception as e:  # tifffile raises many kinds (missing codecs among them)
        raise ValueError(f"cannot decode 16-bit TIFF: {_one_line(e)}") from None
    if axes.startswith("S"):  # planar storage: samples first
        array = np.moveaxis(array, 0, -1)
    if array.dtype.kind == "f":
        return np.clip(array.astype(np.float32), 0.0, 1.0)
    return array.astype(np.float32) / float(np.iinfo(array.dtype).max)


def _encode_png16(array: np.ndarray) -> bytes:
    """A 16-bit PNG (grey, RGB or RGBA) from an (H, W, C) uint16 array; rows unfiltered, zlib level 6."""
    height, width, channels = array.shape
    colour = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    rows = array.astype(">u2").reshape(height, width * channels).view(np.uint8)
    raw = np.concatenate([np.zeros((height, 1), np.uint8), rows], axis=1).tobytes()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 16, colour, 0, 0, 0)
    return _PNG_SIGNATURE + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")
