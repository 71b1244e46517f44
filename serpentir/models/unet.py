"""A plain convolutional U-Net (Ronneberger et al., 2015), sized like serpent-b.

The control experiment: same multi-scale shape and parameter budget as Serpent, no state-space
scan and no attention, so any gap in quality or cost is the scan's doing.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..layers import pad_to_multiple
from .image_boundary import check_image, image_residual, init_head


def double_conv(c_in: int, c_out: int) -> nn.Sequential:
    """(3x3 conv, ReLU) twice: the U-Net's unit of work at one scale."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1), nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    """Image (N, C_in, H, W) in [0, 1] -> restored (N, C_out, H, W); any H and W.

    Widths width * 2^i over `levels` scales; 2x2 max-pool down, 2x2 transposed conv up, skips
    concatenated; a 1x1 head predicts a correction added to the input.
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 3, width: int = 36, levels: int = 4,
                 head_init: str = "default"):
        super().__init__()
        if levels < 2:
            raise ValueError("a U-Net needs at least two levels")
        self.in_channels, self.out_channels = in_channels, out_channels
        widths = [width * 2 ** i for i in range(levels)]
        self.encoders = nn.ModuleList([double_conv(in_channels, widths[0])])
        self.encoders.extend(double_conv(widths[i - 1], widths[i]) for i in range(1, levels))
        self.pool = nn.MaxPool2d(2)
        self.ups = nn.ModuleList([nn.ConvTranspose2d(widths[i], widths[i - 1], 2, stride=2)
                                  for i in range(levels - 1, 0, -1)])
        self.decoders = nn.ModuleList([double_conv(2 * widths[i - 1], widths[i - 1])
                                       for i in range(levels - 1, 0, -1)])
        self.head = nn.Conv2d(widths[0], out_channels, 1)
        init_head(self.head, head_init)  # "identity": starts as Serpent does (issue 19)
        self.size_multiple = 2 ** (levels - 1)

    def forward(self, x: Tensor) -> Tensor:
        check_image(x, self.in_channels)
        H, W = x.shape[-2:]
        padded = pad_to_multiple(x, self.size_multiple)
        h = padded
        skips = []
        for i, encoder in enumerate(self.encoders):
            h = encoder(h if i == 0 else self.pool(h))
            skips.append(h)
        skips.pop()  # the deepest level feeds the decoder directly
        for up, decoder, skip in zip(self.ups, self.decoders, reversed(skips)):
            h = decoder(torch.cat([up(h), skip], dim=1))
        out = self.head(h) + image_residual(padded, self.out_channels)
        return out[..., :H, :W]
