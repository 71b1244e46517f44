"""16-bit PNG test files written by pypng, a decoder and encoder independent of the one under test."""

from __future__ import annotations

import io

import numpy as np
import png


def png16_bytes(values: np.ndarray, *, interlace: bool = False, icc: bytes | None = None,
                exif: bytes | None = None) -> bytes:
    """(H, W, C) uint16, C = 1 grey, 2 grey + alpha, 3 RGB, 4 RGBA -> a 16-bit PNG; optional Adam7
    interlace, ICC profile (iCCP) and EXIF (eXIf) chunks spliced in by pypng's chunk API."""
    h, w, c = values.shape
    out = io.BytesIO()
    png.Writer(w, h, greyscale=c <= 2, alpha=c in (2, 4), bitdepth=16, interlace=interlace).write(
        out, values.reshape(h, w * c).astype(np.uint16))
    if not (icc or exif):
        return out.getvalue()
    import zlib

    chunks = list(png.Reader(bytes=out.getvalue()).chunks())
    extra = ([(b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(icc))] if icc else []) + (
        [(b"eXIf", exif.removeprefix(b"Exif\x00\x00"))] if exif else [])
    with_meta = io.BytesIO()
    png.write_chunks(with_meta, chunks[:1] + extra + chunks[1:])
    return with_meta.getvalue()


def read_png16(data: bytes) -> np.ndarray:
    """A PNG's samples as (H, W, C) by pypng (16-bit stays 16-bit)."""
    w, h, rows, info = png.Reader(bytes=data).asDirect()
    return np.vstack([np.asarray(r, np.uint16) for r in rows]).reshape(h, w, info["planes"])
