"""Unrolling a 2-D feature map into 1-D scan sequences, and merging the scanned sequences back.

Each direction is a permutation of the H*W raster positions. "diagonal" (the paper's four scans):
from the top left to the bottom right (raster), from the top right to the bottom left (each row
right to left), and the reverse of both. "cross" (VMamba's cross-scan): rows, columns, and their
reverses. With 1 direction only the raster scan is used, with 2 the raster scan and its reverse.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor

ORDERS = ("diagonal", "cross")


def direction_names(directions: int, order: str = "diagonal") -> tuple[str, ...]:
    """Names of the scans used for a direction count, in the order they are stacked."""
    if order not in ORDERS:
        raise ValueError(f"unknown scan order {order!r}; choose from {', '.join(ORDERS)}")
    if directions not in (1, 2, 4):
        raise ValueError(f"directions must be 1, 2 or 4, got {directions}")
    four = {
        "diagonal": ("top-left->bottom-right", "top-right->bottom-left", "bottom-right->top-left",
                     "bottom-left->top-right"),
        "cross": ("rows", "columns", "rows-reversed", "columns-reversed"),
    }[order]
    return {1: four[:1], 2: (four[0], four[2]), 4: four}[directions]


def _positions(name: str, H: int, W: int) -> Tensor:
    """Raster index of the pixel visited at each step of one scan."""
    grid = torch.arange(H * W).view(H, W)
    if name in ("top-left->bottom-right", "rows"):
        seq = grid.flatten()
    elif name == "top-right->bottom-left":
        seq = grid.flip(1).flatten()
    elif name in ("bottom-right->top-left", "rows-reversed"):
        seq = grid.flatten().flip(0)
    elif name == "bottom-left->top-right":
        seq = grid.flip(0).flatten()
    elif name == "columns":
        seq = grid.t().flatten()
    elif name == "columns-reversed":
        seq = grid.t().flatten().flip(0)
    else:  # pragma: no cover - direction_names only yields the names above
        raise ValueError(name)
    return seq


@functools.lru_cache(maxsize=64)
def scan_permutations(directions: int, order: str, H: int, W: int, device: str = "cpu") -> tuple[Tensor, Tensor]:
    """(K, H*W) visit orders and their inverses, cached per grid size and device."""
    perm = torch.stack([_positions(n, H, W) for n in direction_names(directions, order)])
    inverse = torch.argsort(perm, dim=1)
    return perm.to(device), inverse.to(device)


def unroll(x: Tensor, directions: int = 4, order: str = "diagonal") -> Tensor:
    """(B, H, W, C) token-major map -> (B, K, H*W, C): one sequence per scan direction."""
    B, H, W, C = x.shape
    perm, _ = scan_permutations(directions, order, H, W, str(x.device))
    return x.reshape(B, H * W, C)[:, perm]


def merge(seqs: Tensor, H: int, W: int, order: str = "diagonal", reduce: str = "sum") -> Tensor:
    """(B, K, H*W, C) scanned sequences -> (B, H, W, C) summed over directions (or (B, K, H, W, C))."""
    B, K, L, C = seqs.shape
    _, inverse = scan_permutations(K, order, H, W, str(seqs.device))
    raster = torch.gather(seqs, 2, inverse.view(1, K, L, 1).expand(B, K, L, C))
    if reduce == "none":
        return raster.view(B, K, H, W, C)
    if reduce != "sum":
        raise ValueError(f"reduce must be 'sum' or 'none', got {reduce!r}")
    return raster.sum(1).view(B, H, W, C)
