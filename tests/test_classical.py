"""The classical references must really restore: they are the bar the trained models are held to."""

import torch

from real_photos import photo
from serpentir.classical import classical_method_name, classical_restore, tune_strength, wiener_deconvolve
from serpentir.degradations import get_task
from serpentir.metrics import psnr


def _gain(task_name, **kw):
    task = get_task(task_name, **kw)
    clean = photo("astronaut", (160, 160))
    degraded = task(clean, seed=3)
    restored = classical_restore(task, degraded, seed=3)
    return (psnr(restored[None], clean[None]) - psnr(degraded[:3][None], clean[None])).item()


def test_wiener_with_true_kernel_beats_the_blurred_input():
    assert _gain("gaussian_deblur") > 1.5


def test_wiener_inverts_a_noise_free_blur_almost_exactly():
    task = get_task("gaussian_deblur", sigma=1.5, kernel_size=15, noise_sigma=0.0, clip=False)
    clean = photo("coffee", (96, 96))
    restored = wiener_deconvolve(task(clean, 0), task.kernel(0), balance=1e-6)
    inner = (slice(None), slice(16, -16), slice(16, -16))
    assert psnr(restored[inner][None], clean[inner][None]).item() > 35


def test_nlm_beats_the_noisy_input():
    assert _gain("denoise") > 3.0


def test_tuning_picks_the_best_candidate():
    task = get_task("gaussian_deblur")
    clean = photo("chelsea", (96, 96))
    samples = [(task(clean, s), clean, s) for s in (0, 1)]
    best, score = tune_strength(task, samples)
    for other in (1e-4, 3e-1):
        mean = sum(psnr(classical_restore(task, d, s, other)[None], c[None]).item() for d, c, s in samples) / 2
        assert score >= mean
    assert best is not None


def test_knob_free_tasks_return_the_input():
    task = get_task("jpeg")
    x = torch.rand(3, 16, 16)
    assert torch.equal(classical_restore(task, x, 0), x)
    assert classical_method_name(get_task("sr4")) == "bicubic upscaling"
