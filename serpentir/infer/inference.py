"""A model applied to one image: whole when it fits in memory, in tiles when it does not or when asked;
grey or RGB whatever the model's channel count; alpha and metadata untouched.

A 3-channel model restores a grey image as grey replicated to RGB, its output turned back to grey
by BT.601 luma; a 1-channel model restores an RGB image channel by channel (a batch of three).
"""

from __future__ import annotations

import logging

import torch
from tqdm import tqdm
from torch import Tensor, nn

from ..errors import UserError
from ..image_io.picture import Picture, to_grey
from .memory import format_bytes, tile_that_fits, whole_image_fits
from .tiling import run_tiled

GUARD_MIN_PIXELS = 256 * 256  # below this a forward needs little memory: no calibration is spent on it

log = logging.getLogger(__name__)


def model_channels(model: nn.Module) -> tuple[int, int]:
    """(image channels, extra task channels such as a mask) that a serpentir model takes."""
    kwargs = getattr(model, "arch", {}).get("kwargs", {})
    out_channels = int(kwargs.get("out_channels", 3))
    return out_channels, int(kwargs.get("in_channels", out_channels)) - out_channels


@torch.no_grad()
def restore_tensor(model: nn.Module, x: Tensor, *, tile: int | None = None, overlap: int = 32, auto_tile: bool = True,
                   progress: bool = False, name: str | None = None) -> Tensor:
    """The restored (N, C, H, W) image in [0, 1] (a (C, H, W) input works too).

    Tiled when `tile` is set, or when the whole image would not fit in memory (auto_tile=False
    refuses instead, with the --tile advice). `name` (a file) starts any message.
    """
    single = x.dim() == 3
    if single:
        x = x[None]
    tile = tile or _tile_if_needed(model, x, auto_tile, name)
    if tile:
        y = run_tiled(model, x, tile, overlap, progress=progress, label=f"{name or 'image'} tiles")
    else:
        device = next(model.parameters()).device
        show = progress and x.shape[-2] * x.shape[-1] > GUARD_MIN_PIXELS
        with tqdm(total=len(network_stages(model)), desc=f"{name or 'image'} (whole)", unit="stage", leave=False,
                  disable=None if show else True) as bar:
            y = forward_with_progress(model, x.to(device), bar).float().to(x.device)
    y = y.clamp(0, 1)
    return y[0] if single else y


def network_stages(model: nn.Module) -> list[nn.Module]:
    """The network's stages in call order: its top-level modules, module lists and dicts by element."""
    stages = []
    for child in model.children():
        if isinstance(child, nn.ModuleDict):
            stages.extend(child.values())
        elif isinstance(child, nn.ModuleList):
            stages.extend(child)
        else:
            stages.append(child)
    return stages


def forward_with_progress(model: nn.Module, x: Tensor, bar) -> Tensor:
    """model(x), calling bar.update() as each stage finishes: coarse progress for a large untiled image."""
    def step(*_) -> None:  # a hook that returned a value would replace the stage's output
        bar.update()

    handles = [m.register_forward_hook(step) for m in network_stages(model)]
    try:
        return model(x)
    finally:
        for h in handles:
            h.remove()


def restore_colour(model: nn.Module, colour: Tensor, *, mask: Tensor | None = None, **options) -> Tensor:
    """(C, H, W) grey (C=1) or RGB (C=3) restored, same channels back; `mask` (1, H, W) for tasks needing one.

    options go to restore_tensor (tile, overlap, auto_tile, progress, name).
    """
    channels, extra = model_channels(model)
    c, h, w = colour.shape
    if c not in (1, 3):
        raise ValueError(f"expected grey or RGB colour, got {c} channels")
    x = colour[None] if c == channels else colour.expand(3, -1, -1)[None] if c == 1 else colour[:, None]
    if extra:
        if mask is None:
            raise UserError(f"{options.get('name') or 'this image'}: the model's task needs a mask "
                            "(1 where pixels are missing); none was given")
        if tuple(mask.shape[-2:]) != (h, w):
            raise UserError(f"{options.get('name') or 'image'}: mask is {tuple(mask.shape[-2:])}, the image {(h, w)}")
        x = torch.cat([x, mask.reshape(1, 1, h, w).expand(x.shape[0], 1, h, w).to(x.dtype)], dim=1)
    y = restore_tensor(model, x, **options)
    if c == channels:
        return y[0]
    return to_grey(y[0]) if c == 1 else y[:, 0]


def restore_picture(model: nn.Module, picture: Picture, *, mask: Tensor | None = None, **options) -> Picture:
    """The picture with its colour restored; alpha samples, bit depth, ICC profile and EXIF unchanged."""
    return picture.with_colour(restore_colour(model, picture.colour, mask=mask, **options))


def _tile_if_needed(model: nn.Module, x: Tensor, auto_tile: bool, name: str | None) -> int | None:
    """None when the whole image fits in memory; else a tile size that fits (with a notice), or a refusal."""
    n, c, h, w = x.shape
    if h * w <= GUARD_MIN_PIXELS:
        return None
    fits, need, have = whole_image_fits(model, c, h, w, n)
    if fits:
        return None
    tile = tile_that_fits(model, c, h, w, n)
    where = f"{name}: " if name else ""
    if tile is None:
        raise UserError(f"{where}not enough memory for this {w}x{h} image even in 64-pixel tiles "
                        f"({format_bytes(have)} available)")
    if not auto_tile:
        raise UserError(f"{where}restoring the whole {w}x{h} image needs about {format_bytes(need)} but "
                        f"{format_bytes(have)} is available; pass --tile {tile} (or smaller)")
    log.warning("%srestoring in %dx%d tiles: the whole %dx%d image needs about %s, %s available",
                where, tile, tile, w, h, format_bytes(need), format_bytes(have))
    return tile
