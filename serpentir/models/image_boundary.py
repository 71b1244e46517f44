"""What every restorer does at its edges: check the input shape, and add the input back to the output."""

from __future__ import annotations

from torch import Tensor, nn

HEAD_INITS = ("default", "identity")


def image_residual(x: Tensor, out_channels: int) -> Tensor:
    """First out_channels input channels (an extra mask channel is dropped); grey broadcast to RGB."""
    if x.shape[1] >= out_channels:
        return x[:, :out_channels]
    return x[:, :1].expand(-1, out_channels, -1, -1)


def check_image(x: Tensor, in_channels: int) -> None:
    """Fail early, with the expected shape, on the mistake every caller makes once."""
    if x.dim() != 4 or x.shape[1] != in_channels:
        raise ValueError(f"expected (N, {in_channels}, H, W) input, got {tuple(x.shape)}")


def init_head(layer: nn.Module, head_init: str) -> None:
    """Initialise a restorer's last layer; the same start for every architecture (issue 19's protocol).

    "identity": weights ~ N(0, 1e-3), bias 0, as Serpent's PixelHead: with the global residual an
    untrained model returns (almost) its input and training refines from there. Not zero, so
    gradients reach every layer at step 0. "default": PyTorch's own init, as published (and as every
    checkpoint trained before the option was made).
    """
    if head_init not in HEAD_INITS:
        raise ValueError(f"head_init must be one of {', '.join(HEAD_INITS)}, got {head_init!r}")
    if head_init == "identity":
        nn.init.normal_(layer.weight, std=1e-3)
        if layer.bias is not None:
            nn.init.zeros_(layer.bias)
