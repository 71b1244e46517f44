"""Patch expansion: the decoder's upsampling, the inverse of patch merging."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class PatchExpansion(nn.Module):
    """(B, H, W, C) -> (B, 2H, 2W, out_dim): project to 4*out_dim channels, spread over each 2x2 block."""

    def __init__(self, dim: int, out_dim: int | None = None, scale: int = 2):
        super().__init__()
        self.out_dim, self.scale = out_dim or dim // 2, scale
        self.expand = nn.Linear(dim, scale * scale * self.out_dim, bias=False)
        self.norm = nn.LayerNorm(self.out_dim)

    def forward(self, x: Tensor) -> Tensor:
        x = F.pixel_shuffle(self.expand(x).permute(0, 3, 1, 2), self.scale).permute(0, 2, 3, 1)
        return self.norm(x)
