"""One entry point for the selective scan, with mamba_ssm's call convention, over several backends."""

from __future__ import annotations

import logging
import os
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from .flops import active_recorder
from .scan_chunked import chunked_scan_core
from .scan_cpu import selective_scan_cpu
from .scan_cpu_build import cpu_kernel_ops
from .scan_cuda import mamba_selective_scan_fn, selective_scan_cuda
from .scan_export import selective_scan_export
from .scan_reference import compute_dtype, selective_scan_ref

log = logging.getLogger("serpentir.scan")

BACKEND_ENV = "SERPENTIR_SCAN_BACKEND"

CoreScan = Callable[..., tuple[Tensor, Tensor]]


def run_core_scan(core: CoreScan, u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                  return_last_state=False, **core_kwargs):
    """Full scan semantics around a backend that implements only the recurrence y, h = core(u, delta, A, B, C).

    Handles dtype (float32 compute for half inputs), delta_bias, softplus, groups, D and z gating;
    every step is a differentiable torch op, so the core's own autograd takes care of the rest.
    """
    out_dtype = u.dtype
    ct = compute_dtype(u)
    u_c, delta, A, B, C = (t.to(ct) for t in (u, delta, A, B, C))
    if delta_bias is not None:
        delta = delta + delta_bias.to(ct)[:, None]
    if delta_softplus:
        delta = F.softplus(delta)
    if B.dim() == 3:
        B = B.unsqueeze(1)
    if C.dim() == 3:
        C = C.unsqueeze(1)
    if B.shape[1] != C.shape[1]:  # different group counts: expand both to one group per channel
        B = B.repeat_interleave(u.shape[1] // B.shape[1], dim=1)
        C = C.repeat_interleave(u.shape[1] // C.shape[1], dim=1)
    y, last = core(u_c, delta, A, B, C, **core_kwargs)
    if D is not None:
        y = y + u_c * D.to(ct)[:, None]
    if z is not None:
        y = y * F.silu(z.to(ct))
    y = y.to(out_dtype)
    return (y, last) if return_last_state else y


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


def available_backends(device: torch.device | str = "cpu") -> list[str]:
    """Backends that can run on `device` in this installation, best first.

    On the CPU this builds the compiled kernel on first call (once per process, then torch's cache),
    unless SERPENTIR_DISABLE_CPU_KERNEL=1; a failed build logs one warning and leaves 'chunked' first.
    """
    device = torch.device(device)
    names = []
    if device.type == "cuda" and mamba_selective_scan_fn() is not None:
        names.append("cuda")
    if device.type == "cpu" and cpu_kernel_ops() is not None:
        names.append("cpu")
    names += ["chunked", "ref"]
    return names


_logged_choice: set[tuple[str, str]] = set()


def resolve_backend(backend: str, u: Tensor) -> str:
    """Turn 'auto' (or the SERPENTIR_SCAN_BACKEND override) into a concrete backend for u's device."""
    if backend == "auto":
        backend = os.environ.get(BACKEND_ENV, "auto") or "auto"
    if backend == "auto":
        backend = available_backends(u.device)[0]
        key = (backend, u.device.type)
        if key not in _logged_choice:
            _logged_choice.add(key)
            log.info("selective scan: using the %r backend on %s", backend, u.device.type)
    if backend not in BACKENDS:
        raise ValueError(f"unknown selective-scan backend {backend!r}; choose from auto, {', '.join(BACKENDS)}")
    if backend == "cuda" and not u.is_cuda:
        raise ValueError("the 'cuda' selective-scan backend needs tensors on a CUDA device")
    if backend == "cpu" and u.device.type != "cpu":
        raise ValueError("the 'cpu' selective-scan backend needs tensors on the CPU")
    return backend


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
