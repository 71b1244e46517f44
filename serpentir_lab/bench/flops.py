"""Honest MAC counts (FLOPs = 2 x MACs): FlopCounterMode for matmuls and convolutions, a formula for scans."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from serpentir.ops import record_scan_cost


@dataclass(frozen=True)
class FlopCount:
    """Forward cost of one input: MACs of matmuls/convolutions (FlopCounterMode) and scans (formula); flops = 2 x macs."""

    flops: int
    macs: int
    matmul_flops: int
    scan_flops: int
    scan_macs: int
    scan_formula: str

    def describe(self) -> str:
        return (f"{self.flops / 1e9:.2f} GFLOPs, {self.macs / 1e9:.2f} GMACs "
                f"(matmul/conv {self.matmul_flops / 1e9:.2f} GFLOPs by FlopCounterMode; "
                f"scan {self.scan_flops / 1e9:.2f} GFLOPs by formula)")


def count_flops(model: nn.Module, shape: tuple[int, ...]) -> FlopCount:
    """Forward FLOPs and MACs of model on an input of `shape`, e.g. (1, 3, 512, 512).

    Runs a copy of the model on the meta device: shapes propagate, nothing is computed, so
    counting 2048x2048 takes seconds and no memory.
    """
    meta_model = copy.deepcopy(model).to("meta").eval()
    x = torch.empty(shape, device="meta")
    with torch.no_grad(), FlopCounterMode(display=False) as counter, record_scan_cost() as scans:
        meta_model(x)
    matmul = counter.get_total_flops()
    return FlopCount(
        flops=matmul + 2 * scans.macs, macs=matmul // 2 + scans.macs, matmul_flops=matmul,
        scan_flops=scans.flops, scan_macs=scans.macs, scan_formula=scans.formula,
    )
