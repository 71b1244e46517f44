"""The Python API behind `serpentir.load_model` and `serpentir.restore`: an image of any common kind in,
the same kind back (type, mode, dtype, size, alpha), restored by a bundled model or a checkpoint."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn

from ..errors import UserError
from ..image_io.picture import quantise, sample_max
from .catalogue import DEFAULT_TASK, bundled_tasks, bundled_weights
from .inference import restore_colour

def load_model(task_or_path: str | Path, device: str | torch.device = "cpu") -> nn.Module:
    """A restoration model in eval mode: a bundled task's ("denoise", "gaussian_deblur", ...) or a checkpoint's.

    The architecture comes from the file. The model carries `task_name` (e.g. "denoise"), `task` (the
    degradation it undoes) and `weights_path`.
    """
    from ..checkpoint.format import load_checkpoint
    from ..device import resolve_device

    text = str(task_or_path)
    is_path = isinstance(task_or_path, Path) or text.endswith(".safetensors") or "/" in text or "\\" in text
    if not is_path and text not in bundled_tasks() and Path(text).exists():
        is_path = True
    weights = Path(text) if is_path else bundled_weights(text)
    dev = resolve_device(device) if isinstance(device, str) and device in ("auto", "cuda") else torch.device(device)
    model, task, _ = load_checkpoint(weights, device=dev)
    model.task_name, model.task, model.weights_path = task.name, task, weights
    return model


def restore(image, task: str | None = None, model: nn.Module | str | Path | None = None, tile: int | None = None,
            *, mask=None):
    """Restore a PIL image, a numpy array (HW or HWC; uint8, uint16 or float in [0, 1]) or a tensor
    ((C, H, W) or (N, C, H, W); float in [0, 1] or uint8), returning the same kind, mode, dtype and size.

    task picks a bundled model (default general, the blind model for blur, noise and JPEG of any
    strength) or is checked against `model` (a loaded model or a checkpoint path). Grey stays grey; an alpha channel (LA / RGBA, or a 2nd / 4th
    channel) is returned bit-exact. tile restores in tiles of that size (otherwise tiles are used only
    when the whole image would not fit in memory). mask (same kinds, 1 = missing) is for inpainting.
    """
    model = _model_for(task, model)
    mask_t = None if mask is None else _mask_tensor(mask)
    if isinstance(image, Image.Image):
        return _restore_pil(model, image, tile, mask_t)
    if isinstance(image, np.ndarray):
        return _restore_array(model, image, tile, mask_t)
    if isinstance(image, Tensor):
        return _restore_tensor(model, image, tile, mask_t)
    raise TypeError(f"restore takes a PIL image, a numpy array or a torch tensor, not {type(image).__name__}")


@functools.lru_cache(maxsize=None)
def _bundled_model(task: str) -> nn.Module:
    """Bundled models are loaded once per process: restoring many images should not reload weights."""
    return load_model(task)


def _model_for(task: str | None, model) -> nn.Module:
    if model is None:
        return _bundled_model(task or DEFAULT_TASK)
    if isinstance(model, (str, Path)):
        model = load_model(model)
    known = getattr(model, "task_name", None)
    if task is not None and known is not None and known != task:
        raise UserError(f"the model was trained for task {known!r}, not {task!r}")
    return model


def _restore_samples(model: nn.Module, samples: np.ndarray, tile: int | None, mask: Tensor | None) -> np.ndarray:
    """(H, W, C) samples, C = 1..4 (grey, grey + alpha, RGB, RGBA) -> restored samples, same dtype; alpha as given."""
    if samples.dtype.kind not in "f" and samples.dtype not in (np.uint8, np.uint16):
        raise UserError(f"restore takes uint8, uint16 or float images, not {samples.dtype}")
    if samples.ndim != 3 or not 1 <= samples.shape[2] <= 4:
        raise UserError(f"expected an HW or HWC image with 1 to 4 channels, got shape {samples.shape}")
    n_colour = 1 if samples.shape[2] <= 2 else 3
    colour = torch.from_numpy(samples[:, :, :n_colour].astype(np.float32) / np.float32(sample_max(samples.dtype)))
    restored = restore_colour(model, colour.clamp(0, 1).permute(2, 0, 1), mask=mask, tile=tile)
    out = restored.permute(1, 2, 0).numpy()
    if samples.dtype.kind == "f":
        out = out.astype(samples.dtype)
    else:
        out = quantise(out, 16 if samples.dtype == np.uint16 else 8)
    return np.concatenate([out, samples[:, :, n_colour:]], axis=2)


def _restore_array(model, array: np.ndarray, tile, mask) -> np.ndarray:
    flat = array.ndim == 2
    out = _restore_samples(model, array[:, :, None] if flat else array, tile, mask)
    return out[:, :, 0] if flat else out


def _restore_tensor(model, x: Tensor, tile, mask) -> Tensor:
    if x.dim() == 4:
        return torch.stack([_restore_tensor(model, one, tile, mask) for one in x])
    if x.dim() == 2:
        return _restore_tensor(model, x[None], tile, mask)[0]
    if x.dim() != 3:
        raise UserError(f"expected a (C, H, W) or (N, C, H, W) tensor, got shape {tuple(x.shape)}")
    if not (x.is_floating_point() or x.dtype == torch.uint8):
        raise UserError(f"restore takes float (in [0, 1]) or uint8 tensors, not {x.dtype}")
    samples = x.detach().cpu().permute(1, 2, 0)
    samples = samples.numpy() if x.dtype == torch.uint8 else samples.float().numpy()
    n_colour = 1 if x.shape[0] <= 2 else 3
    colour = torch.from_numpy(_restore_samples(model, samples, tile, mask)).permute(2, 0, 1)[:n_colour]
    return torch.cat([colour.to(x.dtype), x[n_colour:].detach().cpu()]).to(x.device)  # alpha: the input's own


def _restore_pil(model, im: Image.Image, tile, mask) -> Image.Image:
    """PIL modes L, LA, RGB, RGBA, I;16, I and F come back in their own mode; palette, 1-bit, CMYK and
    other colour spaces are restored as RGB(A) or L and come back so."""
    from ..image_io.read import pil_samples

    out = _restore_samples(model, pil_samples(im)[0], tile, mask)
    result = Image.fromarray(out[:, :, 0] if out.shape[2] == 1 else out)  # uint16 grey: I;16
    if im.mode == "I":
        result = Image.fromarray(out[:, :, 0].astype(np.int32))
    for key in ("icc_profile", "exif", "dpi"):
        if key in im.info:
            result.info[key] = im.info[key]
    return result


def _mask_tensor(mask) -> Tensor:
    """A mask of any accepted kind as (1, H, W) float, 1 where pixels are missing."""
    if isinstance(mask, Image.Image):
        mask = np.asarray(mask.convert("L"))
    if isinstance(mask, np.ndarray):
        scale = sample_max(mask.dtype) if mask.dtype.kind in "ui" else 1.0
        mask = torch.from_numpy(mask.astype(np.float32) / np.float32(scale))
    mask = mask.float()
    return mask.reshape(1, *mask.shape[-2:])
