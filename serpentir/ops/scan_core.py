"""The scan's core: which backend runs, the dtype every backend computes in, the shared wrapper around
a bare recurrence, and the compiled CPU kernel's loader.

Every backend module (scan_cpu, scan_2d_cpu, scan_chunked, scan_export, scan_reference) and the two
entry points (selective_scan, scan_2d) import from here; this module imports no backend, so the
dependencies run one way. The kernel is found in this order, once per process, and `-v` (INFO on
the "serpentir.scan" logger) says which path was taken:

1. the binary shipped in the wheel, when it was built for this torch, Python and platform;
2. a build on first use, in a cache folder keyed by everything that changes the binary, under a lock;
3. otherwise the pure-PyTorch 'chunked' backend, with one warning saying why.
"""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from . import scan_cpu_build, scan_cpu_shipped
from .scan_cpu_build import DISABLE_ENV, kernel_disabled
from .scan_cuda import mamba_selective_scan_fn

log = logging.getLogger("serpentir.scan")

BACKEND_ENV = "SERPENTIR_SCAN_BACKEND"
BACKEND_NAMES = ("ref", "chunked", "cuda", "cpu", "export")  # selective_scan.BACKENDS maps each to its function

CoreScan = Callable[..., tuple[Tensor, Tensor]]

__all__ = ["BACKEND_ENV", "BACKEND_NAMES", "DISABLE_ENV", "KernelLoad", "as_dtype", "available_backends",
           "compute_dtype", "cpu_kernel_error", "cpu_kernel_load", "cpu_kernel_ops", "kernel_disabled",
           "log_backend_choice", "require_cpu_kernel", "resolve_backend", "run_core_scan"]


def compute_dtype(x: Tensor) -> torch.dtype:
    """float64 stays float64 (for gradcheck); everything else (half, bfloat16, float32) runs in float32."""
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def as_dtype(x: Tensor, dtype: torch.dtype) -> Tensor:
    """x in `dtype`, with no cast when it already is: a traced graph (ONNX export) then has no cast node."""
    return x if x.dtype == dtype else x.to(dtype)


# --- the compiled kernel ------------------------------------------------------------------------------

@dataclass(frozen=True)
class KernelLoad:
    """How this process got (or did not get) the compiled scan: `how` is shipped, built, cached or fallback."""

    how: str
    path: Path | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.path is not None


@functools.lru_cache(maxsize=1)
def cpu_kernel_load() -> KernelLoad:
    """Load the kernel once per process: the shipped binary, else a (cached) build on first use, else nothing."""
    shipped, why_not = scan_cpu_shipped.load_shipped()
    if shipped is not None:
        log.info("scan kernel: shipped binary %s", shipped)
        return KernelLoad("shipped", shipped)
    log.info("scan kernel: no usable shipped binary (%s)", why_not)
    try:
        path, built = scan_cpu_build.build_and_load()
    except Exception as exc:  # no compiler, no ninja, a failed build: the pure-PyTorch path still works
        text = str(exc).strip()
        first_line = text.splitlines()[0][:300] if text else type(exc).__name__
        log.warning("scan kernel: fallback: chunked PyTorch (could not build the compiled CPU kernel: %s). "
                    "Set %s=1 to skip the attempt.", first_line, DISABLE_ENV)
        return KernelLoad("fallback", None, f"{type(exc).__name__}: {exc}")
    where = "built on first use in" if built else "loaded from the first-use build in"
    log.info("scan kernel: %s %s", where, path.parent)
    return KernelLoad("built" if built else "cached", path)


@functools.lru_cache(maxsize=1)
def _log_disabled() -> None:
    log.info("scan kernel: fallback: chunked PyTorch (disabled by %s)", DISABLE_ENV)


def cpu_kernel_ops() -> Any:
    """torch.ops.serpentir_scan when the compiled kernel is usable, else None (after one log line).

    A disabled kernel (env var) is checked on every call and never cached, so a test can enable it
    later in the same process; the load itself is tried at most once per process.
    """
    if kernel_disabled():
        _log_disabled()
        return None
    return torch.ops.serpentir_scan if cpu_kernel_load().ok else None


def require_cpu_kernel() -> Any:
    """torch.ops.serpentir_scan, or a clear error naming the backend to use instead."""
    ops = cpu_kernel_ops()
    if ops is None:
        raise RuntimeError("the 'cpu' selective-scan backend is unavailable (compiled kernel disabled or failed to "
                           "build; see the log); use backend='chunked'")
    return ops


def cpu_kernel_error() -> str | None:
    """Why loading the compiled kernel failed, if it was tried and did."""
    return cpu_kernel_load().error if cpu_kernel_load.cache_info().currsize else None


# --- dispatch -----------------------------------------------------------------------------------------

def available_backends(device: torch.device | str = "cpu") -> list[str]:
    """Backends that can run on `device` in this installation, best first.

    On the CPU this loads (or builds, once) the compiled kernel unless SERPENTIR_DISABLE_CPU_KERNEL=1;
    a kernel that cannot load logs one warning and leaves 'chunked' first.
    """
    device = torch.device(device)
    names = []
    if device.type == "cuda" and mamba_selective_scan_fn() is not None:
        names.append("cuda")
    if device.type == "cpu" and cpu_kernel_ops() is not None:
        names.append("cpu")
    return names + ["chunked", "ref"]


@functools.lru_cache(maxsize=None)
def log_backend_choice(backend: str, device_type: str) -> None:
    """Say once per process (with -v) which backend 'auto' chose on a device."""
    log.info("selective scan: using the %r backend on %s", backend, device_type)


def resolve_backend(backend: str, u: Tensor) -> str:
    """Turn 'auto' (or the SERPENTIR_SCAN_BACKEND override) into a concrete backend for u's device."""
    if backend == "auto":
        backend = os.environ.get(BACKEND_ENV, "auto") or "auto"
    if backend == "auto":
        backend = available_backends(u.device)[0]
        log_backend_choice(backend, u.device.type)
    if backend not in BACKEND_NAMES:
        raise ValueError(f"unknown selective-scan backend {backend!r}; choose from auto, {', '.join(BACKEND_NAMES)}")
    if backend == "cuda" and not u.is_cuda:
        raise ValueError("the 'cuda' selective-scan backend needs tensors on a CUDA device")
    if backend == "cpu" and u.device.type != "cpu":
        raise ValueError("the 'cpu' selective-scan backend needs tensors on the CPU")
    return backend


# --- the shared wrapper -------------------------------------------------------------------------------

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
