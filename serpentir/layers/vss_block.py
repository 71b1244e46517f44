"""The visual state-space (VSS) block: Serpent's replacement for an attention or convolution block."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .multi_direction_ssm import MultiDirectionSSM


class VSSBlock(nn.Module):
    """x + out_proj(norm(SSM_2D(silu(dwconv(branch)))) * silu(gate)), on (B, H, W, C) maps.

    layer norm -> input projection into a branch and a gate -> depthwise 3x3 convolution (local
    mixing) -> multi-direction selective scan (global mixing) -> norm -> gate -> output projection
    -> residual with a learned per-channel scale.
    """

    def __init__(self, dim: int, d_state: int = 16, expand: float = 2.0, directions: int = 4,
                 order: str = "diagonal", d_conv: int = 3, scan_backend: str = "auto"):
        super().__init__()
        d_inner = int(expand * dim)
        self.norm = nn.LayerNorm(dim)
        self.in_proj = nn.Linear(dim, 2 * d_inner, bias=False)
        self.dwconv = nn.Conv2d(d_inner, d_inner, d_conv, padding=d_conv // 2, groups=d_inner)
        self.ssm = MultiDirectionSSM(d_inner, d_state, directions, order, scan_backend=scan_backend)
        self.out_norm = nn.LayerNorm(d_inner)
        self.out_proj = nn.Linear(d_inner, dim, bias=False)
        self.skip_scale = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        branch, gate = self.in_proj(self.norm(x)).chunk(2, dim=-1)
        branch = F.silu(self.dwconv(branch.permute(0, 3, 1, 2))).permute(0, 2, 3, 1)
        y = self.out_norm(self.ssm(branch)) * F.silu(gate)
        return x * self.skip_scale + self.out_proj(y)

