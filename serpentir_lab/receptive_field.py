"""What a restorer looks at: how far the change of one input pixel travels through the output.

Issue 19's study 4 asks whether Serpent's scan, which sees the whole image at a linear cost, makes a
trained model use far-away pixels where a convolutional one cannot. The measure here is the forward
one the issue names: perturb one input pixel p by eps (all channels), run the whole map, and record
|output change| / eps at every output pixel q, a column of the model's Jacobian. Its radial profile
(mean over the ring at distance d = |q - p|, rounded) and the radii holding 50/90/99% of the total
response say how far the model's answer depends on a pixel. The model runs in float64, so a finite
difference of eps = 1e-4 is exact to about 1e-11 and a far-field response of 1e-9 is still measured.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import Tensor, nn

SHARES = (0.5, 0.9, 0.99)


@dataclass
class ResponseProfile:
    """Mean |output change| / eps at each integer distance from the perturbed pixel, and what it adds up to."""

    distances: list[int]
    mean_response: list[float]
    radius_at_share: dict[float, int]  # share of the summed response -> the smallest radius holding it
    total: float
    far_share: float  # share of the response beyond `far` pixels
    far: int


def response_map(model: nn.Module, image: Tensor, pixel: tuple[int, int], eps: float = 1e-4,
                 channels: int | None = None) -> Tensor:
    """(H, W): sum over channels of |model(image + eps e_p) - model(image)| / eps, in float64.

    image: (C, H, W) in [0, 1]; the model is copied to float64 (the caller's is left as it is). Only the
    first `channels` input channels are bumped (all when None): a photo's colours, not a task's extra
    inputs such as an inpainting mask, whose bump would ask another question."""
    row, col = pixel
    if not (0 <= row < image.shape[-2] and 0 <= col < image.shape[-1]):
        raise ValueError(f"pixel {pixel} is outside the {tuple(image.shape[-2:])} image")
    probe = copy.deepcopy(model).double().eval()
    x = image.detach().double()[None]
    bumped = x.clone()
    bumped[0, :channels, row, col] += eps
    with torch.no_grad():
        change = probe(bumped) - probe(x)
    return change[0].abs().sum(0) / eps


def radial_profile(response: Tensor, pixel: tuple[int, int], far: int = 64) -> ResponseProfile:
    """The ring means of a response map around `pixel` and the radii holding SHARES of its sum."""
    H, W = response.shape
    rows = torch.arange(H, dtype=torch.float64)[:, None] - pixel[0]
    cols = torch.arange(W, dtype=torch.float64)[None, :] - pixel[1]
    ring = (rows ** 2 + cols ** 2).sqrt().round().long().flatten()
    values = response.flatten().double()
    sums = torch.zeros(int(ring.max()) + 1, dtype=torch.float64).index_add_(0, ring, values)
    counts = torch.zeros_like(sums).index_add_(0, ring, torch.ones_like(values))
    total = float(sums.sum())
    cumulative = sums.cumsum(0) / total if total > 0 else torch.ones_like(sums)
    radius = {s: int(torch.searchsorted(cumulative, torch.tensor(s, dtype=torch.float64) - 1e-12)) for s in SHARES}
    present = counts > 0
    far_share = float(sums[far + 1:].sum()) / total if total > 0 else 0.0
    return ResponseProfile(distances=torch.nonzero(present).flatten().tolist(),
                           mean_response=(sums[present] / counts[present]).tolist(),
                           radius_at_share=radius, total=total, far_share=far_share, far=far)
