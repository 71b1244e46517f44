"""Restormer (Zamir et al., arXiv 2111.09881): a U-shaped transformer that attends across channels.

Its attention map is (C x C) per head instead of (tokens x tokens), so cost stays linear in pixels;
it is the strongest "efficient transformer" baseline for deblurring and denoising.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..layers import pad_to_multiple
from .image_boundary import check_image, image_residual, init_head


class ChannelLayerNorm(nn.Module):
    """LayerNorm over channels at every pixel of a (B, C, H, W) map ("WithBias" or "BiasFree")."""

    def __init__(self, channels: int, with_bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels)) if with_bias else None

    def forward(self, x: Tensor) -> Tensor:
        h = x.permute(0, 2, 3, 1)
        if self.bias is None:  # BiasFree: scale by the standard deviation, keep the mean
            h = h / torch.sqrt(h.var(-1, keepdim=True, unbiased=False) + 1e-5) * self.weight
        else:
            h = F.layer_norm(h, h.shape[-1:], self.weight, self.bias, eps=1e-5)
        return h.permute(0, 3, 1, 2)


class TransposedAttention(nn.Module):
    """MDTA: queries, keys and values from 1x1 + depthwise 3x3 convs; attention over channels per head."""

    def __init__(self, dim: int, heads: int, bias: bool):
        super().__init__()
        self.heads = heads
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.qkv = nn.Conv2d(dim, 3 * dim, 1, bias=bias)
        self.qkv_dwconv = nn.Conv2d(3 * dim, 3 * dim, 3, padding=1, groups=3 * dim, bias=bias)
        self.project_out = nn.Conv2d(dim, dim, 1, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        B, C, H, W = x.shape
        q, k, v = self.qkv_dwconv(self.qkv(x)).view(B, 3, self.heads, C // self.heads, H * W).unbind(1)
        q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
        attn = (q @ k.transpose(-2, -1) * self.temperature).softmax(dim=-1)  # (B, heads, C/h, C/h)
        return self.project_out((attn @ v).reshape(B, C, H, W))


class GatedFeedForward(nn.Module):
    """GDFN: 1x1 expand, depthwise 3x3, GELU(one half) * other half, 1x1 project."""

    def __init__(self, dim: int, expansion: float, bias: bool):
        super().__init__()
        hidden = int(dim * expansion)
        self.project_in = nn.Conv2d(dim, 2 * hidden, 1, bias=bias)
        self.dwconv = nn.Conv2d(2 * hidden, 2 * hidden, 3, padding=1, groups=2 * hidden, bias=bias)
        self.project_out = nn.Conv2d(hidden, dim, 1, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        a, b = self.dwconv(self.project_in(x)).chunk(2, dim=1)
        return self.project_out(F.gelu(a) * b)


class RestormerBlock(nn.Module):
    """x + MDTA(norm(x)), then x + GDFN(norm(x))."""

    def __init__(self, dim: int, heads: int, expansion: float, bias: bool, norm_bias: bool):
        super().__init__()
        self.norm1 = ChannelLayerNorm(dim, norm_bias)
        self.attn = TransposedAttention(dim, heads, bias)
        self.norm2 = ChannelLayerNorm(dim, norm_bias)
        self.ffn = GatedFeedForward(dim, expansion, bias)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


def _stage(dim: int, n: int, heads: int, expansion: float, bias: bool, norm_bias: bool) -> nn.Sequential:
    return nn.Sequential(*[RestormerBlock(dim, heads, expansion, bias, norm_bias) for _ in range(n)])


class Restormer(nn.Module):
    """Image (N, C_in, H, W) in [0, 1] -> restored (N, C_out, H, W); any H and W (padded to 8).

    Four levels (dim, 2dim, 4dim, 8dim), pixel-unshuffle down and pixel-shuffle up, skip
    concatenation (1x1 reduction on the two inner levels), refinement blocks, output + input.
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 3, dim: int = 48,
                 num_blocks: tuple[int, int, int, int] = (4, 6, 6, 8), num_refinement_blocks: int = 4,
                 heads: tuple[int, int, int, int] = (1, 2, 4, 8), ffn_expansion_factor: float = 2.66,
                 bias: bool = False, layernorm_type: str = "WithBias", head_init: str = "default"):
        super().__init__()
        if layernorm_type not in ("WithBias", "BiasFree"):
            raise ValueError("layernorm_type must be 'WithBias' or 'BiasFree'")
        self.in_channels, self.out_channels = in_channels, out_channels
        opts = dict(expansion=ffn_expansion_factor, bias=bias, norm_bias=layernorm_type == "WithBias")
        d = [dim, 2 * dim, 4 * dim, 8 * dim]
        self.patch_embed = nn.Conv2d(in_channels, dim, 3, padding=1, bias=bias)
        self.encoders = nn.ModuleList([_stage(d[i], num_blocks[i], heads[i], **opts) for i in range(3)])
        self.downs = nn.ModuleList([
            nn.Sequential(nn.Conv2d(d[i], d[i] // 2, 3, padding=1, bias=False), nn.PixelUnshuffle(2))
            for i in range(3)
        ])
        self.latent = _stage(d[3], num_blocks[3], heads[3], **opts)
        # decoder level i (3 -> 1): upsample d[i] -> d[i-1], concatenate skip -> 2*d[i-1]
        self.ups = nn.ModuleList([
            nn.Sequential(nn.Conv2d(d[i], 2 * d[i], 3, padding=1, bias=False), nn.PixelShuffle(2))
            for i in (3, 2, 1)
        ])
        self.reduce = nn.ModuleList([
            nn.Conv2d(d[3], d[2], 1, bias=bias), nn.Conv2d(d[2], d[1], 1, bias=bias), nn.Identity(),
        ])
        self.decoders = nn.ModuleList([
            _stage(d[2], num_blocks[2], heads[2], **opts),
            _stage(d[1], num_blocks[1], heads[1], **opts),
            _stage(d[1], num_blocks[0], heads[0], **opts),  # level 1 keeps the concatenated 2*dim
        ])
        self.refinement = _stage(d[1], num_refinement_blocks, heads[0], **opts)
        self.output = nn.Conv2d(d[1], out_channels, 3, padding=1, bias=bias)
        init_head(self.output, head_init)  # "identity": starts as Serpent does (issue 19)
        self.size_multiple = 8

    def forward(self, x: Tensor) -> Tensor:
        check_image(x, self.in_channels)
        H, W = x.shape[-2:]
        padded = pad_to_multiple(x, self.size_multiple)
        h = self.patch_embed(padded)
        skips = []
        for encoder, down in zip(self.encoders, self.downs):
            h = encoder(h)
            skips.append(h)
            h = down(h)
        h = self.latent(h)
        for up, reduce, decoder, skip in zip(self.ups, self.reduce, self.decoders, reversed(skips)):
            h = decoder(reduce(torch.cat([up(h), skip], dim=1)))
        out = self.output(self.refinement(h)) + image_residual(padded, self.out_channels)
        return out[..., :H, :W]
