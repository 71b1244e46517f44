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
    """(K, H*W) visit orders and their inverses, cached per grid size and device.

    Built outside inference mode: a cached tensor made under torch.inference_mode could not be
    saved for backward by a later training step.
    """
    with torch.inference_mode(False):
        perm = torch.stack([_positions(n, H, W) for n in direction_names(directions, order)])
        inverse = torch.argsort(perm, dim=1)
        return perm.to(device), inverse.to(device)


@functools.lru_cache(maxsize=64)
def _token_major_indices(directions: int, order: str, H: int, W: int, device: str = "cpu") -> tuple[Tensor, Tensor]:
    """Flat indices for sequences stored token-major, (B, L, K, C) in memory.

    gather[t * K + k] = perm[k, t]: the raster pixel visited at step t of direction k;
    scatter[p * K + k] = inverse[k, p] * K + k: where pixel p sits in direction k's sequence.
    """
    perm, inverse = scan_permutations(directions, order, H, W, device)
    K = perm.shape[0]
    with torch.inference_mode(False):  # cached: must stay usable by later training steps
        gather = perm.t().reshape(-1)
        scatter = (inverse * K + torch.arange(K, device=inverse.device)[:, None]).t().reshape(-1)
        return gather, scatter


def _gather_tokens(x: Tensor, gather: Tensor, K: int) -> Tensor:
    """(B, L, C) raster tokens -> (B, L, K, C) sequences, token-major: one index_select, no transpose."""
    B, L, C = x.shape
    return x.index_select(1, gather).view(B, L, K, C)


def _sum_directions(seqs_tm: Tensor, scatter: Tensor) -> Tensor:
    """(B, L, K, C) token-major sequences -> (B, L, C) raster tokens summed over the K directions."""
    B, L, K, C = seqs_tm.shape
    return seqs_tm.reshape(B, L * K, C).index_select(1, scatter).view(B, L, K, C).sum(2)


class _Unroll(torch.autograd.Function):
    """Each direction is a bijection of the pixels, so the adjoint of unroll is merge and vice versa:
    both directions are plain gathers, never the slow accumulating index_put of advanced indexing."""

    @staticmethod
    def forward(ctx, x: Tensor, gather: Tensor, scatter: Tensor, K: int) -> Tensor:
        ctx.save_for_backward(gather, scatter)
        return _gather_tokens(x, gather, K)

    @staticmethod
    def backward(ctx, grad: Tensor):
        gather, scatter = ctx.saved_tensors
        return _sum_directions(grad, scatter), None, None, None


class _MergeSum(torch.autograd.Function):
    @staticmethod
    def forward(ctx, seqs_tm: Tensor, gather: Tensor, scatter: Tensor) -> Tensor:
        ctx.save_for_backward(gather, scatter)
        ctx.K = seqs_tm.shape[2]
        return _sum_directions(seqs_tm, scatter)

    @staticmethod
    def backward(ctx, grad: Tensor):
        gather, scatter = ctx.saved_tensors
        return _gather_tokens(grad.contiguous(), gather, ctx.K), None, None


def unroll(x: Tensor, directions: int = 4, order: str = "diagonal") -> Tensor:
    """(B, H, W, C) token-major map -> (B, K, H*W, C): one sequence per scan direction.

    The result is a view of a token-major (B, H*W, K, C) tensor, so (B, K*C, H*W) channel-major
    scan inputs are views of it too (the scan kernels read strided inputs in place).
    """
    B, H, W, C = x.shape
    K = len(direction_names(directions, order))
    gather, scatter = _token_major_indices(directions, order, H, W, str(x.device))
    return _Unroll.apply(x.reshape(B, H * W, C), gather, scatter, K).permute(0, 2, 1, 3)


def merge(seqs: Tensor, H: int, W: int, order: str = "diagonal", reduce: str = "sum") -> Tensor:
    """(B, K, H*W, C) scanned sequences -> (B, H, W, C) summed over directions (or (B, K, H, W, C))."""
    B, K, L, C = seqs.shape
    if reduce == "sum":
        gather, scatter = _token_major_indices(K, order, H, W, str(seqs.device))
        return _MergeSum.apply(seqs.permute(0, 2, 1, 3), gather, scatter).view(B, H, W, C)
    if reduce != "none":
        raise ValueError(f"reduce must be 'sum' or 'none', got {reduce!r}")
    _, inverse = scan_permutations(K, order, H, W, str(seqs.device))
    raster = torch.gather(seqs, 2, inverse.view(1, K, L, 1).expand(B, K, L, C))
    return raster.view(B, K, H, W, C)
