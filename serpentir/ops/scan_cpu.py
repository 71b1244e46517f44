"""The compiled CPU backend: a fused C++/OpenMP selective scan with a checkpointed backward.

bias, softplus, D and the z gate are fused into the kernel (each would otherwise be a full pass over
a (batch, dim, L) tensor). The forward keeps only the state entering every `chunk_size` steps, and
the backward recomputes each chunk's states from it, so training memory is O(L * dim + L / chunk *
dim * N) instead of O(L * dim * N). Inputs of any strides and of half, bfloat16, float32 or float64
are read as they are; half and bfloat16 accumulate in float32.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .scan_core import compute_dtype, require_cpu_kernel

DEFAULT_CHUNK = 64  # checkpoint interval: states cost dim * N * 4 bytes per 64 steps, a quarter of u


class CpuScan(torch.autograd.Function):
    """(y, last_state) = scan(u, delta, A, B, C, D, z, delta_bias) with B, C as (b, G, N, L)."""

    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, z, delta_bias, softplus: bool, chunk: int):
        save = any(ctx.needs_input_grad)
        y, last, ckpt = require_cpu_kernel().forward(u, delta, A, B, C, D, z, delta_bias, softplus, chunk, save)
        if save:
            ctx.save_for_backward(u, delta, A, B, C, D, z, delta_bias, ckpt)
        ctx.softplus, ctx.chunk = softplus, chunk
        return y, last

    @staticmethod
    def backward(ctx, dy, dlast):
        u, delta, A, B, C, D, z, delta_bias, ckpt = ctx.saved_tensors
        if dy is None:  # only the last state was used: a broadcast zero, read in place by the kernel
            dy = torch.zeros((), dtype=u.dtype).expand(u.shape)
        dlast = None if dlast is None else dlast.to(A.dtype).contiguous()
        du, ddelta, dz, dA, dB, dC, dD = require_cpu_kernel().backward(
            u, delta, A, B, C, D, z, delta_bias, ctx.softplus, ctx.chunk, ckpt, dy.to(u.dtype), dlast)
        dbias = ddelta.sum((0, 2)) if delta_bias is not None else None
        io = u.dtype  # gradients were accumulated in the compute dtype
        return (du.to(io), ddelta.to(io), dA, dB.to(io), dC.to(io), dD if D is not None else None,
                dz.to(io) if z is not None else None, dbias, None, None)


def _group_count(B: Tensor, C: Tensor) -> int:
    gb = 1 if B.dim() == 3 else B.shape[1]
    gc = 1 if C.dim() == 3 else C.shape[1]
    return gb * gc // math.gcd(gb, gc)


def _as_groups(X: Tensor, groups: int) -> Tensor:
    """(b, N, L) or (b, G, N, L) -> (b, groups, N, L); a view unless G has to be refined."""
    X = X.unsqueeze(1) if X.dim() == 3 else X
    return X if X.shape[1] == groups else X.repeat_interleave(groups // X.shape[1], dim=1)


def selective_scan_cpu(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor | None = None,
                       z: Tensor | None = None, delta_bias: Tensor | None = None, delta_softplus: bool = False,
                       return_last_state: bool = False, chunk_size: int | None = None):
    """Same semantics and call convention as selective_scan_ref; CPU tensors only."""
    if u.device.type != "cpu":
        raise ValueError("the 'cpu' selective-scan backend needs tensors on the CPU")
    ct, out_dtype = compute_dtype(u), u.dtype
    groups = _group_count(B, C)
    B, C = _as_groups(B, groups), _as_groups(C, groups)
    big = [u, delta, B, C] + ([z] if z is not None else [])
    # the large tensors are read in their own dtype (half stays half in memory); mixed dtypes meet in ct
    io = u.dtype if all(t.dtype == u.dtype for t in big) else ct
    u, delta, B, C = (t.to(io) for t in (u, delta, B, C))
    z = None if z is None else z.to(io)
    A = A.to(ct).contiguous()
    D = None if D is None else D.to(ct).contiguous()
    delta_bias = None if delta_bias is None else delta_bias.to(ct).contiguous()
    y, last = CpuScan.apply(u, delta, A, B, C, D, z, delta_bias, bool(delta_softplus), chunk_size or DEFAULT_CHUNK)
    y = y.to(out_dtype)
    return (y, last) if return_last_state else y
