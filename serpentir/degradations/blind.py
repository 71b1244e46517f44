"""Blind degradations: the strength (and kind) is drawn per image, as real photos vary.

A model trained on one fixed strength harms photos with another; these sample what a photo may
have. Every blind task splits a seed into `sample(seed)` (a dict of the drawn parameters, from its
own random stream) and `apply(clean, params, seed)`, so tests and model cards can evaluate one
chosen strength with exactly the code that training uses.

Ranges (intensities in [0, 1] units; /255 gives 8-bit levels):
- deblur: no blur (10%), isotropic Gaussian (40%) or anisotropic Gaussian (25%) with sigmas in
  0.2-4, or camera shake 7-25 px (25%); then Gaussian noise sigma 0-10/255.
- denoise: Gaussian noise sigma 0-50/255 (60%) or Poisson-Gaussian (40%: shot-noise std at white
  0.02-0.2, read noise 0-0.02).
- jpeg: quality 10-95 with 4:2:0 chroma subsampling; 25% of images compressed twice (the second
  time at another quality 10-95).
- sr4 / sr2: bicubic, bilinear or area downscaling, half of the images blurred first (Gaussian
  sigma 0.2-1.0 times the scale / 2), bicubic back to full size.
- general: 10% clean; otherwise a chain blur -> noise -> JPEG where each stage is present with
  probability 1/2 (at least one; `stage_odds` sets other chances): blur as deblur's (sigma 0.3-3, shake 7-21 px), Gaussian noise
  sigma 1-30/255 or Poisson-Gaussian, JPEG quality 20-95 with 4:2:0 chroma.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .base import _KERNEL_STREAM, _PARAM_STREAM, Degradation, _add_noise, convolve, seeded_generator
from .blur import anisotropic_gaussian_kernel, camera_shake_kernel
from .jpeg import jpeg_roundtrip
from .noise import poisson_gaussian_noise
from .resize import DOWNSCALE_MODES, down_up


class _Draws:
    """Uniform draws from one seed's parameter stream."""

    def __init__(self, seed: int) -> None:
        self.g = seeded_generator(seed, _PARAM_STREAM)

    def uniform(self, lo: float, hi: float) -> float:
        return lo + (hi - lo) * float(torch.rand((), generator=self.g, dtype=torch.float64))

    def chance(self, p: float) -> bool:
        return self.uniform(0.0, 1.0) < p

    def integer(self, lo: int, hi: int) -> int:
        """An integer in lo..hi, both included."""
        return int(torch.randint(lo, hi + 1, (), generator=self.g))

    def pick(self, options: tuple, weights: tuple[float, ...] | None = None):
        w = torch.tensor(weights if weights is not None else [1.0] * len(options), dtype=torch.float64)
        return options[int(torch.multinomial(w, 1, generator=self.g))]


def gaussian_size(sigma: float) -> int:
    """An odd kernel width covering +-3 sigma."""
    return 2 * math.ceil(3 * sigma) + 1


def blur_kernel(params: dict, seed: int) -> Tensor | None:
    """The kernel that blur parameters describe (None for no blur); shake kernels come from the seed."""
    kind = params.get("blur", "none")
    if kind == "none":
        return None
    if kind == "motion":
        return camera_shake_kernel(params["kernel_size"], seeded_generator(seed, _KERNEL_STREAM))
    sx, sy = params["sigma_x"], params["sigma_y"]
    return anisotropic_gaussian_kernel(gaussian_size(max(sx, sy)), sx, sy, params.get("angle", 0.0))


def _draw_blur(d: _Draws, sigma: tuple[float, float], shake: tuple[int, int],
               weights: tuple[float, float, float, float]) -> dict:
    kind = d.pick(("none", "isotropic", "anisotropic", "motion"), weights)
    if kind == "isotropic":
        s = d.uniform(*sigma)
        return {"blur": kind, "sigma_x": s, "sigma_y": s, "angle": 0.0}
    if kind == "anisotropic":
        return {"blur": kind, "sigma_x": d.uniform(*sigma), "sigma_y": d.uniform(*sigma), "angle": d.uniform(0, math.pi)}
    if kind == "motion":
        return {"blur": kind, "kernel_size": 2 * d.integer(shake[0] // 2, shake[1] // 2) + 1}
    return {"blur": "none"}


def _draw_noise(d: _Draws, sigma: tuple[float, float], poisson_share: float) -> dict:
    if d.chance(poisson_share):
        return {"noise": "poisson_gaussian", "shot": d.uniform(0.02, 0.2), "read": d.uniform(0.0, 0.02)}
    return {"noise": "gaussian", "noise_sigma": d.uniform(*sigma)}


def _draw_jpeg(d: _Draws, quality: tuple[int, int], twice: float) -> dict:
    qualities = [d.integer(*quality)]
    if d.chance(twice):
        qualities.append(d.integer(*quality))
    return {"jpeg": qualities}


def apply_chain(clean: Tensor, params: dict, seed: int) -> Tensor:
    """Blur -> noise -> clip -> JPEG as `params` describe; absent stages are skipped. Clipped to [0, 1]."""
    img = clean
    kernel = blur_kernel(params, seed)
    if kernel is not None:
        img = convolve(img, kernel)
    noise = params.get("noise", "none")
    if noise == "gaussian":
        img = _add_noise(img, params["noise_sigma"], seed)
    elif noise == "poisson_gaussian":
        img = poisson_gaussian_noise(img, params["shot"], params["read"], seed)
    img = img.clamp(0.0, 1.0)
    for quality in params.get("jpeg", []):
        img = jpeg_roundtrip(img, quality, "4:2:0")
    return img


class BlindDegradation(Degradation):
    """A degradation whose parameters are drawn per seed: degrade = apply(sample(seed))."""

    def sample(self, seed: int) -> dict:
        raise NotImplementedError

    def apply(self, clean: Tensor, params: dict, seed: int) -> Tensor:
        return apply_chain(clean, params, seed)

    def degrade(self, clean: Tensor, seed: int) -> Tensor:
        return self.apply(clean, self.sample(seed), seed)

    def kernel(self, seed: int) -> Tensor | None:
        return blur_kernel(self.sample(seed), seed)


def _check_range(name: str, lo: float, hi: float, floor: float = 0.0) -> None:
    if not floor <= lo <= hi:
        raise ValueError(f"{name} must satisfy {floor} <= min <= max, got {lo} and {hi}")


class BlindDeblur(BlindDegradation):
    """Gaussian (isotropic, anisotropic) or camera-shake blur of random strength, plus light noise."""

    def __init__(self, max_sigma: float = 4.0, max_shake: int = 25, max_noise: float = 10 / 255,
                 name: str = "deblur") -> None:
        _check_range("max_sigma", 0.2, max_sigma)
        _check_range("max_shake", 7, max_shake)
        _check_range("max_noise", 0.0, max_noise)
        super().__init__(name, max_sigma=float(max_sigma), max_shake=int(max_shake), max_noise=float(max_noise))

    def sample(self, seed: int) -> dict:
        p, d = self.params, _Draws(seed)
        params = _draw_blur(d, (0.2, p["max_sigma"]), (7, p["max_shake"]), (0.10, 0.40, 0.25, 0.25))
        return {**params, "noise": "gaussian", "noise_sigma": d.uniform(0.0, p["max_noise"])}


class BlindDenoise(BlindDegradation):
    """Gaussian noise of random sigma, or signal-dependent Poisson-Gaussian sensor noise."""

    def __init__(self, max_sigma: float = 50 / 255, poisson_share: float = 0.4, name: str = "denoise_blind") -> None:
        _check_range("max_sigma", 0.0, max_sigma)
        _check_range("poisson_share", 0.0, poisson_share)
        if poisson_share > 1:
            raise ValueError(f"poisson_share is a probability, not {poisson_share}")
        super().__init__(name, max_sigma=float(max_sigma), poisson_share=float(poisson_share))

    def sample(self, seed: int) -> dict:
        d = _Draws(seed)
        return _draw_noise(d, (0.0, self.params["max_sigma"]), self.params["poisson_share"])


class BlindJpeg(BlindDegradation):
    """JPEG at a random quality with 4:2:0 chroma, sometimes compressed twice."""

    def __init__(self, min_quality: int = 10, max_quality: int = 95, twice: float = 0.25, name: str = "jpeg_blind") -> None:
        if not (isinstance(min_quality, int) and isinstance(max_quality, int) and 1 <= min_quality <= max_quality <= 100):
            raise ValueError(f"need integer qualities 1 <= min_quality <= max_quality <= 100, got {min_quality} and {max_quality}")
        if not 0 <= twice <= 1:
            raise ValueError(f"twice is a probability, not {twice}")
        super().__init__(name, min_quality=min_quality, max_quality=max_quality, twice=float(twice))

    def sample(self, seed: int) -> dict:
        p = self.params
        return _draw_jpeg(_Draws(seed), (p["min_quality"], p["max_quality"]), p["twice"])


class BlindResize(BlindDegradation):
    """Downscaling by `scale` with a random method (bicubic, bilinear, area), sometimes after a mild blur."""

    def __init__(self, scale: int = 4, name: str = "sr4_blind") -> None:
        if not isinstance(scale, int) or scale < 2:
            raise ValueError(f"scale must be an integer >= 2, not {scale!r}")
        super().__init__(name, scale=scale)

    def sample(self, seed: int) -> dict:
        d = _Draws(seed)
        params = {"mode": d.pick(DOWNSCALE_MODES)}
        if d.chance(0.5):
            s = d.uniform(0.2, 1.0) * self.params["scale"] / 2
            params.update(blur="isotropic", sigma_x=s, sigma_y=s, angle=0.0)
        return params

    def apply(self, clean: Tensor, params: dict, seed: int) -> Tensor:
        kernel = blur_kernel(params, seed)
        img = convolve(clean, kernel) if kernel is not None else clean
        return down_up(img, self.params["scale"], params["mode"])


class General(BlindDegradation):
    """What an unknown photo may have: a random chain blur -> noise -> JPEG, about 10% left clean."""

    def __init__(self, clean_share: float = 0.1, max_noise: float = 30 / 255, min_quality: int = 20,
                 stage_odds: tuple[float, float, float] | None = None, name: str = "general") -> None:
        if not 0 <= clean_share < 1:
            raise ValueError(f"clean_share is a probability below 1, not {clean_share}")
        _check_range("max_noise", 1 / 255, max_noise)
        if not isinstance(min_quality, int) or not 1 <= min_quality <= 95:
            raise ValueError(f"min_quality must be an integer in 1..95, not {min_quality!r}")
        params = dict(clean_share=float(clean_share), max_noise=float(max_noise), min_quality=min_quality)
        if stage_odds is not None:  # chances of the blur, noise and JPEG stages (default 1/2 each)
            odds = [float(v) for v in stage_odds]
            if len(odds) != 3 or not all(0 <= v <= 1 for v in odds) or not any(odds):
                raise ValueError(f"stage_odds are three probabilities (blur, noise, JPEG), not all 0, got {stage_odds!r}")
            params["stage_odds"] = odds
        super().__init__(name, **params)

    def sample(self, seed: int) -> dict:
        p, d = self.params, _Draws(seed)
        if d.chance(p["clean_share"]):
            return {}
        stages = [d.chance(odds) for odds in p.get("stage_odds", (0.5, 0.5, 0.5))]
        if not any(stages):
            stages[d.integer(0, 2)] = True
        params: dict = {}
        if stages[0]:
            params.update(_draw_blur(d, (0.3, 3.0), (7, 21), (0.0, 0.5, 0.25, 0.25)))
        if stages[1]:
            params.update(_draw_noise(d, (1 / 255, p["max_noise"]), 0.3))
        if stages[2]:
            params.update(_draw_jpeg(d, (p["min_quality"], 95), 0.15))
        return params


def describe(params: dict) -> str:
    """A short human label of drawn parameters, e.g. 'gaussian blur 1.5, noise 10/255, jpeg q40'."""
    parts = []
    kind = params.get("blur", "none")
    if kind == "motion":
        parts.append(f"shake {params['kernel_size']}px")
    elif kind != "none":
        parts.append(f"blur {params['sigma_x']:.1f}x{params['sigma_y']:.1f}")
    if params.get("noise") == "gaussian":
        parts.append(f"noise {params['noise_sigma'] * 255:.0f}/255")
    elif params.get("noise") == "poisson_gaussian":
        parts.append(f"poisson noise {params['shot']:.2f}+{params['read']:.3f}")
    if params.get("jpeg"):
        parts.append("jpeg q" + "+q".join(str(q) for q in params["jpeg"]))
    if params.get("mode"):
        parts.append(f"{params['mode']} downscale")
    return ", ".join(parts) or "clean"
