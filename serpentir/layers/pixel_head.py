"""Head: tokens back to pixels, the last step of the network."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class PixelHead(nn.Module):
    """(B, H/P, W/P, C) -> (B, out_channels, H, W): norm, project to P*P*out values, pixel shuffle."""

    def __init__(self, dim: int, out_channels: int, patch_size: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.proj = nn.Linear(dim, patch_size * patch_size * out_channels)
        self.patch_size = patch_size
        # Start near the identity: the network's output is input + head, so a small head means an
        # untrained model returns (almost) its input, and training refines from there instead of
        # first unlearning a random correction. Not zero, so gradients reach every layer at step 0.
        nn.init.normal_(self.proj.weight, std=1e-3)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: Tensor) -> Tensor:
        return F.pixel_shuffle(self.proj(self.norm(x)).permute(0, 3, 1, 2), self.patch_size)
