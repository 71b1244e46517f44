"""A selective scan that torch.onnx can export with a dynamic sequence length.

The recurrence is serpentir.ops.scan_export_chunked's: a fixed number of chunks scanned in parallel
by loops that the graph keeps as ONNX Scan nodes (nothing is unrolled for a particular length), with
a layout chosen for onnxruntime's speed. In eager mode the same code runs as plain Python loops, so
it is tested against the sequential reference like every other backend.
"""

from __future__ import annotations

from .scan_core import run_core_scan
from .scan_export_chunked import chunk_count, chunked_export_core

__all__ = ["chunk_count", "export_scan_core", "selective_scan_export"]

export_scan_core = chunked_export_core


def selective_scan_export(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                          return_last_state=False, chunks: int | None = None):
    """Exportable backend (mamba_ssm's call convention): any device, dynamic L, exact for strong decays."""
    return run_core_scan(export_scan_core, u, delta, A, B, C, D, z, delta_bias, delta_softplus,
                         return_last_state, chunks=chunks)
