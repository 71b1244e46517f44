"""The 2-D selective SSM: K Mamba (S6) scans, each walking the map in its own direction, summed.

Each direction has its own projections and SSM parameters, but the per-token work does not depend
on the order a direction visits the tokens in: the x / dt projections of all K directions are computed
once, in raster order, as one matmul, and the 2-D scan op (serpentir.ops.selective_scan_2d) walks every
direction over the raster-ordered map itself. With the compiled CPU kernel no token is ever copied
into another order; other backends form the sequences by flips and transposes.

Under inference (no autograd) a large map is scanned in bounded pieces: bands of lines along each
walk's outer axis, visited in the walk's own order, carrying the scan state from band to band. This
is exact, not tiling: only one band's projections exist at a time.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..ops import resolve_backend_2d, scan_walks, selective_scan_2d
from ..ops.scan_core import as_dtype, compute_dtype
from . import pieces


class MultiDirectionSSM(nn.Module):
    """(B, H, W, d_inner) -> (B, H, W, d_inner), every output token sees the whole map."""

    def __init__(self, d_inner: int, d_state: int = 16, directions: int = 4, order: str = "diagonal",
                 dt_rank: int | None = None, dt_min: float = 1e-3, dt_max: float = 0.1, scan_backend: str = "auto"):
        super().__init__()
        self.d_inner, self.d_state, self.order = d_inner, d_state, order
        self.walks = scan_walks(directions, order)
        self.directions = len(self.walks)
        self.dt_rank = dt_rank or math.ceil(d_inner / 32)
        self.scan_backend = scan_backend
        K, d, R, N = self.directions, d_inner, self.dt_rank, d_state
        self.x_proj_weight = nn.Parameter(torch.empty(K, R + 2 * N, d))
        self.dt_proj_weight = nn.Parameter(torch.empty(K, d, R))
        self.dt_proj_bias = nn.Parameter(torch.empty(K, d))
        self.A_log = nn.Parameter(torch.empty(K * d, N))
        self.D = nn.Parameter(torch.empty(K * d))
        self._init_parameters(dt_min, dt_max)

    def _init_parameters(self, dt_min: float, dt_max: float) -> None:
        """Mamba's initialisation: S4D-real A = -(1..N), step sizes log-uniform in [dt_min, dt_max]."""
        K, d, R, N = self.directions, self.d_inner, self.dt_rank, self.d_state
        nn.init.uniform_(self.x_proj_weight, -d ** -0.5, d ** -0.5)
        nn.init.uniform_(self.dt_proj_weight, -R ** -0.5, R ** -0.5)
        with torch.no_grad():
            dt = torch.exp(torch.rand(K, d) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
            dt = dt.clamp(min=1e-4)
            self.dt_proj_bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # inverse of softplus
            self.A_log.copy_(torch.log(torch.arange(1, N + 1, dtype=torch.float32)).repeat(K * d, 1))
            self.D.fill_(1.0)

    def _projections(self, x: Tensor, ks: list[int]) -> tuple[Tensor, Tensor, Tensor]:
        """Low-rank step-size features (B, H, W, K', R) and B, C (B, H, W, K', N) of directions ks, in raster order."""
        Bsz, H, W, d = x.shape
        R, N, K = self.dt_rank, self.d_state, len(ks)
        xw = (self.x_proj_weight if K == self.directions else self.x_proj_weight[ks]).reshape(K * (R + 2 * N), d)
        # BLAS is up to 1.7x slower for an output width that is not a multiple of 8 (68 for serpent-t):
        # pad the weight with zero rows and read the result through a view
        width = -(-xw.shape[0] // 8) * 8
        proj = torch.matmul(x.reshape(Bsz * H * W, d), F.pad(xw, (0, 0, 0, width - xw.shape[0])).t())
        proj = proj[:, :xw.shape[0]].view(Bsz, H, W, K, R + 2 * N)
        return proj[..., :R], proj[..., R:R + N], proj[..., R + N:]

    def _parameters_of(self, ks: list[int], x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """dt weight (K'*d, R), A, D and the dt bias of directions ks, rows stacked in the order of ks.

        The scan computes in float32 (float64 for float64 maps), whatever the parameters are stored in.
        """
        d = self.d_inner
        ct = compute_dtype(x)
        dt_weight = self.dt_proj_weight.reshape(-1, self.dt_rank)
        A = -torch.exp(as_dtype(self.A_log, ct))
        D, bias = as_dtype(self.D, ct), as_dtype(self.dt_proj_bias.reshape(-1), ct)
        if len(ks) == self.directions:
            return dt_weight, A, D, bias
        rows = torch.cat([torch.arange(k * d, (k + 1) * d) for k in ks]).to(A.device)
        return dt_weight[rows], A[rows], D[rows], bias[rows]

    def forward(self, x: Tensor) -> Tensor:
        Bsz, H, W, d = x.shape
        ks = list(range(self.directions))
        if (not torch.is_grad_enabled() and not x.is_meta and pieces.use_pieces(Bsz, H, W)
                and resolve_backend_2d(self.scan_backend, x) == "cpu"):
            return self._forward_in_pieces(x)
        dt, Bp, Cp = self._projections(x, ks)
        dt_weight, A, D, bias = self._parameters_of(ks, x)
        return selective_scan_2d(x, dt, dt_weight, A, Bp, Cp, D, bias, walks=self.walks, delta_softplus=True,
                                 backend=self.scan_backend)

    def _forward_in_pieces(self, x: Tensor) -> Tensor:
        """The same result as forward(), scanning bands of lines and carrying each walk's state across them."""
        Bsz, H, W, d = x.shape
        groups: dict[tuple[int, bool], list[int]] = {}
        for k, walk in enumerate(self.walks):  # walks that cross the bands in the same order share a pass
            groups.setdefault((walk.outer_axis, walk.outer_reversed), []).append(k)
        ct = compute_dtype(x)
        y = torch.zeros(Bsz, H, W, d, dtype=ct, device=x.device)
        for (axis, backwards), ks in groups.items():
            dt_weight, A, D, bias = self._parameters_of(ks, x)
            walks = [self.walks[k] for k in ks]
            state = torch.zeros(Bsz, len(ks) * d, self.d_state, dtype=ct, device=x.device)
            for start, end in pieces.bands(x.shape[axis], Bsz * x.shape[3 - axis], reverse=backwards):
                n = end - start
                piece = x.narrow(axis, start, n)
                dt, Bp, Cp = self._projections(piece, ks)
                yp, state = selective_scan_2d(piece, dt, dt_weight, A, Bp, Cp, D, bias, walks=walks,
                                              delta_softplus=True, h0=state, return_last_state=True, backend="cpu")
                y.narrow(axis, start, n).add_(yp)
        return y.to(x.dtype)
