"""Patch merging: the encoder's downsampling, 2x2 neighbours -> one token with twice the channels."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class PatchMerging(nn.Module):
    """(B, H, W, C) -> (B, H/2, W/2, 2C): concatenate each 2x2 block (4C), normalise, project to 2C."""

    def __init__(self, dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        x = F.pixel_unshuffle(x.permute(0, 3, 1, 2), 2).permute(0, 2, 3, 1)
        return self.reduction(self.norm(x))
