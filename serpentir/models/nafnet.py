"""NAFNet (Chen et al., arXiv 2204.04676): a U-Net of activation-free blocks.

The strongest purely convolutional baseline: SimpleGate (x1 * x2) replaces nonlinear activations
and a simplified channel attention replaces squeeze-and-excitation; cost is linear in pixels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..layers import pad_to_multiple
from .image_boundary import check_image, image_residual, init_head


class LayerNorm2d(nn.Module):
    """LayerNorm over the channels of every pixel of a (B, C, H, W) map."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        h = F.layer_norm(x.permute(0, 2, 3, 1), x.shape[1:2], self.weight, self.bias, self.eps)
        return h.permute(0, 3, 1, 2)


class SimpleGate(nn.Module):
    """The activation NAFNet uses instead of one: split the channels in two halves and multiply."""

    def forward(self, x: Tensor) -> Tensor:
        a, b = x.chunk(2, dim=1)
        return a * b


class NAFBlock(nn.Module):
    """Two residual branches, each scaled by a zero-initialised gain so a new block starts as identity.

    branch 1: norm, 1x1 (x2), depthwise 3x3, SimpleGate, channel attention, 1x1
    branch 2: norm, 1x1 (x2), SimpleGate, 1x1
    """

    def __init__(self, c: int, dw_expand: int = 2, ffn_expand: int = 2):
        super().__init__()
        dw = c * dw_expand
        self.norm1 = LayerNorm2d(c)
        self.conv1 = nn.Conv2d(c, dw, 1)
        self.conv2 = nn.Conv2d(dw, dw, 3, padding=1, groups=dw)
        self.gate = SimpleGate()
        self.channel_attention = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(dw // 2, dw // 2, 1))
        self.conv3 = nn.Conv2d(dw // 2, c, 1)
        self.norm2 = LayerNorm2d(c)
        ffn = c * ffn_expand
        self.conv4 = nn.Conv2d(c, ffn, 1)
        self.conv5 = nn.Conv2d(ffn // 2, c, 1)
        self.beta = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, c, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        h = self.gate(self.conv2(self.conv1(self.norm1(x))))
        h = self.conv3(h * self.channel_attention(h))
        y = x + h * self.beta
        h = self.conv5(self.gate(self.conv4(self.norm2(y))))
        return y + h * self.gamma


class NAFNet(nn.Module):
    """Image (N, C_in, H, W) in [0, 1] -> restored (N, C_out, H, W); any H and W (padded to 2^levels).

    intro conv -> encoder levels (blocks, 2x2 stride-2 conv doubling width) -> middle blocks ->
    decoder levels (1x1 conv + pixel shuffle halving width, skip added, blocks) -> conv + input.
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 3, width: int = 32,
                 enc_blocks: tuple[int, ...] = (1, 1, 1, 28), middle_blocks: int = 1,
                 dec_blocks: tuple[int, ...] = (1, 1, 1, 1), head_init: str = "default"):
        super().__init__()
        if len(enc_blocks) != len(dec_blocks):
            raise ValueError("enc_blocks and dec_blocks must have one entry per level")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.intro = nn.Conv2d(in_channels, width, 3, padding=1)
        self.encoders, self.downs, self.ups, self.decoders = nn.ModuleList(), nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        c = width
        for n in enc_blocks:
            self.encoders.append(nn.Sequential(*[NAFBlock(c) for _ in range(n)]))
            self.downs.append(nn.Conv2d(c, 2 * c, 2, stride=2))
            c *= 2
        self.middle = nn.Sequential(*[NAFBlock(c) for _ in range(middle_blocks)])
        for n in dec_blocks:
            self.ups.append(nn.Sequential(nn.Conv2d(c, 2 * c, 1, bias=False), nn.PixelShuffle(2)))
            c //= 2
            self.decoders.append(nn.Sequential(*[NAFBlock(c) for _ in range(n)]))
        self.ending = nn.Conv2d(width, out_channels, 3, padding=1)
        init_head(self.ending, head_init)  # "identity": starts as Serpent does (issue 19)
        self.size_multiple = 2 ** len(enc_blocks)

    def forward(self, x: Tensor) -> Tensor:
        check_image(x, self.in_channels)
        H, W = x.shape[-2:]
        padded = pad_to_multiple(x, self.size_multiple)
        h = self.intro(padded)
        skips = []
        for encoder, down in zip(self.encoders, self.downs):
            h = encoder(h)
            skips.append(h)
            h = down(h)
        h = self.middle(h)
        for up, decoder, skip in zip(self.ups, self.decoders, reversed(skips)):
            h = decoder(up(h) + skip)
        out = self.ending(h) + image_residual(padded, self.out_channels)
        return out[..., :H, :W]
