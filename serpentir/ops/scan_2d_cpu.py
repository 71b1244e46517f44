"""The compiled fused 2-D scan (csrc/scan_2d_cpu.cpp) as an autograd Function.

The kernel reads the raster-ordered map and each direction's projections through their strides and
walks every direction by index arithmetic; the step sizes are formed per step from their low-rank
features (Mamba's dt projection), the merge (sum over directions, plus D * u) is fused, and
the backward recomputes states from checkpoints every `chunk` steps as the 1-D kernel does.
"""

from __future__ import annotations

import functools
from typing import Optional

import torch
from torch import Tensor

from .scan_core import compute_dtype, cpu_kernel_ops, require_cpu_kernel
from .scan_cpu import DEFAULT_CHUNK


def _scan2d_ops():
    require_cpu_kernel()  # loads or builds/loads the library (both scans live in it), or raises a clear error
    return torch.ops.serpentir_scan2d


@torch.compiler.assume_constant_result
def fused_kernel_ready() -> bool:
    """Whether the fused kernel is usable; once it is, its traceable wrappers are registered too.
    A constant to torch.compile, which then neither re-checks nor graph-breaks per layer."""
    if cpu_kernel_ops() is None:
        return False
    _traceable_ops()
    return True


def _kernel(name: str):
    """The kernel's op `name` ('forward' or 'backward'): while torch.compile traces, its opaque wrapper."""
    if torch.compiler.is_compiling():
        return getattr(torch.ops.serpentir, f"scan2d_{name}")
    return getattr(_scan2d_ops(), name)


@functools.cache
def _traceable_ops() -> None:
    """Register serpentir::scan2d_forward / scan2d_backward: the kernel as custom ops that declare
    their output shapes, so torch.compile compiles the layers around the scan and calls the kernel as
    one opaque step (the C++ registration alone lets the tracer into the kernel). On first use."""
    kernel = _scan2d_ops()

    @torch.library.custom_op("serpentir::scan2d_forward", mutates_args=())
    def forward(u: Tensor, dt: Tensor, dt_w: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Optional[Tensor],
                bias: Optional[Tensor], h0: Optional[Tensor], codes: list[int], softplus: bool, chunk: int,
                save: bool) -> tuple[Tensor, Tensor, Tensor]:
        return kernel.forward(u, dt, dt_w, A, B, C, D, bias, h0, codes, softplus, chunk, save)

    @forward.register_fake
    def _(u, dt, dt_w, A, B, C, D, bias, h0, codes, softplus, chunk, save):
        b, H, W, d = u.shape
        kd, N = B.shape[3] * d, B.shape[4]
        ckpt = u.new_empty((b, kd, -(-H * W // chunk), N) if save else (0,))
        return u.new_empty((b, H, W, d)), u.new_empty((b, kd, N)), ckpt

    @torch.library.custom_op("serpentir::scan2d_backward", mutates_args=())
    def backward(u: Tensor, dt: Tensor, dt_w: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Optional[Tensor],
                 bias: Optional[Tensor], codes: list[int], softplus: bool, chunk: int, ckpt: Tensor,
                 dy: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
        return kernel.backward(u, dt, dt_w, A, B, C, D, bias, codes, softplus, chunk, ckpt, dy)

    @backward.register_fake
    def _(u, dt, dt_w, A, B, C, D, bias, codes, softplus, chunk, ckpt, dy):
        b, H, W, d = u.shape
        K, N, R = B.shape[3], B.shape[4], dt.shape[4]
        grid = (b, H, W, K)
        return (u.new_empty(u.shape), u.new_empty((*grid, R)), u.new_empty((K * d, R)), u.new_empty((K * d, N)),
                u.new_empty((*grid, N)), u.new_empty((*grid, N)), u.new_empty((K * d,)), u.new_empty((K * d,)))


class FusedScan2d(torch.autograd.Function):
    """y = sum_k scan_k(u): u (b, H, W, d), dt (b, H, W, K, R), dt_w (K*d, R), B/C (b, H, W, K, N), A (K*d, N)."""

    @staticmethod
    def forward(ctx, u, dt, dt_w, A, B, C, D, bias, codes: list[int], softplus: bool, chunk: int):
        save = any(ctx.needs_input_grad)
        y, _, ckpt = _kernel("forward")(u, dt, dt_w, A, B, C, D, bias, None, codes, softplus, chunk, save)
        if save:
            ctx.save_for_backward(u, dt, dt_w, A, B, C, D, bias, ckpt)
        ctx.codes, ctx.softplus, ctx.chunk = codes, softplus, chunk
        return y

    @staticmethod
    def backward(ctx, dy):
        u, dt, dt_w, A, B, C, D, bias, ckpt = ctx.saved_tensors
        du, ddt, ddt_w, dA, dB, dC, dD, dbias = _kernel("backward")(
            u, dt, dt_w, A, B, C, D, bias, ctx.codes, ctx.softplus, ctx.chunk, ckpt, dy.to(u.dtype))
        return (du, ddt, ddt_w, dA, dB, dC, dD if D is not None else None, dbias if bias is not None else None,
                None, None, None)


def scan_2d_cpu(u: Tensor, dt: Tensor, dt_weight: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor | None,
                delta_bias: Tensor | None, codes: list[int], delta_softplus: bool, h0: Tensor | None = None,
                chunk_size: int | None = None) -> tuple[Tensor, Tensor | None]:
    """(y, last state or None) on the CPU in float32 (float64 stays float64); see FusedScan2d for shapes.

    With h0 (the state entering every walk, (b, K*d, N)) the call is for inference in pieces: no
    gradient flows and the last states are returned so the next piece can continue from them.
    """
    ct = compute_dtype(u)
    out_dtype = u.dtype
    u, dt, B, C = (t.to(ct) for t in (u, dt, B, C))
    A, dt_weight = A.to(ct).contiguous(), dt_weight.to(ct).contiguous()
    D = None if D is None else D.to(ct).contiguous()
    delta_bias = None if delta_bias is None else delta_bias.to(ct).contiguous()
    chunk = chunk_size or DEFAULT_CHUNK
    if h0 is not None:
        if torch.is_grad_enabled() and any(t.requires_grad for t in (u, dt, dt_weight, A, B, C, h0)):
            raise ValueError("selective_scan_2d: an initial state is for inference in pieces; it has no backward")
        y, last, _ = _scan2d_ops().forward(u, dt, dt_weight, A, B, C, D, delta_bias, h0.to(ct).contiguous(),
                                           codes, delta_softplus, chunk, False)
        return y.to(out_dtype), last
    y = FusedScan2d.apply(u, dt, dt_weight, A, B, C, D, delta_bias, codes, bool(delta_softplus), chunk)
    return y.to(out_dtype), None
