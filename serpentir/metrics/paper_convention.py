"""The conventions restoration papers score under: the Y (luma) channel and a cropped border.

Super-resolution and deblurring papers usually report PSNR/SSIM on the BT.601 luma channel with a
few border pixels removed (where padding artefacts live); offering both here lets our numbers be
compared with theirs.
"""

from __future__ import annotations

from torch import Tensor


def rgb_to_y(img: Tensor) -> Tensor:
    """ITU-R BT.601 luma of (N, 3, H, W) RGB in [0, 1], on the [16/255, 235/255] "studio" scale papers use."""
    r, g, b = img.unbind(dim=-3)
    return (16.0 + 65.481 * r + 128.553 * g + 24.966 * b).unsqueeze(-3) / 255.0


def prepare_pair(x: Tensor, y: Tensor, crop_border: int, y_channel: bool) -> tuple[Tensor, Tensor]:
    """Check shapes, make (N, C, H, W), optionally convert to Y and crop the border."""
    if x.shape != y.shape:
        raise ValueError(f"images to compare must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    if x.dim() == 3:
        x, y = x.unsqueeze(0), y.unsqueeze(0)
    if x.dim() != 4:
        raise ValueError(f"expected (N, C, H, W) or (C, H, W) images, got shape {tuple(x.shape)}")
    if y_channel and x.shape[1] == 3:
        x, y = rgb_to_y(x), rgb_to_y(y)
    elif y_channel and x.shape[1] != 1:
        raise ValueError(f"y_channel needs RGB (3 channels) or greyscale (1) images, not {x.shape[1]} channels")
    if crop_border < 0:
        raise ValueError(f"crop_border must be >= 0, not {crop_border}")
    if crop_border:
        c = crop_border
        if 2 * c >= min(x.shape[-2:]):
            raise ValueError(f"crop_border={c} leaves nothing of a {x.shape[-2]}x{x.shape[-1]} image")
        x, y = x[..., c:-c, c:-c], y[..., c:-c, c:-c]
    return x, y
