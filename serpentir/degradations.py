"""The restoration tasks as degradations: clean image + seed -> degraded image, reproducibly.

A degradation is a small callable on float tensors in [0, 1]: `task(clean, seed)` with clean of
shape (C, H, W), or (N, C, H, W) where image i uses seed + i. The same seed always gives the same
output, so training batches can be replayed and validation scores compared across runs. Outputs
keep H and W (super-resolution inputs are scaled back up) so every model maps an image to one of
the same size. Inpainting appends the hole mask (1 = missing) as one extra channel, so the network
is told where the holes are. Outputs are clipped to [0, 1] unless clip=False.

Blurs are true convolutions with the kernel that `kernel(seed)` returns (the point-spread function:
a point of light becomes that kernel), with the borders extended by reflection, as
scipy.ndimage.convolve(mode="reflect") does; Wiener-type baselines can use the same kernel.

Tasks are named in `TASKS` and built with `get_task(name, **params)`; `task.params` holds
everything needed to rebuild it: `get_task(task.name, **task.params)`.
"""

from __future__ import annotations

import inspect
import io
import math

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from .errors import UserError

# Independent random streams derived from one seed, so e.g. the blur kernel of a seed can be
# recomputed without replaying the noise.
_KERNEL_STREAM, _NOISE_STREAM, _MASK_STREAM = 0, 1, 2


def seeded_generator(seed: int, stream: int = 0) -> torch.Generator:
    """A CPU generator for (seed, stream); nearby seeds give unrelated streams (numpy SeedSequence)."""
    state = np.random.SeedSequence([int(seed) % 2**64, stream]).generate_state(2, np.uint32)
    return torch.Generator().manual_seed((int(state[0]) << 32) | int(state[1]))


class Degradation:
    """Base class: subclasses implement `degrade(clean (C, H, W), seed)`."""

    name: str = ""
    description: str = ""
    extra_channels: int = 0

    def __init__(self, name: str, **params) -> None:
        self.name = name
        self.params = params

    def __call__(self, clean: Tensor, seed: int) -> Tensor:
        if not isinstance(clean, Tensor) or not clean.is_floating_point() or clean.dim() not in (3, 4):
            raise ValueError("a degradation takes a float tensor of shape (C, H, W) or (N, C, H, W)")
        if clean.dim() == 4:
            return torch.stack([self.degrade(img, seed + i) for i, img in enumerate(clean)])
        return self.degrade(clean, seed)

    def degrade(self, clean: Tensor, seed: int) -> Tensor:
        raise NotImplementedError

    def kernel(self, seed: int) -> Tensor | None:
        """The blur kernel (point-spread function) used for this seed; None for tasks without blur."""
        return None

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}[{self.name}]({args})"


def _add_noise(img: Tensor, sigma: float, seed: int) -> Tensor:
    if sigma <= 0:
        return img
    noise = torch.randn(img.shape, generator=seeded_generator(seed, _NOISE_STREAM), dtype=torch.float32)
    return img + sigma * noise.to(img.device, img.dtype)


def _finish(img: Tensor, clip: bool) -> Tensor:
    return img.clamp(0.0, 1.0) if clip else img


def _reflect_indices(n: int, before: int, after: int, device: torch.device) -> Tensor:
    """Indices that extend 0..n-1 by half-sample reflection (d c b a | a b c d), any pad width."""
    i = torch.arange(-before, n + after, device=device) % (2 * n)
    return torch.where(i >= n, 2 * n - 1 - i, i)


def reflect_pad(img: Tensor, pad_h: int, pad_w: int) -> Tensor:
    """Extend (..., H, W) by pad_h rows and pad_w columns on each side, mirrored as scipy's mode='reflect'.

    torch's own "reflect" mode skips the edge pixel (scipy's "mirror") and fails when the pad is
    wider than the image; this one matches scipy and works for any size.
    """
    H, W = img.shape[-2:]
    rows = _reflect_indices(H, pad_h, pad_h, img.device)
    cols = _reflect_indices(W, pad_w, pad_w, img.device)
    return img.index_select(-2, rows).index_select(-1, cols)


def convolve(img: Tensor, kernel: Tensor) -> Tensor:
    """True 2-D convolution of every channel of (C, H, W) with an odd-sized kernel, reflected borders."""
    kh, kw = kernel.shape
    padded = reflect_pad(img, kh // 2, kw // 2)
    C = img.shape[0]
    weight = kernel.flip(0, 1).to(img.device, img.dtype).expand(C, 1, kh, kw)
    return F.conv2d(padded.unsqueeze(0), weight, groups=C).squeeze(0)


def gaussian_kernel_1d(size: int, sigma: float) -> Tensor:
    """Sampled, normalised Gaussian over size taps centred on the middle one."""
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return (g / g.sum()).float()


def _check_kernel_size(size: int) -> None:
    if not isinstance(size, int) or size < 1 or size % 2 == 0:
        raise ValueError(f"kernel_size must be a positive odd integer, not {size!r}")


def _check_sigma(name: str, value: float) -> None:
    if not isinstance(value, (int, float)) or value < 0 or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number >= 0, not {value!r}")


class GaussianBlur(Degradation):
    """Gaussian blur (the Serpent paper's deblurring task) plus optional white Gaussian noise."""

    def __init__(self, kernel_size: int = 61, sigma: float = 3.0, noise_sigma: float = 0.01, clip: bool = True,
                 name: str = "gaussian_blur") -> None:
        _check_kernel_size(kernel_size)
        _check_sigma("noise_sigma", noise_sigma)
        if not isinstance(sigma, (int, float)) or not sigma > 0:
            raise ValueError(f"sigma must be > 0, not {sigma!r}")
        super().__init__(name, kernel_size=kernel_size, sigma=float(sigma), noise_sigma=float(noise_sigma), clip=clip)
        self._taps = gaussian_kernel_1d(kernel_size, sigma)

    def kernel(self, seed: int = 0) -> Tensor:
        return torch.outer(self._taps, self._taps)

    def degrade(self, clean: Tensor, seed: int) -> Tensor:
        # Separable: two 1-D passes cost 2k instead of k*k multiply-adds per pixel.
        r = self.params["kernel_size"] // 2
        C = clean.shape[0]
        taps = self._taps.to(clean.device, clean.dtype)
        x = reflect_pad(clean, r, r).unsqueeze(0)
        x = F.conv2d(x, taps.view(1, 1, 1, -1).expand(C, 1, 1, -1), groups=C)
        x = F.conv2d(x, taps.view(1, 1, -1, 1).expand(C, 1, -1, 1), groups=C).squeeze(0)
        return _finish(_add_noise(x, self.params["noise_sigma"], seed), self.params["clip"])


def camera_shake_kernel(size: int, generator: torch.Generator) -> Tensor:
    """A random motion-blur kernel: a shaky random-walk trajectory rasterised and normalised to sum 1.

    The camera moves with a drifting velocity plus small jitter and rare jerks (in the spirit of
    Boracchi and Foi, 2012); the path is scaled to 25-100% of the kernel width and splatted
    bilinearly at sub-pixel density so thin trajectories stay connected.
    """
    steps = 64
    g = generator
    angle = float(torch.rand((), generator=g, dtype=torch.float64)) * 2 * math.pi
    velocity = torch.tensor([math.cos(angle), math.sin(angle)], dtype=torch.float64)
    jitter = torch.randn(steps, 2, generator=g, dtype=torch.float64) * 0.15
    jerks = (torch.rand(steps, generator=g, dtype=torch.float64) < 0.05).double()[:, None]
    jerk_size = torch.randn(steps, 2, generator=g, dtype=torch.float64) * 1.5
    points = [torch.zeros(2, dtype=torch.float64)]
    for t in range(steps):
        velocity = velocity + jitter[t] + jerks[t] * jerk_size[t]
        velocity = velocity / velocity.norm().clamp_min(1e-8)
        points.append(points[-1] + velocity)
    path = torch.stack(points)
    extent = (path.max(0).values - path.min(0).values).max().clamp_min(1e-8)
    length = (0.25 + 0.75 * float(torch.rand((), generator=g, dtype=torch.float64))) * (size - 1)
    path = (path - (path.max(0).values + path.min(0).values) / 2) * (length / extent) + (size - 1) / 2

    # Densify to ~10 samples per pixel of travel, then splat each sample bilinearly.
    seg = path[1:] - path[:-1]
    per_seg = int(max(2, math.ceil(10 * float(seg.norm(dim=1).max()))))
    frac = torch.arange(per_seg, dtype=torch.float64) / per_seg
    samples = (path[:-1, None, :] + frac[None, :, None] * seg[:, None, :]).reshape(-1, 2)
    samples = samples.clamp(0, size - 1)
    x0 = samples.floor().clamp(max=size - 2 if size > 1 else 0)
    w1 = samples - x0
    x0 = x0.long()
    kernel = torch.zeros(size + 1, size + 1, dtype=torch.float64)
    for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1)):
        weight = (w1[:, 0] if dx else 1 - w1[:, 0]) * (w1[:, 1] if dy else 1 - w1[:, 1])
        kernel.index_put_((x0[:, 1] + dy, x0[:, 0] + dx), weight, accumulate=True)
    kernel = kernel[:size, :size]
    return (kernel / kernel.sum()).float()


class MotionBlur(Degradation):
    """Random camera-shake blur (a different kernel for every seed) plus optional noise."""

    def __init__(self, kernel_size: int = 31, noise_sigma: float = 0.01, clip: bool = True,
                 name: str = "motion_blur") -> None:
        _check_kernel_size(kernel_size)
        if kernel_size < 3:
            raise ValueError(f"kernel_size must be at least 3 for motion blur, not {kernel_size}")
        _check_sigma("noise_sigma", noise_sigma)
        super().__init__(name, kernel_size=kernel_size, noise_sigma=float(noise_sigma), clip=clip)

    def kernel(self, seed: int) -> Tensor:
        return camera_shake_kernel(self.params["kernel_size"], seeded_generator(seed, _KERNEL_STREAM))

    def degrade(self, clean: Tensor, seed: int) -> Tensor:
        blurred = convolve(clean, self.kernel(seed))
        return _finish(_add_noise(blurred, self.params["noise_sigma"], seed), self.params["clip"])


class GaussianNoise(Degradation):
    """Additive white Gaussian noise of a fixed standard deviation (in [0, 1] units)."""

    def __init__(self, sigma: float = 25 / 255, clip: bool = True, name: str = "gaussian_noise") -> None:
        _check_sigma("sigma", sigma)
        super().__init__(name, sigma=float(sigma), clip=clip)

    def degrade(self, clean: Tensor, seed: int) -> Tensor:
        return _finish(_add_noise(clean, self.params["sigma"], seed), self.params["clip"])


class BicubicDownUp(Degradation):
    """Super-resolution input at full size: antialiased bicubic downscale by `scale`, bicubic back up."""

    def __init__(self, scale: int = 4, name: str = "bicubic_down_up") -> None:
        if not isinstance(scale, int) or scale < 2:
            raise ValueError(f"scale must be an integer >= 2, not {scale!r}")
        super().__init__(name, scale=scale)

    def degrade(self, clean: Tensor, seed: int) -> Tensor:
        H, W = clean.shape[-2:]
        s = self.params["scale"]
        if H < s or W < s:
            raise ValueError(f"a {H}x{W} image is too small to downscale by {s}")
        small = F.interpolate(clean[None], size=(H // s, W // s), mode="bicubic", antialias=True, align_corners=False)
        small = small.clamp(0, 1)
        return F.interpolate(small, size=(H, W), mode="bicubic", align_corners=False)[0].clamp(0, 1)


def _segment_distance(ys: Tensor, xs: Tensor, a: Tensor, b: Tensor) -> Tensor:
    """Distance from every pixel centre to the segment a-b (points as (y, x))."""
    d = b - a
    t = (((ys - a[0]) * d[0] + (xs - a[1]) * d[1]) / (d @ d).clamp_min(1e-12)).clamp(0, 1)
    return torch.hypot(ys - (a[0] + t * d[0]), xs - (a[1] + t * d[1]))


def random_mask(height: int, width: int, generator: torch.Generator, min_fraction: float = 0.1,
                max_fraction: float = 0.4, shapes: str = "mixed") -> Tensor:
    """An (H, W) float mask, 1 = missing: random boxes and/or thick brush strokes until a coverage drawn
    from [min_fraction, max_fraction] is reached (the last shape may overshoot it a little)."""
    g = generator

    def uniform(lo: float, hi: float) -> float:
        return lo + (hi - lo) * float(torch.rand((), generator=g, dtype=torch.float64))

    mask = torch.zeros(height, width, dtype=torch.bool)
    ys = torch.arange(height, dtype=torch.float32)[:, None]
    xs = torch.arange(width, dtype=torch.float32)[None, :]
    side = min(height, width)
    target = uniform(min_fraction, max_fraction)
    for _ in range(200):
        if mask.float().mean() >= target:
            break
        use_box = shapes == "boxes" or (shapes == "mixed" and uniform(0, 1) < 0.4)
        if use_box:
            bh, bw = max(1, round(uniform(0.1, 0.35) * height)), max(1, round(uniform(0.1, 0.35) * width))
            top, left = int(uniform(0, height - bh + 1)), int(uniform(0, width - bw + 1))
            mask[top:top + bh, left:left + bw] = True
        else:
            radius = max(1.0, uniform(0.015, 0.05) * side)
            point = torch.tensor([uniform(0, height - 1), uniform(0, width - 1)])
            heading = uniform(0, 2 * math.pi)
            for _ in range(int(uniform(2, 7))):
                heading += uniform(-1.2, 1.2)
                step = uniform(0.1, 0.35) * side
                nxt = point + step * torch.tensor([math.sin(heading), math.cos(heading)])
                nxt = torch.stack([nxt[0].clamp(0, height - 1), nxt[1].clamp(0, width - 1)])
                mask |= _segment_distance(ys, xs, point, nxt) <= radius
                point = nxt
    return mask.float()


class Inpaint(Degradation):
    """Random holes (boxes and brush strokes) filled with zeros or the visible mean; mask appended."""

    extra_channels = 1

    def __init__(self, min_fraction: float = 0.1, max_fraction: float = 0.4, shapes: str = "mixed",
                 fill: str = "zero", name: str = "inpaint") -> None:
        if not 0 <= min_fraction <= max_fraction < 1:
            raise ValueError(f"need 0 <= min_fraction <= max_fraction < 1, got {min_fraction} and {max_fraction}")
        if shapes not in ("mixed", "boxes", "strokes"):
            raise ValueError(f"shapes must be 'mixed', 'boxes' or 'strokes', not {shapes!r}")
        if fill not in ("zero", "mean"):
            raise ValueError(f"fill must be 'zero' or 'mean', not {fill!r}")
        super().__init__(name, min_fraction=float(min_fraction), max_fraction=float(max_fraction), shapes=shapes, fill=fill)

    def mask(self, height: int, width: int, seed: int) -> Tensor:
        """The (H, W) hole mask used for this seed, 1 = missing."""
        p = self.params
        generator = seeded_generator(seed, _MASK_STREAM)
        return random_mask(height, width, generator, p["min_fraction"], p["max_fraction"], p["shapes"])

    def degrade(self, clean: Tensor, seed: int) -> Tensor:
        mask = self.mask(*clean.shape[-2:], seed).to(clean.device, clean.dtype)[None]
        if self.params["fill"] == "mean":
            visible = (1 - mask).sum().clamp_min(1)
            fill = ((clean * (1 - mask)).sum(dim=(1, 2), keepdim=True) / visible)
        else:
            fill = torch.zeros((), device=clean.device, dtype=clean.dtype)
        return torch.cat([clean * (1 - mask) + fill * mask, mask])


class JpegCompression(Degradation):
    """JPEG compression artefacts at a given quality, through Pillow's encoder in memory (4:2:0 chroma)."""

    def __init__(self, quality: int = 10, name: str = "jpeg") -> None:
        if not isinstance(quality, int) or not 1 <= quality <= 100:
            raise ValueError(f"quality must be an integer in 1..100, not {quality!r}")
        super().__init__(name, quality=quality)

    def degrade(self, clean: Tensor, seed: int) -> Tensor:
        C = clean.shape[0]
        if C not in (1, 3):
            raise ValueError(f"JPEG needs 1 or 3 channels, not {C}")
        array = np.rint(clean.detach().float().clamp(0, 1).cpu().permute(1, 2, 0).numpy() * 255).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(array[:, :, 0] if C == 1 else array).save(buffer, format="JPEG", quality=self.params["quality"])
        buffer.seek(0)
        decoded = np.asarray(Image.open(buffer).convert("L" if C == 1 else "RGB"), dtype=np.float32) / 255.0
        out = torch.from_numpy(decoded.reshape(*decoded.shape[:2], C)).permute(2, 0, 1)
        return out.to(clean.device, clean.dtype).contiguous()


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
