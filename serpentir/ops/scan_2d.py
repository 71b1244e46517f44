"""The 2-D multi-direction selective scan: one S6 scan per walk of the map, summed back in raster order.

Beside `selective_scan` (mamba_ssm's 1-D entry point, unchanged), this op takes the map in raster
order and each direction's projections computed once, in raster order:

    u          (batch, H, W, d)     the features every direction scans
    dt         (batch, H, W, K, R)  direction k's low-rank step-size features (Mamba's dt_rank R)
    dt_weight  (K*d, R)             Mamba's dt projection: delta_k = softplus(dt_weight_k . dt_k + delta_bias_k)
    B, C       (batch, H, W, K, N)  input / output projections of direction k
    A          (K*d, N); D, delta_bias (K*d,)   rows k*d .. k*d+d-1 belong to direction k
    ->  y      (batch, H, W, d) = sum_k (scan_k(u) + D_k * u), scan_k visiting the map along walk k

The step sizes are taken in their low-rank form so that the fused kernel can form them per step:
the (K*d)-channel delta of the whole map, and its gradient, never exist.

Backends: "cpu" is the fused compiled kernel (no unrolled copies, merge fused, forward and backward);
every other backend ("chunked", "ref", "cuda", or one registered later) runs on sequences formed by
flip/transpose (serpentir.ops.scan_walks), one selective_scan call for all directions with B and C as
groups, and flips back. "auto" takes the fused kernel on the CPU when it is built, else the best 1-D
backend for the device.
"""

from __future__ import annotations

import os
from typing import Sequence

import torch
from torch import Tensor

from .flops import active_recorder
from .scan_2d_cpu import fused_kernel_ready, scan_2d_cpu
from .scan_core import BACKEND_ENV, compute_dtype, log_backend_choice, resolve_backend
from .scan_walks import Walk
from .selective_scan import selective_scan


def resolve_backend_2d(backend: str, u: Tensor) -> str:
    """'auto' (or SERPENTIR_SCAN_BACKEND) -> 'cpu' (fused) on the CPU when the kernel is built, else a 1-D backend."""
    if backend == "auto":
        backend = os.environ.get(BACKEND_ENV, "auto") or "auto"
    if backend == "auto" and u.device.type == "cpu" and fused_kernel_ready():
        if not torch.compiler.is_compiling():
            log_backend_choice("cpu", "cpu")
        return "cpu"
    return resolve_backend(backend, u)


def _check_shapes(u: Tensor, dt: Tensor, dt_weight: Tensor, A: Tensor, B: Tensor, C: Tensor, D, delta_bias, K: int,
                  h0: Tensor | None) -> None:
    if u.dim() != 4:
        raise ValueError(f"u must be (batch, H, W, d), got shape {tuple(u.shape)}")
    b, H, W, d = u.shape
    if dt.dim() != 5 or dt.shape[:4] != (b, H, W, K):
        raise ValueError(f"dt must be (batch, H, W, K={K}, R) = {(b, H, W, K)} + (R,), got {tuple(dt.shape)}")
    if dt_weight.shape != (K * d, dt.shape[-1]):
        raise ValueError(f"dt_weight must be (K*d, R) = {(K * d, dt.shape[-1])}, got {tuple(dt_weight.shape)}")
    if A.dim() != 2 or A.shape[0] != K * d:
        raise ValueError(f"A must be (K*d={K * d}, N), got {tuple(A.shape)}")
    N = A.shape[1]
    for name, t in (("B", B), ("C", C)):
        if t.shape != (b, H, W, K, N):
            raise ValueError(f"{name} must be (batch, H, W, K, N) = {(b, H, W, K, N)}, got {tuple(t.shape)}")
    for name, t in (("D", D), ("delta_bias", delta_bias)):
        if t is not None and t.shape != (K * d,):
            raise ValueError(f"{name} must be (K*d={K * d},), got {tuple(t.shape)}")
    if h0 is not None and h0.shape != (b, K * d, N):
        raise ValueError(f"h0 must be (batch, K*d, N) = {(b, K * d, N)}, got {tuple(h0.shape)}")


def step_sizes(dt: Tensor, dt_weight: Tensor) -> Tensor:
    """(batch, H, W, K, R) low-rank features -> (batch, H, W, K, d) raw step sizes (before bias and softplus)."""
    K, R = dt.shape[-2:]
    return torch.einsum("bhwkr,kdr->bhwkd", dt, dt_weight.view(K, -1, R))


def scan_2d_sequences(u: Tensor, dt: Tensor, dt_weight: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor | None,
                      delta_bias: Tensor | None, walks: Sequence[Walk], delta_softplus: bool, backend: str) -> Tensor:
    """The 2-D scan through any 1-D backend: sequences by flip/transpose, one scan call, flipped back and summed."""
    b, H, W, d = u.shape
    K, L = len(walks), H * W
    delta = step_sizes(dt, dt_weight)

    def stacked(x: Tensor) -> Tensor:  # (b, H, W, K, c) -> (b, K, c, L): each direction in its walk order
        return torch.stack([w.sequence(x[..., k, :]) for k, w in enumerate(walks)], 1).transpose(2, 3)

    u_seq = stacked(u.unsqueeze(3).expand(b, H, W, K, d)).reshape(b, K * d, L)
    delta_seq = stacked(delta).reshape(b, K * d, L)
    y = selective_scan(u_seq, delta_seq, A, stacked(B), stacked(C), D=D, delta_bias=delta_bias,
                       delta_softplus=delta_softplus, backend=backend)
    y = y.view(b, K, d, L).transpose(2, 3)
    out = walks[0].unsequence(y[:, 0], H, W)
    for k in range(1, K):
        out = out + walks[k].unsequence(y[:, k], H, W)
    return out


def selective_scan_2d(u: Tensor, dt: Tensor, dt_weight: Tensor, A: Tensor, B: Tensor, C: Tensor,
                      D: Tensor | None = None, delta_bias: Tensor | None = None, *, walks: Sequence[Walk],
                      delta_softplus: bool = True,
                      h0: Tensor | None = None, return_last_state: bool = False, backend: str = "auto"):
    """y (batch, H, W, d) = sum over walks of the S6 scan along each walk; shapes in the module docstring.

    h0 / return_last_state continue a walk across pieces of the map (exact inference in bounded
    memory, see layers.MultiDirectionSSM); they need the fused CPU backend and carry no gradient.
    """
    K = len(walks)
    _check_shapes(u, dt, dt_weight, A, B, C, D, delta_bias, K, h0)
    name = resolve_backend_2d(backend, u)
    recorder = active_recorder()
    if recorder is not None:
        b, H, W, d = u.shape
        recorder.add(b, K * d, H * W, A.shape[1], D is not None, False, dt_rank=dt.shape[-1])
    if u.is_meta:  # shape propagation only (cost counting)
        y = u.new_empty(u.shape)
        return (y, u.new_empty(u.shape[0], K * u.shape[-1], A.shape[1])) if return_last_state else y
    if name == "cpu":
        if return_last_state and h0 is None:
            h0 = u.new_zeros(u.shape[0], K * u.shape[-1], A.shape[1], dtype=compute_dtype(u))
        y, last = scan_2d_cpu(u, dt, dt_weight, A, B, C, D, delta_bias, [w.code for w in walks], delta_softplus, h0)
        return (y, last) if return_last_state else y
    if h0 is not None or return_last_state:
        raise ValueError(f"selective_scan_2d: h0 / return_last_state need the fused 'cpu' backend, not {name!r}")
    if name == "export":  # bands of lines instead of 1-D sequences: see scan_2d_export
        from .scan_2d_export import scan_2d_export

        return scan_2d_export(u, dt, dt_weight, A, B, C, D, delta_bias, walks, delta_softplus).to(u.dtype)
    return scan_2d_sequences(u, dt, dt_weight, A, B, C, D, delta_bias, walks, delta_softplus, name)
