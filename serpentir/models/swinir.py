"""SwinIR (Liang et al., arXiv 2108.10257): residual groups of shifted-window transformer layers.

The baseline Serpent's efficiency claims are measured against: attention inside 8x8 windows costs
O(window^2) per token, so its FLOPs grow linearly with pixels but with a large constant, and its
training memory holds a (tokens x window^2) attention map per layer.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..layers import pad_to_multiple
from .image_boundary import check_image, image_residual, init_head


def window_partition(x: Tensor, window: int) -> Tensor:
    """(B, H, W, C) -> (B, nW, window*window, C); H and W are multiples of window."""
    B, H, W, C = x.shape
    x = x.view(B, H // window, window, W // window, window, C)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(B, (H // window) * (W // window), window * window, C)


def window_merge(windows: Tensor, window: int, H: int, W: int) -> Tensor:
    """Inverse of window_partition: (B, nW, window*window, C) -> (B, H, W, C)."""
    B, C = windows.shape[0], windows.shape[-1]
    x = windows.view(B, H // window, W // window, window, window, C)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(B, H, W, C)


def relative_position_index(window: int) -> Tensor:
    """(N, N) index into the ((2w-1)^2)-entry bias table for every pair of tokens in a window."""
    coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (window - 1)
    return rel[..., 0] * (2 * window - 1) + rel[..., 1]


def shifted_window_mask(H: int, W: int, window: int, shift: int, device: torch.device) -> Tensor:
    """(nW, N, N) additive mask: tokens that the cyclic shift brought together from far apart never attend."""
    region = torch.zeros(H, W, device=device)
    bounds = ((0, -window), (-window, -shift), (-shift, None))
    label = 0
    for h0, h1 in bounds:
        for w0, w1 in bounds:
            region[slice(h0, h1), slice(w0, w1)] = label
            label += 1
    ids = window_partition(region[None, :, :, None], window)[0, :, :, 0]  # (nW, N)
    different = ids[:, :, None] != ids[:, None, :]
    return torch.zeros(different.shape, device=device).masked_fill(different, float("-inf"))


class WindowAttention(nn.Module):
    """Multi-head self-attention inside each window, with a learned relative position bias."""

    def __init__(self, dim: int, window: int, heads: int):
        super().__init__()
        self.heads, self.window = heads, window
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        self.register_buffer("relative_position_index", relative_position_index(window), persistent=False)

    def forward(self, windows: Tensor, mask: Tensor | None) -> Tensor:
        """windows (B, nW, N, C); mask (nW, N, N) or None."""
        B, nW, N, C = windows.shape
        qkv = self.qkv(windows).view(B, nW, N, 3, self.heads, C // self.heads).permute(3, 0, 1, 4, 2, 5)
        q, k, v = qkv.unbind(0)  # each (B, nW, heads, N, head_dim)
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        bias = bias.view(N, N, self.heads).permute(2, 0, 1)  # (heads, N, N)
        if mask is not None:
            bias = bias[None] + mask[:, None]  # (nW, heads, N, N)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype))
        return self.proj(out.transpose(2, 3).reshape(B, nW, N, C))


class SwinLayer(nn.Module):
    """Pre-norm transformer layer on (shifted) windows: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, dim: int, heads: int, window: int, shift: int, mlp_ratio: float):
        super().__init__()
        self.window, self.shift = window, shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, window, heads)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: Tensor) -> Tensor:
        """x (B, H, W, C) token-major, H and W multiples of the window."""
        B, H, W, C = x.shape
        h = self.norm1(x)
        mask = None
        if self.shift:
            h = torch.roll(h, shifts=(-self.shift, -self.shift), dims=(1, 2))
            mask = shifted_window_mask(H, W, self.window, self.shift, x.device)
        h = self.attn(window_partition(h, self.window), mask)
        h = window_merge(h, self.window, H, W)
        if self.shift:
            h = torch.roll(h, shifts=(self.shift, self.shift), dims=(1, 2))
        x = x + h
        return x + self.mlp(self.norm2(x))


class ResidualSwinGroup(nn.Module):
    """RSTB: Swin layers (alternately shifted), a 3x3 convolution, and a residual around them all."""

    def __init__(self, dim: int, depth: int, heads: int, window: int, mlp_ratio: float):
        super().__init__()
        self.layers = nn.ModuleList([
            SwinLayer(dim, heads, window, 0 if i % 2 == 0 else window // 2, mlp_ratio) for i in range(depth)
        ])
        self.conv = nn.Conv2d(dim, dim, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        """x (B, H, W, C) -> same."""
        h = x
        for layer in self.layers:
            h = layer(h)
        h = self.conv(h.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        return x + h


class PixelShuffleUpsampler(nn.Module):
    """SwinIR's classical-SR head: conv + LeakyReLU, (conv, pixel shuffle x2) per octave (or one x3), conv."""

    def __init__(self, dim: int, features: int, scale: int, out_channels: int):
        super().__init__()
        self.before = nn.Sequential(nn.Conv2d(dim, features, 3, padding=1), nn.LeakyReLU(inplace=True))
        steps: list[nn.Module] = []
        if scale & (scale - 1) == 0:
            for _ in range(scale.bit_length() - 1):
                steps += [nn.Conv2d(features, 4 * features, 3, padding=1), nn.PixelShuffle(2)]
        elif scale == 3:
            steps += [nn.Conv2d(features, 9 * features, 3, padding=1), nn.PixelShuffle(3)]
        else:
            raise ValueError(f"upscale must be a power of 2 or 3, got {scale}")
        self.upsample = nn.Sequential(*steps)
        self.last = nn.Conv2d(features, out_channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.last(self.upsample(self.before(x)))


class SwinIR(nn.Module):
    """Image (N, C_in, H, W) in [0, 1] -> (N, C_out, H*upscale, W*upscale); any H and W.

    shallow conv -> RSTB groups -> LayerNorm -> conv after body (+ shallow features) -> conv to
    output + input (restoration, upscale 1), or -> pixel-shuffle upsampler (super-resolution).
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 3, embed_dim: int = 180,
                 depths: tuple[int, ...] = (6, 6, 6, 6, 6, 6), num_heads: int | tuple[int, ...] = 6,
                 window_size: int = 8, mlp_ratio: float = 2.0, upscale: int = 1, upsampler: str = "",
                 upsampler_features: int = 64, head_init: str = "default"):
        super().__init__()
        heads = (num_heads,) * len(depths) if isinstance(num_heads, int) else tuple(num_heads)
        if len(heads) != len(depths):
            raise ValueError("num_heads must give one head count per group")
        if upsampler not in ("", "pixelshuffle") or (upscale != 1) != (upsampler == "pixelshuffle"):
            raise ValueError("use upsampler='pixelshuffle' exactly when upscale > 1")
        self.in_channels, self.out_channels, self.window = in_channels, out_channels, window_size
        self.conv_first = nn.Conv2d(in_channels, embed_dim, 3, padding=1)
        self.embed_norm = nn.LayerNorm(embed_dim)  # SwinIR's patch-embedding norm
        self.groups = nn.ModuleList([
            ResidualSwinGroup(embed_dim, d, h, window_size, mlp_ratio) for d, h in zip(depths, heads)
        ])
        self.norm = nn.LayerNorm(embed_dim)
        self.conv_after_body = nn.Conv2d(embed_dim, embed_dim, 3, padding=1)
        if upsampler:
            self.upscale = upscale
            self.head: nn.Module = PixelShuffleUpsampler(embed_dim, upsampler_features, upscale, out_channels)
        else:
            self.upscale = 1
            self.head = nn.Conv2d(embed_dim, out_channels, 3, padding=1)
        self.apply(_init_linear)
        if head_init != "default" and upsampler:
            raise ValueError("head_init applies to restoration (upscale 1), whose output adds the input back")
        init_head(self.head, head_init)  # "identity": starts as Serpent does (issue 19)

    def forward(self, x: Tensor) -> Tensor:
        check_image(x, self.in_channels)
        H, W = x.shape[-2:]
        padded = pad_to_multiple(x, self.window)
        shallow = self.conv_first(padded)
        h = self.embed_norm(shallow.permute(0, 2, 3, 1))
        for group in self.groups:
            h = group(h)
        h = self.norm(h).permute(0, 3, 1, 2)
        h = self.conv_after_body(h) + shallow
        out = self.head(h)
        if self.upscale == 1:
            out = out + image_residual(padded, self.out_channels)
        return out[..., : H * self.upscale, : W * self.upscale]


def _init_linear(m: nn.Module) -> None:
    """Swin's initialisation: small truncated-normal linear weights, unit LayerNorms."""
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)
