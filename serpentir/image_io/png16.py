"""16-bit PNG, which Pillow cuts to 8 bits in colour: a small decoder (non-interlaced) and encoder."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}  # colour type -> samples per pixel


def is_16bit_colour_png(im: Image.Image) -> bool:
    """A 16-bit PNG that Pillow would narrow: RGB, RGBA or grey + alpha (16-bit plain grey it reads whole)."""
    return im.format == "PNG" and im.info.get("interlace", 0) == 0 and _png_header(im.fp) in ((16, 2), (16, 4), (16, 6))


def _png_header(fp) -> tuple[int, int] | None:
    """(bit depth, colour type) from the IHDR chunk."""
    pos = fp.tell()
    fp.seek(0)
    head = fp.read(29)
    fp.seek(pos)
    if len(head) < 29 or not head.startswith(PNG_SIGNATURE) or head[12:16] != b"IHDR":
        return None
    return head[24], head[25]


def decode_png16(path: Path) -> np.ndarray:
    """A non-interlaced 16-bit PNG as (H, W, C) uint16 samples (the row filters undone)."""
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
    channels = _CHANNELS[colour]
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
    return out.view(">u2").reshape(height, width, channels).astype(np.uint16)


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


def encode_png16(array: np.ndarray, *, icc_profile: bytes | None = None, exif: bytes | None = None) -> bytes:
    """A 16-bit PNG (grey, grey + alpha, RGB or RGBA) from (H, W, C) uint16; rows unfiltered, zlib level 6.

    The ICC profile goes in an iCCP chunk and EXIF in an eXIf chunk, as Pillow writes them in 8-bit PNGs.
    """
    height, width, channels = array.shape
    colour = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    rows = array.astype(">u2").reshape(height, width * channels).view(np.uint8)
    raw = np.concatenate([np.zeros((height, 1), np.uint8), rows], axis=1).tobytes()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 16, colour, 0, 0, 0)
    extra = b""
    if icc_profile:
        extra += chunk(b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(icc_profile))
    if exif:
        extra += chunk(b"eXIf", exif.removeprefix(b"Exif\x00\x00"))
    return (PNG_SIGNATURE + chunk(b"IHDR", ihdr) + extra + chunk(b"IDAT", zlib.compress(raw, 6))
            + chunk(b"IEND", b""))
