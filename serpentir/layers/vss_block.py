"""The visual state-space (VSS) block: Serpent's replacement for an attention or convolution block."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import pieces
from ..ops import scan_walks
from .conv_mixer import MIXERS, ConvMixer
from .multi_direction_ssm import MultiDirectionSSM


class VSSBlock(nn.Module):
    """x + out_proj(norm(SSM_2D(silu(dwconv(branch)))) * silu(gate)), on (B, H, W, C) maps.

    layer norm -> input projection into a branch and a gate -> depthwise 3x3 convolution (local
    mixing) -> multi-direction selective scan (global mixing) -> norm -> gate -> output projection
    -> residual with a learned per-channel scale.

    Under inference a large map goes through the block in bands of rows: everything but the scan
    is per token (the 3x3 convolution needs one row of halo), so only the scan's input and output
    exist at full size, never the 2 * d_inner input projection or the gate. Same result, a third of
    the memory.
    """

    def __init__(self, dim: int, d_state: int = 16, expand: float = 2.0, directions: int = 4,
                 order: str = "diagonal", d_conv: int = 3, scan_backend: str = "auto", mixer: str = "scan"):
        super().__init__()
        if mixer not in MIXERS:
            raise ValueError(f"unknown mixer {mixer!r}; choose from {', '.join(MIXERS)}")
        d_inner = int(expand * dim)
        self.norm = nn.LayerNorm(dim)
        self.in_proj = nn.Linear(dim, 2 * d_inner, bias=False)
        self.dwconv = nn.Conv2d(d_inner, d_inner, d_conv, padding=d_conv // 2, groups=d_inner)
        # the "mixer swap" control (layers/conv_mixer.py) sits in the scan's slot, whose name old checkpoints use
        self.ssm = (MultiDirectionSSM(d_inner, d_state, directions, order, scan_backend=scan_backend) if mixer == "scan"
                    else ConvMixer.matching_ssm(d_inner, d_state, len(scan_walks(directions, order))))
        self.out_norm = nn.LayerNorm(d_inner)
        self.out_proj = nn.Linear(d_inner, dim, bias=False)
        self.skip_scale = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        if not torch.is_grad_enabled() and not x.is_meta and pieces.use_pieces(*x.shape[:3]):
            return self._forward_in_bands(x)
        # the input projection as two matmuls: each half comes out contiguous, so the convolution
        # reads the branch in place (channels-last) instead of a copy of a strided half
        normed, d_inner = self.norm(x), self.ssm.d_inner
        branch = F.linear(normed, self.in_proj.weight[:d_inner])
        gate = F.linear(normed, self.in_proj.weight[d_inner:])
        y = self.out_norm(self.ssm(self._local_mixing(branch))) * F.silu(gate)
        return torch.addcmul(self.out_proj(y), x, self.skip_scale)

    def _local_mixing(self, branch: Tensor) -> Tensor:
        """silu(depthwise conv) of a (B, H, W, d_inner) branch, returned token-major and contiguous.

        The convolution runs in channels-last memory order, so its output already is (B, H, W, C) in
        memory: the scan's projections and the fused kernel read it without a transposed copy.
        """
        nchw = branch.permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
        return F.silu(self.dwconv(nchw)).permute(0, 2, 3, 1).contiguous()

    def _forward_in_bands(self, x: Tensor) -> Tensor:
        """forward() in bands of rows (inference only): the same values in bounded extra memory."""
        B, H, W, _ = x.shape
        d_inner = self.ssm.d_inner
        halo = self.dwconv.padding[0]
        w_branch, w_gate = self.in_proj.weight[:d_inner], self.in_proj.weight[d_inner:]
        branch = x.new_empty(B, H, W, d_inner)
        for start, end in pieces.bands(H, B * W):
            lo, hi = max(start - halo, 0), min(end + halo, H)  # the convolution sees its true neighbours
            mixed = self._local_mixing(F.linear(self.norm(x[:, lo:hi]), w_branch))
            branch[:, start:end] = mixed[:, start - lo:end - lo]
        y = self.ssm(branch)
        del branch
        out = torch.empty_like(x)
        for start, end in pieces.bands(H, B * W):
            gate = F.silu(F.linear(self.norm(x[:, start:end]), w_gate))
            out[:, start:end] = torch.addcmul(self.out_proj(self.out_norm(y[:, start:end]) * gate),
                                              x[:, start:end], self.skip_scale)
        return out
