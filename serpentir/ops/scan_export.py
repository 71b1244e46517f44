"""A selective scan that torch.onnx can export with a dynamic sequence length.

The sequence is cut into chunks of a fixed size T (zero-padded; a padded step has delta = 0, so it
keeps the state). Three passes, none with a Python loop over L:

1. every chunk is scanned from a zero state, all chunks at once, in T steps unrolled in the graph;
2. the state entering each chunk is carried across chunks by a scan over the (dynamic) chunk
   count: torch's `scan` higher-order op while exporting, which becomes an ONNX Scan node
   (a plain loop over chunks in eager mode, where that op would compile itself on every new shape);
3. each chunk's outputs are corrected by C . exp(A * cumsum(delta)) . entry_state, T steps unrolled.

Every exponent is delta * A or A * cumsum(delta), <= 0 for delta >= 0 and A < 0: strong decays
underflow to an exact 0 and never overflow. Memory stays O(L * dim * N / T) per step.
"""

from __future__ import annotations

import torch
from torch import Tensor

EXPORT_CHUNK = 16  # steps unrolled in the graph per pass; L / EXPORT_CHUNK iterations of the ONNX Scan


def _carry(carry: Tensor, xs: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
    """One chunk boundary: emit the state entering the chunk, then advance it past the chunk."""
    decay, end = xs
    return decay * carry + end, carry.clone()


def _entry_states(decay: Tensor, end: Tensor) -> tuple[Tensor, Tensor]:
    """(chunks, ...) chunk decays and zero-start end states -> (last state, (chunks, ...) entry states)."""
    init = torch.zeros_like(end[0])
    if torch.compiler.is_compiling():
        from torch._higher_order_ops.scan import scan

        return scan(_carry, init, (decay, end))
    entries, carry = [], init
    for c in range(decay.shape[0]):
        carry, entry = _carry(carry, (decay[c], end[c]))
        entries.append(entry)
    return carry, torch.stack(entries)


def export_scan_core(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor,
                     chunk_size: int = EXPORT_CHUNK) -> tuple[Tensor, Tensor]:
    """Core recurrence: u, delta (b, dim, L); A (dim, N); B, C (b, G, N, L) -> y (b, dim, L), last (b, dim, N)."""
    b, dim, L = u.shape
    G, N = B.shape[1], B.shape[2]
    dg, T = dim // G, chunk_size
    pad = (-L) % T
    u, delta, B, C = (torch.nn.functional.pad(x, (0, pad)) for x in (u, delta, B, C))
    M = (L + pad) // T

    def steps(x: Tensor) -> Tensor:  # (b, dim, M*T) -> (T, b, G, dg, M)
        return x.reshape(b, G, dg, M, T).permute(4, 0, 1, 2, 3)

    def state_steps(x: Tensor) -> Tensor:  # (b, G, N, M*T) -> (T, b, G, 1, M, N)
        return x.reshape(b, G, N, M, T).permute(4, 0, 1, 3, 2).unsqueeze(3)

    # unbind: one split per input in the graph instead of T selects
    dc, xc = steps(delta).unbind(0), steps(delta * u).unbind(0)
    Bc, Cc = state_steps(B).unbind(0), state_steps(C).unbind(0)
    cum = steps(delta).cumsum(0).unbind(0)  # delta summed from the chunk's start
    A6 = A.reshape(G, dg, 1, N)

    # pass 1: every chunk from a zero state
    h = xc[0][..., None] * Bc[0]
    ys = [(h * Cc[0]).sum(-1)]
    for t in range(1, T):
        h = torch.exp(dc[t][..., None] * A6) * h + xc[t][..., None] * Bc[t]
        ys.append((h * Cc[t]).sum(-1))

    # pass 2: the true state entering each chunk, carried over the chunk count
    decay = torch.exp(cum[-1][..., None] * A6)  # (b, G, dg, M, N)
    last, entry = _entry_states(decay.movedim(3, 0), h.movedim(3, 0))
    entry = entry.movedim(0, 3)

    # pass 3: what the entry state adds to each step's output
    for t in range(T):
        ys[t] = ys[t] + (torch.exp(cum[t][..., None] * A6) * entry * Cc[t]).sum(-1)
    y = torch.stack(ys, dim=-1).reshape(b, dim, M * T)[..., :L]
    return y, last.reshape(b, dim, N)


def selective_scan_export(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                          return_last_state=False, chunk_size: int = EXPORT_CHUNK):
    """Exportable backend (mamba_ssm's call convention): any device, dynamic L, exact for strong decays."""
    from .selective_scan import run_core_scan

    return run_core_scan(export_scan_core, u, delta, A, B, C, D, z, delta_bias, delta_softplus,
                         return_last_state, chunk_size=chunk_size)

