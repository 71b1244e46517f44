"""One entry point for the selective scan, with mamba_ssm's call convention, over several backends.

Which backend runs is decided in scan_core (resolve_backend); this module maps each name to its function.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from .flops import active_recorder
from .scan_chunked import chunked_scan_core
from .scan_core import BACKEND_ENV, available_backends, resolve_backend, run_core_scan
from .scan_cpu import selective_scan_cpu
from .scan_cuda import selective_scan_cuda
from .scan_export import selective_scan_export
from .scan_reference import selective_scan_ref

__all__ = ["BACKENDS", "BACKEND_ENV", "available_backends", "resolve_backend", "run_core_scan", "selective_scan",
           "selective_scan_chunked"]


def selective_scan_chunked(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                           return_last_state=False, chunk_size: int | None = None):
    """Pure-PyTorch linear-space backend: any device, stable for strong decays, memory O(T*dim*N)."""
    return run_core_scan(chunked_scan_core, u, delta, A, B, C, D, z, delta_bias, delta_softplus,
                         return_last_state, chunk_size=chunk_size)


BACKENDS: dict[str, Callable] = {
    "ref": selective_scan_ref,
    "chunked": selective_scan_chunked,
    "cuda": selective_scan_cuda,
    "cpu": selective_scan_cpu,
    "export": selective_scan_export,
}


def _check_shapes(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D, z, delta_bias) -> None:
    if u.dim() != 3:
        raise ValueError(f"u must be (batch, dim, L), got shape {tuple(u.shape)}")
    batch, dim, L = u.shape
    if delta.shape != u.shape:
        raise ValueError(f"delta must match u {tuple(u.shape)}, got {tuple(delta.shape)}")
    if A.dim() != 2 or A.shape[0] != dim:
        raise ValueError(f"A must be (dim={dim}, N), got {tuple(A.shape)}")
    N = A.shape[1]
    for name, t in (("B", B), ("C", C)):
        ok = (t.dim() == 3 and t.shape == (batch, N, L)) or (
            t.dim() == 4 and t.shape[0] == batch and t.shape[2:] == (N, L) and dim % t.shape[1] == 0)
        if not ok:
            raise ValueError(f"{name} must be (batch, N, L) or (batch, groups, N, L) with groups dividing "
                             f"dim={dim}; got {tuple(t.shape)} for N={N}, L={L}")
    for name, t in (("D", D), ("delta_bias", delta_bias)):
        if t is not None and t.shape != (dim,):
            raise ValueError(f"{name} must be (dim={dim},), got {tuple(t.shape)}")
    if z is not None and z.shape != u.shape:
        raise ValueError(f"z must match u {tuple(u.shape)}, got {tuple(z.shape)}")


def selective_scan(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor | None = None,
                   z: Tensor | None = None, delta_bias: Tensor | None = None, delta_softplus: bool = False,
                   return_last_state: bool = False, backend: str = "auto"):
    """Mamba (S6) selective scan; the signature of mamba_ssm's selective_scan_fn plus a backend name.

    u, delta, z: (batch, dim, L); A: (dim, N); B, C: (batch, N, L) or (batch, groups, N, L);
    D, delta_bias: (dim,). Returns y (batch, dim, L) and, if asked, the last state (batch, dim, N).
    """
    _check_shapes(u, delta, A, B, C, D, z, delta_bias)
    name = resolve_backend(backend, u)
    recorder = active_recorder()
    if recorder is not None:
        batch, dim, L = u.shape
        recorder.add(batch, dim, L, A.shape[1], D is not None, z is not None)
    if u.is_meta:  # shape propagation only (cost counting): skip the recurrence
        y = torch.empty_like(u)
        return (y, u.new_empty(u.shape[0], u.shape[1], A.shape[1])) if return_last_state else y
    return BACKENDS[name](u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state)
