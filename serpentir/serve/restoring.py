"""The one place the server restores: an uploaded file -> decoded -> restored -> PNG bytes.

It runs exactly what `serpentir restore photo.png -o out.png --task T` runs (load_image with the
checkpoint's channels, restore_tensor, save_image as PNG), so the page and the command line give the
same pixels. When the library grows a public restore API, only this file changes.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from ..engine.restore import restore_tensor
from ..errors import UserError
from ..image_io import load_image, save_image
from .limits import Limits, UploadRejected
from .models import LoadedModel


def check_upload(path: Path, name: str, limits: Limits) -> tuple[int, int]:
    """(width, height) of an uploaded image from its header alone; 415 if it is not one, 413 if too big.

    Runs before the upload takes a place in the queue, so garbage and giant images cost no restoration.
    """
    try:
        with Image.open(path) as im:
            width, height = im.size
    except Image.DecompressionBombError:
        raise UploadRejected(413, f"{name}: image has too many pixels to decode safely") from None
    except Exception:  # any failure to read the header: not an image Pillow knows
        raise UploadRejected(415, f"{name}: not an image file (PNG, JPEG, TIFF, BMP or WebP expected)") from None
    limits.check_pixels(width, height, name)
    return width, height


def restore_upload(path: Path, name: str, loaded: LoadedModel, *, tile: int | None = None) -> bytes:
    """The restored image as PNG file bytes; a file that fails to decode becomes a 415 naming `name`."""
    if loaded.degradation.extra_channels:
        raise UploadRejected(400, f"task {loaded.task!r} needs a mask beside the image; use `serpentir restore --mask`")
    try:
        x = load_image(path, channels=loaded.meta["channels"])
    except UserError as e:  # the message names the temporary file: name the upload instead
        raise UploadRejected(415, str(e).replace(str(path), name)) from None
    y = restore_tensor(loaded.model, x, tile=tile)
    if not path.parent.is_dir():  # the server stopped and removed its folder meanwhile: write nothing
        raise RuntimeError("the server is stopping")
    target = path.with_name(path.name + ".restored.png")
    try:
        save_image(y, target)
        return target.read_bytes()
    finally:
        target.unlink(missing_ok=True)
