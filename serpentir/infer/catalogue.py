"""The bundled weights: which tasks ship a model, where its file is, and what input each one expects.

A fixed-strength model (trained on one blur, one noise level, one JPEG quality) does harm on other
strengths without a word, so each bundled task carries one line saying what it expects; the CLI
prints it in `--help` and when such a model is used.
"""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType

from ..errors import UserError

__all__ = ["DEFAULT_TASK", "FIXED_STRENGTH", "WEIGHTS_DIR", "bundled_checkpoints", "bundled_tasks",
           "bundled_weights", "expects"]

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
DEFAULT_TASK = "general"  # blind: blur, noise and JPEG of any strength, or none (a sharp photo stays as it is)

# task -> what its bundled model expects; read-only, so no caller can change the catalogue
EXPECTS = MappingProxyType({
    "general": "any photo: blur, noise and JPEG of any strength, or none (a sharp photo stays as it is)",
    "deblur": "Gaussian or camera-shake blur of any strength (sigma up to 4), noise up to 10/255",
    "motion_deblur": "camera-shake blur up to 31x31 px with light noise (sigma 0.01)",
    "gaussian_deblur": "exactly a Gaussian blur of sigma 3 px (the paper's task); a milder or other blur "
                       "gets halos: use --task deblur or general",
    "denoise": "Gaussian noise of sigma 25/255; other or unknown noise: use --task denoise_blind",
    "denoise_blind": "Gaussian noise up to 50/255 or sensor (Poisson-Gaussian) noise",
    "jpeg": "JPEG artefacts of quality 10; other qualities: use --task jpeg_blind",
    "jpeg_blind": "JPEG artefacts of any quality from 10 to 95",
    "sr4": "an image bicubic-downscaled x4 and upscaled back to full size; other downscales: use --task sr4_blind",
    "sr4_blind": "an image downscaled x4 by any common filter, upscaled back to full size",
    "inpaint": "an image and a mask of the region to fill (--mask)",
})
# the bundled models trained on one strength of their degradation
FIXED_STRENGTH = ("denoise", "gaussian_deblur", "jpeg", "sr4")


def expects(task: str) -> str | None:
    """One line: the input a bundled task's model was trained for (None for a task without one)."""
    return EXPECTS.get(task)


def bundled_tasks() -> list[str]:
    """The tasks with bundled weights, sorted."""
    return sorted(bundled_checkpoints())


def bundled_weights(task: str | None) -> Path:
    """The bundled checkpoint for a task (DEFAULT_TASK when None), or a one-line error saying there is none."""
    task = task or DEFAULT_TASK
    by_task = bundled_checkpoints()
    if task in by_task:
        return by_task[task]
    bundled = f" (bundled: {', '.join(sorted(by_task))})" if by_task else ""
    raise UserError(f"no bundled weights for task {task!r}{bundled}; pass --weights CKPT "
                    "(a checkpoint written by `serpentir train`)")


def bundled_checkpoints() -> dict[str, Path]:
    """Task name -> the bundled checkpoint for it (the first file, by name, when two share a task)."""
    from ..checkpoint.format import read_metadata

    by_task: dict[str, Path] = {}
    for path in sorted(WEIGHTS_DIR.glob("*.safetensors")) if WEIGHTS_DIR.is_dir() else []:
        try:
            by_task.setdefault(read_metadata(path)["task"]["name"], path)
        except UserError:
            continue
    return by_task
