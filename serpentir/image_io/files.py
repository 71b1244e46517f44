"""Finding image files and turning every way of failing to read one into a one-line error naming it."""

from __future__ import annotations

import contextlib
import os
import struct
import zlib
from pathlib import Path
from typing import Iterator

from PIL import Image, UnidentifiedImageError

from ..errors import UserError

IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
MASK_FOLDER = "masks"  # a folder of masks beside degraded images, as `serpentir degrade` writes them
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
def named_read_errors(path: Path) -> Iterator[None]:
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
        raise UserError(f"{path}: broken or truncated image ({one_line(e)})") from None


def verify_image(path: str | Path) -> None:
    """Cheaply check that a file is a readable image (header and, for PNG, chunk checksums).

    Used when a dataset is built, so a bad file is named before training starts rather than deep
    inside a DataLoader worker. A truncated JPEG can still pass; `load_image` catches that one.
    """
    path = Path(path)
    with named_read_errors(path), Image.open(path) as im:
        im.verify()


def one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__
