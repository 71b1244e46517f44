"""The 2-D selective SSM: unroll in K directions, one Mamba (S6) scan per direction, merge.

Each direction has its own projections and SSM parameters. All K scans run in one
selective_scan call: the directions are stacked along the channel axis (K * d_inner channels) and
B, C are passed as K groups, so one kernel launch (or one Python loop) serves all of them.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..ops import selective_scan
from .scan_orders import direction_names, merge, unroll


class MultiDirectionSSM(nn.Module):
    """(B, H, W, d_inner) -> (B, H, W, d_inner), every output token sees the whole map."""

    def __init__(self, d_inner: int, d_state: int = 16, directions: int = 4, order: str = "diagonal",
                 dt_rank: int | None = None, dt_min: float = 1e-3, dt_max: float = 0.1, scan_backend: str = "auto"):
        super().__init__()
        self.d_inner, self.d_state, self.order = d_inner, d_state, order
        self.directions = len(direction_names(directions, order))
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

    def forward(self, x: Tensor) -> Tensor:
        Bsz, H, W, d = x.shape
        K, N, R, L = self.directions, self.d_state, self.dt_rank, H * W
        # Every tensor below is a view of one of three buffers: the unrolled tokens (token-major,
        # (B, L, K, d) in memory), the x projection and the dt projection; no transposed copies.
        seqs = unroll(x, K, self.order)  # (B, K, L, d)
        tokens = seqs.permute(1, 0, 2, 3).reshape(K, Bsz * L, d)
        proj = torch.bmm(tokens, self.x_proj_weight.transpose(1, 2))  # (K, B*L, R + 2N)
        dt = torch.bmm(self.dt_proj_weight, proj[..., :R].transpose(1, 2))  # (K, d, B*L)
        u = seqs.permute(0, 1, 3, 2).reshape(Bsz, K * d, L)
        delta = dt.view(K * d, Bsz, L).transpose(0, 1)
        bc = proj.view(K, Bsz, L, R + 2 * N).permute(1, 0, 3, 2)  # (B, K, R + 2N, L)
        y = selective_scan(
            u, delta, -torch.exp(self.A_log.float()), bc[:, :, R:R + N], bc[:, :, R + N:],
            D=self.D.float(), delta_bias=self.dt_proj_bias.reshape(-1).float(), delta_softplus=True,
            backend=self.scan_backend,
        )
        return merge(y.view(Bsz, K, d, L).transpose(2, 3), H, W, self.order)
