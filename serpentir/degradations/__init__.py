"""The restoration tasks as degradations: clean image + seed -> degraded image, reproducibly.

A degradation is a small callable on float tensors in [0, 1]: `task(clean, seed)` with clean of
shape (C, H, W), or (N, C, H, W) where image i uses seed + i. The same seed always gives the same
output, so training batches can be replayed and validation scores compared across runs. Outputs
keep H and W (super-resolution inputs are scaled back up) so every model maps an image to one of
the same size. Inpainting appends the hole mask (1 = missing) as one extra channel, so the network
is told where the holes are. Outputs are clipped to [0, 1] unless clip=False.

Task names: fixed-strength tasks keep explicit names (`gaussian_deblur` is the paper's task, sigma
3; `denoise` sigma 25/255, `jpeg` quality 10, `sr4` bicubic x4, ...); blind tasks draw the strength
per image: `general` (blur -> noise -> JPEG, any subset), `deblur`, `denoise_blind`, `jpeg_blind`,
`sr4_blind`, `sr2_blind` (ranges in blind.py). Tasks are built with `get_task(name, **params)`;
`task.params` holds everything needed to rebuild it: `get_task(task.name, **task.params)`.
"""

from .base import Degradation, convolve, reflect_pad, seeded_generator
from .blind import (BlindDeblur, BlindDegradation, BlindDenoise, BlindJpeg, BlindResize, General, apply_chain,
                    blur_kernel, describe)
from .blur import GaussianBlur, MotionBlur, anisotropic_gaussian_kernel, camera_shake_kernel, gaussian_kernel_1d
from .inpaint import Inpaint, random_mask
from .jpeg import JpegCompression, jpeg_bytes, jpeg_roundtrip
from .noise import GaussianNoise, poisson_gaussian_noise
from .registry import TASKS, TaskFactory, get_task, list_tasks
from .resize import BicubicDownUp, down_up, downscale

__all__ = [
    "Degradation", "convolve", "reflect_pad", "seeded_generator",
    "BlindDeblur", "BlindDegradation", "BlindDenoise", "BlindJpeg", "BlindResize", "General", "apply_chain",
    "blur_kernel", "describe",
    "GaussianBlur", "MotionBlur", "anisotropic_gaussian_kernel", "camera_shake_kernel", "gaussian_kernel_1d",
    "Inpaint", "random_mask", "JpegCompression", "jpeg_bytes", "jpeg_roundtrip", "GaussianNoise", "poisson_gaussian_noise",
    "TASKS", "TaskFactory", "get_task", "list_tasks", "BicubicDownUp", "down_up", "downscale",
]
