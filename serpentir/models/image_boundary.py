"""What every restorer does at its edges: check the input shape, and add the input back to the output."""

from __future__ import annotations

from torch import Tensor


def image_residual(x: Tensor, out_channels: int) -> Tensor:
    """First out_channels input channels (an extra mask channel is dropped); grey broadcast to RGB."""
    if x.shape[1] >= out_channels:
        return x[:, :out_channels]
    return x[:, :1].expand(-1, out_channels, -1, -1)


def check_image(x: Tensor, in_channels: int) -> None:
    """Fail early, with the expected shape, on the mistake every caller makes once."""
    if x.dim() != 4 or x.shape[1] != in_channels:
        raise ValueError(f"expected (N, {in_channels}, H, W) input, got {tuple(x.shape)}")
