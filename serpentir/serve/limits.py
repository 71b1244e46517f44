"""What one server accepts: upload size, pixel count, queue length, parallel restorations.

The defaults suit a small CPU machine: one restoration at a time (two would only share the same cores
and each take twice as long), a few waiting, and photos up to a few megapixels.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import UserError


class UploadRejected(UserError):
    """A bad upload, with the HTTP status that says why (400 empty, 413 too large, 415 not an image)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Limits:
    """max_upload_bytes: request body size; max_pixels: width x height; queue_size: jobs waiting beyond the
    `workers` running; keep_results / result_ttl_s: finished page jobs held for download."""

    max_upload_bytes: int = 25 * 1024 * 1024
    max_pixels: int = 4_000_000
    queue_size: int = 4
    workers: int = 1
    keep_results: int = 16
    result_ttl_s: float = 900.0

    def __post_init__(self) -> None:
        for name in ("max_upload_bytes", "max_pixels", "queue_size", "workers", "keep_results"):
            if getattr(self, name) < 1:
                raise UserError(f"{name.replace('_', '-')} must be at least 1, not {getattr(self, name)}")

    def check_size(self, size: int, name: str) -> None:
        """413 when an upload of `size` bytes is over the limit; 400 when it is empty."""
        if size == 0:
            raise UploadRejected(400, f"{name}: empty upload (send the image file's bytes as the request body)")
        if size > self.max_upload_bytes:
            raise UploadRejected(413, f"{name}: upload is over the limit of {_megabytes(self.max_upload_bytes)} "
                                      f"(server option --max-upload-mb)")

    def check_pixels(self, width: int, height: int, name: str) -> None:
        """413 when width x height is over the pixel limit."""
        if width * height > self.max_pixels:
            raise UploadRejected(413, f"{name}: {width}x{height} is {width * height:,} pixels, over the limit of "
                                      f"{self.max_pixels:,} (server option --max-pixels)")


def _megabytes(n: int) -> str:
    return f"{n / (1024 * 1024):g} MB"
