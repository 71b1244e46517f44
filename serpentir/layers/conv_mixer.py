"""The "mixer swap" of issue 19's first study: the VSS block with its selective scan replaced by a
depthwise convolution of (almost exactly) the scan's parameter count.

Sizing. The scan of one VSS block (d = d_inner channels, K walks, state N, dt rank R = ceil(d/32))
holds, per walk: x_proj (R + 2N) x d, dt_proj d x R + bias d, A_log d x N, D d, so

    ssm_params = K * d * (2R + 3N + 2)              (a whole multiple of d)

The swap is a depthwise k x k convolution with bias (d * (k^2 + 1) parameters), k the largest odd
size that fits, plus, for the remainder, a bias-free low-rank pointwise layer d -> r -> d in
parallel (2 * d * r parameters; the scan's own x_proj / dt_proj are such a bottleneck). The two
counts differ by at most d parameters (< 1%); for serpent-t/b/l they are equal in every block
(serpent-t, K=4, N=8: d=32 -> 3584 both, k=9, r=15; d=64 -> 7680, k=9, r=19; d=128 -> 17408,
k=11, r=7; bottleneck d=256 -> 43008, k=11, r=23; whole model 371,036 both). tests/test_mixer_swap.py
checks the match against the parameters of a real MultiDirectionSSM.
"""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor, nn

MIXERS = ("scan", "conv")


def ssm_param_count(d_inner: int, d_state: int, walks: int, dt_rank: int | None = None) -> int:
    """Parameters of a MultiDirectionSSM with these sizes (its default dt rank ceil(d_inner / 32))."""
    rank = dt_rank or math.ceil(d_inner / 32)
    return walks * d_inner * (2 * rank + 3 * d_state + 2)


def conv_mixer_sizes(d_inner: int, target_params: int) -> tuple[int, int]:
    """(kernel size k, low-rank width r) whose parameter count d*(k^2 + 1) + 2*d*r is nearest target_params.

    The largest odd k that fits takes the budget first (the spatial reach is what the study tests);
    the pointwise branch only takes up the rest.
    """
    per_channel = target_params // d_inner
    if per_channel < 10:
        raise ValueError(f"a budget of {target_params} parameters is too small for a 3x3 depthwise mixer "
                         f"on {d_inner} channels")
    k = math.isqrt(per_channel - 1)
    k -= 1 - k % 2  # largest odd k with k^2 + 1 <= per_channel
    rank = round((target_params - d_inner * (k * k + 1)) / (2 * d_inner))
    return k, rank


class ConvMixer(nn.Module):
    """(B, H, W, d_inner) -> (B, H, W, d_inner): depthwise k x k conv + low-rank pointwise d -> r -> d.

    Each output sees a k x k window (no global reach): the control for "does the scan help?".
    """

    def __init__(self, d_inner: int, kernel_size: int, rank: int = 0):
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and positive, got {kernel_size}")
        self.d_inner, self.kernel_size, self.rank = d_inner, kernel_size, rank
        self.dwconv = nn.Conv2d(d_inner, d_inner, kernel_size, padding=kernel_size // 2, groups=d_inner)
        self.down = nn.Linear(d_inner, rank, bias=False) if rank > 0 else None
        self.up = nn.Linear(rank, d_inner, bias=False) if rank > 0 else None

    @classmethod
    def matching_ssm(cls, d_inner: int, d_state: int, walks: int) -> "ConvMixer":
        """The mixer whose parameter count matches a K-walk scan of this width and state size."""
        return cls(d_inner, *conv_mixer_sizes(d_inner, ssm_param_count(d_inner, d_state, walks)))

    def forward(self, x: Tensor) -> Tensor:
        # a contiguous (B, H, W, C) tensor permuted to (B, C, H, W) is already channels-last: no copy
        y = self.dwconv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        if self.down is not None:
            y = y + F.linear(F.linear(x, self.down.weight), self.up.weight)
        return y.contiguous()
