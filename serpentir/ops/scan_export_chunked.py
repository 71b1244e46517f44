"""The recurrence of the exportable scan, laid out for onnxruntime: a few large ops per time step.

The sequence (length L, dynamic) is cut into a fixed number M of chunks of T = ceil(L / M) steps
(zero-padded: a padded step has delta = 0, so it keeps the state). M is chosen per layer from its
channel and state counts so that one step of every chunk, an (M, batch, G, N, dg) tensor, stays in
the CPU's L2 cache: onnxruntime runs one op at a time, and ops on cache-resident tensors are several
times faster than on tensors that stream from memory. Three passes; the two over time steps stay
loops in the graph (ONNX Scan nodes), so nothing depends on the sequence length:

1. over the T steps, all chunks at once from a zero state -> the state at each chunk's end;
2. over the M chunks (a Python loop: M is fixed): the true state entering each chunk, carried with
   the chunk's decay exp(A * sum(delta));
3. over the T steps again from the true entry states -> the outputs y = C . h.

Layout: the state is (chunk, batch, group, N, dg), channels last, so that every broadcast in a step
repeats a run of dg contiguous values (onnxruntime's broadcasting is slow for short runs), and the
input term B (x) delta*u and the read-out C . h are batched matmuls. Every exponent is delta * A or
A * sum(delta), <= 0 for delta >= 0 and A < 0: strong decays underflow to an exact 0, never overflow.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

STEP_ELEMENTS = 1 << 16  # state elements of one step of every chunk: 256 KB in float32, inside L2
MAX_CHUNKS = 64


def chunk_count(dim: int, N: int, budget: int = STEP_ELEMENTS) -> int:
    """A power of two M with M * dim * N about `budget` (1 <= M <= MAX_CHUNKS): fixed when exporting."""
    m = 1
    while m < MAX_CHUNKS and 2 * m * dim * N <= budget:
        m *= 2
    return m


def _loop(step: Callable, init: Tensor, xs: tuple[Tensor, ...]) -> tuple[Tensor, Tensor]:
    """(final carry, stacked outputs) of carry, out = step(carry, x) over the first axis of xs.

    Exporting (torch.compiler.is_compiling()), this is torch's `scan` op, which becomes an ONNX Scan
    node; in eager mode a Python loop (the op would compile itself for every new shape).
    """
    if torch.compiler.is_compiling():
        from torch._higher_order_ops.scan import scan

        return scan(step, init, xs)
    outs, carry = [], init
    for x in zip(*(t.unbind(0) for t in xs)):
        carry, out = step(carry, x)
        outs.append(out)
    return carry, torch.stack(outs)


def carry_over(decay: Tensor, end: Tensor) -> tuple[Tensor, Tensor]:
    """(state entering each chunk, state after the last) from each chunk's decay and end state from zero.

    A Python loop over the M chunks (M is fixed when exporting): a few small ops per chunk trace
    much faster than another scan op, and run as fast.
    """
    h = torch.zeros_like(end[0])
    entries = []
    for decay_m, end_m in zip(decay.unbind(0), end.unbind(0)):
        entries.append(h)
        h = decay_m * h + end_m
    return torch.stack(entries), h


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
    Ct = steps(C).unsqueeze(-2)  # (T, M, b, G, 1, N)
    A3 = A.reshape(G, dg, N).transpose(1, 2).contiguous()  # (G, N, dg)

    def advance(h: Tensor, x: tuple[Tensor, ...]) -> tuple[Tensor, Tensor]:
        d_t, du_t, B_t = x
        h = torch.exp(d_t * A3) * h + torch.matmul(B_t, du_t)
        return h, d_t[..., 0, 0] * 0  # a placeholder output: scan needs one

    def advance_and_read(h: Tensor, x: tuple[Tensor, ...]) -> tuple[Tensor, Tensor]:
        d_t, du_t, B_t, C_t = x
        h = torch.exp(d_t * A3) * h + torch.matmul(B_t, du_t)
        return h, torch.matmul(C_t, h)

    zero = torch.zeros(M, b, G, N, dg, dtype=u.dtype, device=u.device)
    end, _ = _loop(advance, zero, (d, du, Bt))  # pass 1: (M, b, G, N, dg)
    decay = torch.exp(d.sum(0) * A3)
    entry, last = carry_over(decay, end)  # pass 2
    _, y = _loop(advance_and_read, entry, (d, du, Bt, Ct))  # pass 3: (T, M, b, G, 1, dg)
    y = y.squeeze(-2).permute(2, 3, 4, 1, 0).reshape(b, dim, M * T)[..., :L]
    return y, last.transpose(-1, -2).reshape(b, dim, N)
