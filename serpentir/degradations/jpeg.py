"""JPEG compression artefacts through Pillow's encoder, in memory."""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from .base import Degradation

# Pillow's names for chroma subsampling; 4:2:0 (half resolution both ways) is what cameras, phones
# and libjpeg's defaults write.
SUBSAMPLING = {"4:4:4": 0, "4:2:2": 1, "4:2:0": 2}


def jpeg_bytes(clean: Tensor, quality: int, subsampling: str = "4:2:0") -> bytes:
    """(C, H, W) in [0, 1] (C = 1 or 3), rounded to 8 bits, as a JPEG file's bytes."""
    C = clean.shape[0]
    if C not in (1, 3):
        raise ValueError(f"JPEG needs 1 or 3 channels, not {C}")
    array = np.rint(clean.detach().float().clamp(0, 1).cpu().permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    buffer = io.BytesIO()
    options = {"quality": int(quality)} if C == 1 else {"quality": int(quality), "subsampling": SUBSAMPLING[subsampling]}
    Image.fromarray(array[:, :, 0] if C == 1 else array).save(buffer, format="JPEG", **options)
    return buffer.getvalue()


def jpeg_roundtrip(clean: Tensor, quality: int, subsampling: str = "4:2:0") -> Tensor:
    """Encode (C, H, W) in [0, 1] (C = 1 or 3) as an 8-bit JPEG in memory and decode it again."""
    C = clean.shape[0]
    with Image.open(io.BytesIO(jpeg_bytes(clean, quality, subsampling))) as im:
        decoded = np.asarray(im.convert("L" if C == 1 else "RGB"), dtype=np.float32) / 255.0
    out = torch.from_numpy(decoded.reshape(*decoded.shape[:2], C)).permute(2, 0, 1)
    return out.to(clean.device, clean.dtype).contiguous()


class JpegCompression(Degradation):
    """JPEG compression artefacts at a given quality, through Pillow's encoder in memory (4:2:0 chroma)."""

    def __init__(self, quality: int = 10, name: str = "jpeg") -> None:
        if not isinstance(quality, int) or not 1 <= quality <= 100:
            raise ValueError(f"quality must be an integer in 1..100, not {quality!r}")
        super().__init__(name, quality=quality)

    def degrade(self, clean: Tensor, seed: int) -> Tensor:
        return jpeg_roundtrip(clean, self.params["quality"], "4:2:0")
