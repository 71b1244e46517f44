"""Tasks by name: `TASKS`, `get_task(name, **params)`, `list_tasks()`."""

from __future__ import annotations

import inspect

from ..errors import UserError
from .base import Degradation
from .blind import BlindDeblur, BlindDenoise, BlindJpeg, BlindResize, General
from .blur import GaussianBlur, MotionBlur
from .inpaint import Inpaint
from .jpeg import JpegCompression
from .noise import GaussianNoise
from .resize import BicubicDownUp

class TaskFactory:
    """A named configuration of a degradation class: defaults plus a one-line description."""

    def __init__(self, name: str, cls: type[Degradation], description: str, **defaults) -> None:
        self.name, self.cls, self.description, self.defaults = name, cls, description, defaults

    def options(self) -> list[str]:
        return [p for p in inspect.signature(self.cls).parameters if p != "name"]

    def __call__(self, **params) -> Degradation:
        unknown = sorted(set(params) - set(self.options()))
        if unknown:
            raise UserError(f"bad option for task {self.name!r}: {', '.join(unknown)} "
                            f"(options: {', '.join(self.options())})")
        try:
            task = self.cls(**{**self.defaults, **params}, name=self.name)
        except ValueError as e:
            raise UserError(f"bad option for task {self.name!r}: {e}") from None
        task.description = self.description
        return task


TASKS: dict[str, TaskFactory] = {
    f.name: f
    for f in (
        TaskFactory("gaussian_deblur", GaussianBlur, "Gaussian blur 61x61, sigma 3, noise sigma 0.01 (the paper's task)"),
        TaskFactory("motion_deblur", MotionBlur, "random camera-shake blur up to 31x31, plus noise sigma 0.01"),
        TaskFactory("denoise", GaussianNoise, "additive Gaussian noise, sigma 25/255", sigma=25 / 255),
        TaskFactory("denoise15", GaussianNoise, "additive Gaussian noise, sigma 15/255", sigma=15 / 255),
        TaskFactory("denoise50", GaussianNoise, "additive Gaussian noise, sigma 50/255", sigma=50 / 255),
        TaskFactory("sr2", BicubicDownUp, "super-resolution x2: bicubic downscale, upscaled back to full size", scale=2),
        TaskFactory("sr4", BicubicDownUp, "super-resolution x4: bicubic downscale, upscaled back to full size", scale=4),
        TaskFactory("sr8", BicubicDownUp, "super-resolution x8: bicubic downscale, upscaled back to full size", scale=8),
        TaskFactory("inpaint", Inpaint, "random boxes and brush strokes cut out (10-40%), mask as an extra channel"),
        TaskFactory("jpeg", JpegCompression, "JPEG compression artefacts at quality 10", quality=10),
        TaskFactory("jpeg30", JpegCompression, "JPEG compression artefacts at quality 30", quality=30),
        # blind tasks: strength drawn per image (see blind.py for the ranges)
        TaskFactory("general", General, "blind: unknown mix of blur, noise and JPEG (each or none), 10% clean"),
        TaskFactory("deblur", BlindDeblur, "blind: Gaussian or camera-shake blur of any strength (sigma 0-4), noise 0-10/255"),
        TaskFactory("denoise_blind", BlindDenoise, "blind: Gaussian noise 0-50/255 or Poisson-Gaussian sensor noise"),
        TaskFactory("jpeg_blind", BlindJpeg, "blind: JPEG quality 10-95, 4:2:0 chroma, sometimes twice"),
        TaskFactory("sr4_blind", BlindResize, "blind: x4 downscale (bicubic, bilinear or area, maybe blurred first)", scale=4),
        TaskFactory("sr2_blind", BlindResize, "blind: x2 downscale (bicubic, bilinear or area, maybe blurred first)", scale=2),
    )
}


def list_tasks() -> list[str]:
    """Names of the registered tasks, in registry order."""
    return list(TASKS)


def get_task(name: str, **params) -> Degradation:
    """Build a registered task, params overriding its defaults; UserError for unknown names or options."""
    try:
        factory = TASKS[name]
    except KeyError:
        raise UserError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}") from None
    return factory(**params)
