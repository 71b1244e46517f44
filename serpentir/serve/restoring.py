"""The one place the server restores: an uploaded file -> decoded -> restored -> PNG bytes.

It runs exactly what `serpentir restore photo.png -o out.png --task T` runs for one file
(read_picture, restore_picture, write_picture as PNG), so the page and the command line give the
same pixels, and keep the same bit depth, grey or colour, alpha, ICC profile and EXIF.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from ..errors import UserError
from ..infer.inference import restore_picture
from ..image_io import read_picture, write_picture
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
        picture = read_picture(path)
    except UserError as e:  # the message names the temporary file: name the upload instead
        raise UploadRejected(415, str(e).replace(str(path), name)) from None
    try:
        restored = restore_picture(loaded.model, picture, tile=tile, name=name)
    except UserError as e:  # e.g. not enough memory even in tiles
        raise UploadRejected(413, str(e).replace(str(path), name)) from None
    if not path.parent.is_dir():  # the server stopped and removed its folder meanwhile: write nothing
        raise RuntimeError("the server is stopping")
    target = path.with_name(path.name + ".restored.png")
    try:
        write_picture(restored, target)
        return target.read_bytes()
    finally:
        target.unlink(missing_ok=True)
