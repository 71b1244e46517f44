"""Classical restorers with the same knowledge as the network: the references a trained model must beat.

- blur (Gaussian or motion): Wiener deconvolution with the TRUE kernel (skimage.restoration.wiener),
  on a reflect-padded image so the FFT's wrap-around does not ring at the borders;
- noise: non-local means with the true noise sigma (skimage.restoration.denoise_nl_means);
- super-resolution: bicubic, which is what the degraded input already is (down, then bicubic up);
- JPEG: the decoded input itself;
- inpainting: biharmonic inpainting of the masked pixels (skimage.restoration.inpaint_biharmonic).
Each has one strength knob (`balance` for Wiener, `h_factor` for NLM) that `tune_strength` picks on
validation images, as a fair comparison requires.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import torch
from skimage import restoration
from torch import Tensor

from .degradations import BicubicDownUp, Degradation, GaussianBlur, GaussianNoise, Inpaint, JpegCompression, MotionBlur

WIENER_BALANCES = tuple(float(b) for b in np.geomspace(1e-4, 3.0, 15))  # ratio 2.09; to 3 since the 61-px blur chose 0.3, the old top
NLM_H_FACTORS = (0.4, 0.6, 0.8, 1.0, 1.2)


def _hwc(img: Tensor) -> np.ndarray:
    return img.detach().cpu().double().permute(1, 2, 0).numpy()


def _chw(arr: np.ndarray) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).float().clamp(0, 1)


def wiener_deconvolve(blurred: Tensor, kernel: Tensor, balance: float) -> Tensor:
    """(C, H, W) blurred image, its true (k, k) kernel -> Wiener estimate, borders reflect-padded."""
    k = kernel.shape[-1]
    pad = k
    psf = kernel.detach().cpu().double().numpy()
    img = np.pad(_hwc(blurred), ((pad, pad), (pad, pad), (0, 0)), mode="symmetric")
    out = np.stack([restoration.wiener(img[..., c], psf, balance, clip=False) for c in range(img.shape[-1])], -1)
    return _chw(out[pad:-pad, pad:-pad])


def nlm_denoise(noisy: Tensor, sigma: float, h_factor: float = 0.8) -> Tensor:
    """Non-local means with the known noise sigma; h = h_factor * sigma, as skimage's docs suggest."""
    out = restoration.denoise_nl_means(_hwc(noisy), h=h_factor * sigma, sigma=sigma, fast_mode=True,
                                       patch_size=5, patch_distance=6, channel_axis=-1)
    return _chw(out)


def biharmonic_inpaint(masked_with_mask: Tensor) -> Tensor:
    """(C+1, H, W) masked image with its mask as last channel -> biharmonic fill of the holes."""
    image, mask = masked_with_mask[:-1], masked_with_mask[-1] > 0.5
    out = restoration.inpaint_biharmonic(_hwc(image), mask.cpu().numpy(), channel_axis=-1)
    return _chw(out)


def classical_method_name(task: Degradation) -> str:
    """What `classical_restore` does for this task, for tables and model cards."""
    if isinstance(task, (GaussianBlur, MotionBlur)):
        return "Wiener deconvolution with the true kernel"
    if isinstance(task, GaussianNoise):
        return "non-local means with the true sigma"
    if isinstance(task, BicubicDownUp):
        return "bicubic upscaling"
    if isinstance(task, JpegCompression):
        return "the decoded JPEG"
    if isinstance(task, Inpaint):
        return "biharmonic inpainting"
    raise ValueError(f"no classical method for task {task.name!r}")


def classical_restore(task: Degradation, degraded: Tensor, seed: int, strength: float | None = None) -> Tensor:
    """Restore one (C, H, W) degraded image with the task's classical method; `seed` names its kernel."""
    if isinstance(task, (GaussianBlur, MotionBlur)):
        return wiener_deconvolve(degraded, task.kernel(seed), 1e-2 if strength is None else strength)
    if isinstance(task, GaussianNoise):
        return nlm_denoise(degraded, task.params["sigma"], 0.8 if strength is None else strength)
    if isinstance(task, (BicubicDownUp, JpegCompression)):
        return degraded.clamp(0, 1)
    if isinstance(task, Inpaint):
        return biharmonic_inpaint(degraded)
    raise ValueError(f"no classical method for task {task.name!r}")


def strength_candidates(task: Degradation) -> Sequence[float | None]:
    """The values `tune_strength` tries: Wiener balances, NLM h factors, or none for knob-free methods."""
    if isinstance(task, (GaussianBlur, MotionBlur)):
        return WIENER_BALANCES
    if isinstance(task, GaussianNoise):
        return NLM_H_FACTORS
    return (None,)


def tune_strength(task: Degradation, samples: Iterable[tuple[Tensor, Tensor, int]]) -> tuple[float | None, float]:
    """Pick the strength with the best mean PSNR over (degraded, clean, seed) validation samples."""
    from .metrics import psnr

    samples = list(samples)
    best = (None, -float("inf"))
    for strength in strength_candidates(task):
        scores = [psnr(classical_restore(task, d, s, strength)[None], c[None]).item() for d, c, s in samples]
        mean = float(np.mean(scores))
        if mean > best[1]:
            best = (strength, mean)
    return best
