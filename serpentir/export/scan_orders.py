"""The scan directions as flips and transposes of the (B, H, W, C) map, for export with dynamic H and W.

serpentir.layers.scan_orders builds its visit orders as index tensors cached per (H, W), which
torch.export cannot trace when H and W are symbolic. These functions give the same sequences with
ops that take any size (torch.flip, transpose, reshape); `exportable_scan_orders` swaps them into
the SSM layer for the duration of an export.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import Tensor

from ..layers import multi_direction_ssm as ssm_layer
from ..layers.scan_orders import direction_names


def _sequence(x: Tensor, name: str) -> Tensor:
    """(B, H, W, C) -> (B, H*W, C) in the visit order of one named direction."""
    B, H, W, C = x.shape
    if name in ("top-left->bottom-right", "rows"):
        return x.reshape(B, H * W, C)
    if name == "top-right->bottom-left":
        return x.flip(2).reshape(B, H * W, C)
    if name in ("bottom-right->top-left", "rows-reversed"):
        return x.flip(1, 2).reshape(B, H * W, C)
    if name == "bottom-left->top-right":
        return x.flip(1).reshape(B, H * W, C)
    if name == "columns":
        return x.transpose(1, 2).reshape(B, H * W, C)
    if name == "columns-reversed":
        return x.transpose(1, 2).flip(1, 2).reshape(B, H * W, C)
    raise ValueError(f"unknown scan direction {name!r}")


def _raster(seq: Tensor, name: str, H: int, W: int) -> Tensor:
    """Inverse of _sequence: (B, H*W, C) in a direction's visit order -> (B, H, W, C)."""
    B, _, C = seq.shape
    if name in ("columns", "columns-reversed"):
        grid = seq.reshape(B, W, H, C)
        return (grid if name == "columns" else grid.flip(1, 2)).transpose(1, 2)
    grid = seq.reshape(B, H, W, C)
    flips = {"top-left->bottom-right": (), "rows": (), "top-right->bottom-left": (2,),
             "bottom-right->top-left": (1, 2), "rows-reversed": (1, 2), "bottom-left->top-right": (1,)}[name]
    return grid.flip(flips) if flips else grid


def unroll(x: Tensor, directions: int = 4, order: str = "diagonal") -> Tensor:
    """(B, H, W, C) -> (B, K, H*W, C), like layers.scan_orders.unroll."""
    return torch.stack([_sequence(x, n) for n in direction_names(directions, order)], dim=1)


def merge(seqs: Tensor, H: int, W: int, order: str = "diagonal") -> Tensor:
    """(B, K, H*W, C) -> (B, H, W, C) summed over directions, like layers.scan_orders.merge."""
    names = direction_names(seqs.shape[1], order)
    return sum(_raster(seqs[:, k], n, H, W) for k, n in enumerate(names))


@contextlib.contextmanager
def exportable_scan_orders() -> Iterator[None]:
    """Within the block, the SSM layer unrolls and merges with the functions above (if it uses them)."""
    saved = {name: getattr(ssm_layer, name) for name in ("unroll", "merge") if hasattr(ssm_layer, name)}
    try:
        for name in saved:
            setattr(ssm_layer, name, globals()[name])
        yield
    finally:
        for name, fn in saved.items():
            setattr(ssm_layer, name, fn)
