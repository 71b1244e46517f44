"""The 2-D multi-direction scan for ONNX export: the map cut into bands of rows, scanned as chunks.

serpentir.ops.scan_2d's general path forms one 1-D sequence per direction and runs a 1-D backend;
exported, that path spends most of onnxruntime's time transposing (L, channels) tensors into the scan's
layout and back. Here a walk's chunks are bands of whole lines of the map (rows; columns for a
transposed walk), so going from the raster map to the scan's time-major layout
(step within the band, band, batch, ...) moves whole lines of channels at a time (a block copy), and
the walks that differ only by flips share one set of loops: direction k is flipped on the way in and
flipped back on the way out. Padded lines have delta = 0: they keep the state and add nothing.

Each step of every chunk is an (M, batch, N, K, d) tensor that fits in L2 (see scan_export_chunked);
the three passes are those of scan_export_chunked: chunk end states from zero (a Scan), the carry
across the chunks, and the rerun from the true entry states that reads out y = C . h (a Scan); the
two loops are scan_export_loops' ops.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from .scan_core import as_dtype
from .scan_export_chunked import chunk_count
from .scan_export_loops import carry_over, end_state, read_out
from .scan_walks import Walk


def softplus(x: Tensor) -> Tensor:
    """softplus from Relu, Exp and Log: onnxruntime's Softplus op is ~10x slower than these three."""
    return torch.relu(x) + torch.log(1 + torch.exp(-x.abs()))


def _flip(x: Tensor, walk: Walk) -> Tensor:
    """Flip a (b, lines, steps, c) map the way `walk` visits it (an involution: also undoes it)."""
    dims = [d for d, on in ((1, walk.outer_reversed), (2, walk.flip_rows if walk.transpose else walk.flip_cols))
            if on]
    return x.flip(dims) if dims else x


def _band_scan(x: Tensor, dg: int, A: Tensor, M: int) -> Tensor:
    """One group of walks on a map (b, lines, steps, K, d + d + N + N) holding delta, delta * u, B and C,
    already flipped: -> y (b, lines, steps, K, d). One tensor through the layout changes instead of four:
    a quarter of the nodes for the exporter to trace.

    The lines are padded to a multiple of M; chunk m is lines m*R .. m*R + R - 1.
    """
    b, lines, steps, K, c = x.shape
    N = (c - 2 * dg) // 2
    # R = ceil(lines / M) and the padding R * M - lines: the tracer then sees sizes that match by
    # construction (padding by (-lines) % M costs the exporter minutes of symbolic simplification)
    R = (lines + M - 1) // M
    x = F.pad(x, (0, 0, 0, 0, 0, 0, 0, R * M - lines))  # -> (R * steps, M, b, K, c): time-major, chunk next
    x = x.reshape(b, M, R, steps, K, c).permute(2, 3, 1, 0, 4, 5).reshape(R * steps, M, b, K, c)
    d_t, du_t = x[..., :dg].unsqueeze(3), x[..., dg:2 * dg].unsqueeze(3)  # (T, M, b, 1, K, d)
    B_t = x[..., 2 * dg:2 * dg + N].transpose(-1, -2).unsqueeze(-1)  # (T, M, b, N, K, 1)
    C_t = x[..., 2 * dg + N:].transpose(-1, -2).unsqueeze(-1)
    A3 = A.reshape(K, dg, N).permute(2, 0, 1).contiguous()  # (N, K, d)

    zero = torch.zeros(M, b, N, K, dg, dtype=x.dtype, device=x.device)
    end = end_state(zero, d_t, du_t, B_t, A3)  # (M, b, N, K, d)
    decay = torch.exp(d_t.sum(0) * A3)
    entry, _ = carry_over(decay, end)
    y = read_out(entry, d_t, du_t, B_t, C_t, A3, 2)  # (T, M, b, K, d)
    y = y.reshape(R, steps, M, b, K, dg).permute(3, 2, 0, 1, 4, 5).reshape(b, M * R, steps, K, dg)
    return y[:, :lines]


def scan_2d_export(u: Tensor, dt: Tensor, dt_weight: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor | None,
                   delta_bias: Tensor | None, walks: Sequence[Walk], delta_softplus: bool,
                   chunks: int | None = None) -> Tensor:
    """selective_scan_2d's result (shapes in serpentir.ops.scan_2d) in ops that export and run fast in ONNX."""
    b, H, W, dg = u.shape
    K, R = dt.shape[-2:]
    N = A.shape[1]
    ct = torch.float64 if u.dtype == torch.float64 else torch.float32
    u, dt, dt_weight, A, B, C = (as_dtype(t, ct) for t in (u, dt, dt_weight, A, B, C))
    # Mamba's dt projection as one plain matmul (b*H*W, K*R) @ (K*R, K*d) with a block-diagonal weight:
    # onnxruntime runs a batched matmul of one-row matrices as many tiny products
    per_direction = dt_weight.reshape(K, dg, R).transpose(1, 2)  # (K, R, d)
    blocks = torch.eye(K, dtype=ct, device=u.device)[:, None, :, None] * per_direction[:, :, None]
    delta = torch.matmul(dt.reshape(b, H, W, K * R), blocks.reshape(K * R, K * dg)).reshape(b, H, W, K, dg)
    if delta_bias is not None:
        delta = delta + as_dtype(delta_bias, ct).reshape(K, dg)
    if delta_softplus:
        delta = softplus(delta)
    du = delta * u.unsqueeze(3)
    M = chunks or chunk_count(K * dg, N)
    inputs = torch.cat([delta, du, B, C], -1)  # (b, H, W, K, d + d + N + N)
    y = None
    for transpose in (False, True):
        ks = [k for k, w in enumerate(walks) if w.transpose == transpose]
        if not ks:
            continue

        def lines(x: Tensor) -> Tensor:  # (b, H, W, K, c) -> the group's directions, each flipped its way
            x = x.transpose(1, 2) if transpose else x
            return torch.stack([_flip(x[..., k, :], walks[k]) for k in ks], 3)

        rows = [(k * dg, (k + 1) * dg) for k in ks]
        A_g = torch.cat([A[s:e] for s, e in rows]) if len(ks) < K else A
        y_g = _band_scan(lines(inputs), dg, A_g, M)
        for i, k in enumerate(ks):
            y_k = _flip(y_g[..., i, :], walks[k])
            y_k = y_k.transpose(1, 2) if transpose else y_k
            y = y_k if y is None else y + y_k
    if D is not None:  # sum_k D_k * u, folded into one product
        y = y + u * as_dtype(D, ct).reshape(K, dg).sum(0)
    return y
