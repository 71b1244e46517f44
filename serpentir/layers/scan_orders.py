"""The scan orders written out as explicit permutations: the reference the fused 2-D scan is tested against.

The network itself never unrolls: serpentir.ops.selective_scan_2d walks each direction over the
raster-ordered map (serpentir.ops.scan_walks). This module spells the same orders out independently,
cell by cell, and offers the plain gather-based unroll (map -> one sequence per direction) and merge
(sequences -> map, summed over directions): unroll -> 1-D scan -> merge is the definition of the
multi-direction scan, slow and obviously right.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor

from ..ops.scan_walks import ORDERS, scan_walks


def direction_names(directions: int, order: str = "diagonal") -> tuple[str, ...]:
    """Names of the scans used for a direction count, in the order they are stacked."""
    return tuple(w.name for w in scan_walks(directions, order))


def _positions(name: str, H: int, W: int) -> Tensor:
    """Raster index of the pixel visited at each step of one scan, written out per name."""
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
    """(K, H*W) visit orders and their inverses, cached per grid size and device.

    Built outside inference mode: a cached tensor made under torch.inference_mode could not be
    saved for backward by a later training step.
    """
    with torch.inference_mode(False):
        perm = torch.stack([_positions(n, H, W) for n in direction_names(directions, order)])
        inverse = torch.argsort(perm, dim=1)
        return perm.to(device), inverse.to(device)


def unroll(x: Tensor, directions: int = 4, order: str = "diagonal") -> Tensor:
    """(B, H, W, C) map -> (B, K, H*W, C): one sequence per scan direction, by gathering."""
    B, H, W, C = x.shape
    perm, _ = scan_permutations(directions, order, H, W, str(x.device))
    return x.reshape(B, H * W, C)[:, perm]


def merge(seqs: Tensor, H: int, W: int, order: str = "diagonal", reduce: str = "sum") -> Tensor:
    """(B, K, H*W, C) scanned sequences -> (B, H, W, C) summed over directions (or (B, K, H, W, C))."""
    B, K, L, C = seqs.shape
    if reduce not in ("sum", "none"):
        raise ValueError(f"reduce must be 'sum' or 'none', got {reduce!r}")
    _, inverse = scan_permutations(K, order, H, W, str(seqs.device))
    raster = torch.gather(seqs, 2, inverse.view(1, K, L, 1).expand(B, K, L, C)).view(B, K, H, W, C)
    return raster.sum(1) if reduce == "sum" else raster


__all__ = ["ORDERS", "direction_names", "scan_permutations", "unroll", "merge"]
