"""MAC formula of the selective scan, and a recorder that counts scans FlopCounterMode cannot see.

torch's FlopCounterMode counts matmuls and convolutions but no element-wise work, and a selective
scan is nearly all element-wise work. So each scan reports its multiply-accumulates by formula to the
active recorder, and cost reports add the two counts. One rule everywhere: MACs are counted, and
FLOPs = 2 x MACs, for the scan as for every matmul and convolution (the field quotes MACs as "FLOPs").
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field

SCAN_FLOP_FORMULA = (
    "scan MACs = 3*b*d*L*N (a*h+x, delta_u*B, C.h per state element; the exp of delta*A, like every "
    "element-wise operation outside a matmul, is not a MAC) + b*d*L for D*u + b*d*L for the silu(z) gate "
    "+ b*d*L*R for step sizes formed inside the 2-D scan from rank-R features (Mamba's dt projection, a "
    "matmul elsewhere); FLOPs = 2 x MACs, the same rule as FlopCounterMode's for matmuls and convolutions"
)


def scan_macs(batch: int, dim: int, length: int, state: int, with_D: bool = True, with_z: bool = False,
              dt_rank: int = 0) -> int:
    """Multiply-accumulates of one forward selective scan (the formula in SCAN_FLOP_FORMULA)."""
    n = 3 * batch * dim * length * state + batch * dim * length * dt_rank
    if with_D:
        n += batch * dim * length
    if with_z:
        n += batch * dim * length
    return n


def scan_flops(batch: int, dim: int, length: int, state: int, with_D: bool = True, with_z: bool = False,
               dt_rank: int = 0) -> int:
    """Floating-point operations of one forward selective scan: 2 x its MACs, as for every layer."""
    return 2 * scan_macs(batch, dim, length, state, with_D, with_z, dt_rank)


@dataclass
class ScanCostRecorder:
    """Sums the formula cost of every selective_scan call made while it is active."""

    flops: int = 0
    macs: int = 0
    calls: int = 0
    formula: str = field(default=SCAN_FLOP_FORMULA)

    def add(self, batch: int, dim: int, length: int, state: int, with_D: bool, with_z: bool, dt_rank: int = 0) -> None:
        self.flops += scan_flops(batch, dim, length, state, with_D, with_z, dt_rank)
        self.macs += scan_macs(batch, dim, length, state, with_D, with_z, dt_rank)
        self.calls += 1


_active = threading.local()


def active_recorder() -> ScanCostRecorder | None:
    """The recorder of the innermost `record_scan_cost()` block on this thread, if any."""
    return getattr(_active, "recorder", None)


@contextlib.contextmanager
def record_scan_cost():
    """with record_scan_cost() as rec: model(x)  ->  rec.flops, rec.macs of every scan in the block."""
    previous = active_recorder()
    rec = ScanCostRecorder()
    _active.recorder = rec
    try:
        yield rec
    finally:
        _active.recorder = previous
