"""Serpent's S-blocks: a stage of VSS blocks with a change of scale on the way down or up."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .patch_expansion import PatchExpansion
from .patch_merging import PatchMerging
from .vss_block import VSSBlock


def vss_stage(dim: int, depth: int, **vss_kwargs) -> nn.Sequential:
    """depth VSS blocks at one width."""
    return nn.Sequential(*[VSSBlock(dim, **vss_kwargs) for _ in range(depth)])


class DownSBlock(nn.Module):
    """n VSS blocks at width C, then patch merging; returns (skip at C, downsampled at 2C)."""

    def __init__(self, dim: int, depth: int, **vss_kwargs):
        super().__init__()
        self.blocks = vss_stage(dim, depth, **vss_kwargs)
        self.merge = PatchMerging(dim)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        skip = self.blocks(x)
        return skip, self.merge(skip)


class UpSBlock(nn.Module):
    """Patch expansion 2C -> C, join the encoder's skip of the same size, then n VSS blocks at C."""

    def __init__(self, dim: int, depth: int, **vss_kwargs):
        super().__init__()
        self.expand = PatchExpansion(2 * dim, dim)
        self.fuse = nn.Linear(2 * dim, dim, bias=False)
        self.blocks = vss_stage(dim, depth, **vss_kwargs)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        x = self.fuse(torch.cat([self.expand(x), skip], dim=-1))
        return self.blocks(x)
