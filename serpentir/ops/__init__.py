"""The selective scan and its cost: the bottom layer, which everything else builds on."""

from .flops import SCAN_FLOP_FORMULA, ScanCostRecorder, record_scan_cost, scan_flops, scan_macs
from .scan_chunked import chunked_scan_core
from .scan_2d import resolve_backend_2d, scan_2d_sequences, selective_scan_2d
from .scan_cpu import selective_scan_cpu
from .scan_reference import selective_scan_ref
from .scan_walks import ORDERS, Walk, scan_walks
from .selective_scan import BACKENDS, available_backends, resolve_backend, selective_scan, selective_scan_chunked

__all__ = [
    "selective_scan", "selective_scan_ref", "selective_scan_chunked", "selective_scan_cpu", "chunked_scan_core",
    "available_backends", "resolve_backend", "BACKENDS", "scan_flops", "scan_macs", "record_scan_cost",
    "ScanCostRecorder", "SCAN_FLOP_FORMULA", "selective_scan_2d", "resolve_backend_2d", "scan_2d_sequences",
    "ORDERS", "Walk", "scan_walks",
]
