"""Patchifier: image -> grid of patch embeddings, the tokens every later layer works on."""

from __future__ import annotations

from torch import Tensor, nn


class PatchEmbed(nn.Module):
    """(B, C_in, H, W) -> (B, H/P, W/P, dim) with a P x P stride-P convolution and a layer norm."""

    def __init__(self, in_channels: int, dim: int, patch_size: int):
        super().__init__()
        self.proj = nn.Conv2d(in_channels, dim, patch_size, stride=patch_size)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(self.proj(x).permute(0, 2, 3, 1))
