"""The mamba_ssm CUDA kernel as a backend, used only when it imports and the tensors live on a GPU."""

from __future__ import annotations

import functools


@functools.lru_cache(maxsize=1)
def mamba_selective_scan_fn():
    """mamba_ssm's selective_scan_fn, or None when the package (or its compiled kernel) is missing."""
    try:
        from mamba_ssm.ops.selective_scan_interface import selective_scan_fn
    except Exception:  # ImportError, or a broken CUDA build raising at import
        return None
    return selective_scan_fn


def selective_scan_cuda(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                        return_last_state=False):
    """Same semantics as the reference; half and bfloat16 are accumulated in float32 by the kernel."""
    fn = mamba_selective_scan_fn()
    if fn is None:
        raise RuntimeError("the 'cuda' selective-scan backend needs mamba_ssm (pip install mamba-ssm)")
    A = A.float()
    if D is not None:
        D = D.float()
    if delta_bias is not None:
        delta_bias = delta_bias.float()
    return fn(u.contiguous(), delta.contiguous(), A.contiguous(), B.contiguous(), C.contiguous(), D,
              None if z is None else z.contiguous(), delta_bias, delta_softplus, return_last_state)
