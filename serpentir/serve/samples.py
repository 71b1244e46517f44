"""Sample inputs for the page: held-out bundled photos, degraded by the chosen task (seed 0).

The photos are the validation ones no bundled model trained on, shrunk to SAMPLE_SIDE pixels on the
long side so a CPU restores one in about a second.
"""

from __future__ import annotations

import io
import threading

import numpy as np
import torch
from PIL import Image

from ..data import VAL_PHOTOS, sample_photo_sources
from ..degradations import Degradation
from .limits import UploadRejected

SAMPLE_SIDE = 256


class Samples:
    """PNG bytes of each (photo, task) sample, made on first request and kept (a few dozen KB each)."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str], bytes] = {}
        self._lock = threading.Lock()

    @staticmethod
    def names() -> list[str]:
        available = sample_photo_sources()
        return [name for name in VAL_PHOTOS if name in available]

    def png(self, photo: str, degradation: Degradation) -> bytes:
        if photo not in self.names():
            raise UploadRejected(404, f"no sample photo {photo!r} (samples: {', '.join(self.names())})")
        key = (photo, degradation.name)
        with self._lock:
            if key not in self._cache:
                self._cache[key] = _degraded_png(sample_photo_sources()[photo](), degradation)
            return self._cache[key]


def _degraded_png(photo: np.ndarray, degradation: Degradation) -> bytes:
    image = Image.fromarray(np.ascontiguousarray(photo[:, :, :3])).convert("RGB")
    scale = SAMPLE_SIDE / max(image.size)
    if scale < 1:
        image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS)
    clean = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)
    degraded = degradation(clean, seed=0)[:3].clamp(0, 1)
    array = np.rint(degraded.permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()
