"""The recurrence of the exportable scan, laid out for onnxruntime: a few large ops per time step.

The sequence (length L, dynamic) is cut into a fixed number M of chunks of T = ceil(L / M) steps
(zero-padded: a padded step has delta = 0, so it keeps the state). M is chosen per layer from its
channel and state counts so that one step of every chunk, an (M, batch, G, N, dg) tensor, stays in
the CPU's L2 cache: onnxruntime runs one op at a time, and ops on cache-resident tensors are several
times faster than on tensors that stream from memory. Three passes; the two over time steps stay
loops in the graph (ONNX Scan nodes), so nothing depends on the sequence length:

1. over the T steps, all chunks at once from a zero state -> the state at each chunk's end;
2. over the M chunks: the true state entering each chunk, carried with the chunk's decay
   exp(A * sum(delta));
3. over the T steps again from the true entry states -> the outputs y = C . h.

Layout: the state is (chunk, batch, group, N, dg), channels last, so that every broadcast in a step
repeats a run of dg contiguous values (onnxruntime's broadcasting is slow for short runs). The three
passes are scan_export_loops' ops: exported, each is one Scan node written directly. Every exponent
is delta * A or A * sum(delta), <= 0 for delta >= 0 and A < 0: strong decays underflow to an exact 0,
never overflow.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .scan_export_loops import carry_over, end_state, read_out

STEP_ELEMENTS = 1 << 16  # state elements of one step of every chunk: 256 KB in float32, inside L2
MAX_CHUNKS = 64


def chunk_count(dim: int, N: int, budget: int = STEP_ELEMENTS) -> int:
    """A power of two M with M * dim * N about `budget` (1 <= M <= MAX_CHUNKS): fixed when exporting."""
    m = 1
    while m < MAX_CHUNKS and 2 * m * dim * N <= budget:
        m *= 2
    return m


def chunked_export_core(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor,
                        chunks: int | None = None) -> tuple[Tensor, Tensor]:
    """u, delta (b, dim, L); A (dim, N); B, C (b, G, N, L) -> y (b, dim, L), last state (b, dim, N)."""
    b, dim, L = u.shape
    G, N = B.shape[1], B.shape[2]
    dg = dim // G
    M = chunks or chunk_count(dim, N)
    T = (L + M - 1) // M  # padding to T * M (not by (-L) % M): sizes the tracer can match at once
    u, delta, B, C = (torch.nn.functional.pad(x, (0, T * M - L)) for x in (u, delta, B, C))

    def steps(x: Tensor) -> Tensor:  # (b, G, c, M*T) -> (T, M, b, G, c): time-major, chunk next
        return x.reshape(b, G, x.shape[2], M, T).permute(4, 3, 0, 1, 2)

    d = steps(delta.reshape(b, G, dg, -1)).unsqueeze(-2)  # (T, M, b, G, 1, dg)
    du = steps((delta * u).reshape(b, G, dg, -1)).unsqueeze(-2)  # (T, M, b, G, 1, dg)
    Bt = steps(B).unsqueeze(-1)  # (T, M, b, G, N, 1)
    Ct = steps(C).unsqueeze(-1)
    A3 = A.reshape(G, dg, N).transpose(1, 2).contiguous()  # (G, N, dg)

    zero = torch.zeros(M, b, G, N, dg, dtype=u.dtype, device=u.device)
    end = end_state(zero, d, du, Bt, A3)  # pass 1: (M, b, G, N, dg)
    decay = torch.exp(d.sum(0) * A3)
    entry, last = carry_over(decay, end)  # pass 2
    y = read_out(entry, d, du, Bt, Ct, A3, 3)  # pass 3: (T, M, b, G, dg)
    y = y.permute(2, 3, 4, 1, 0).reshape(b, dim, M * T)[..., :L]
    return y, last.transpose(-1, -2).reshape(b, dim, N)
