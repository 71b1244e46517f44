"""A selective scan that torch.onnx can export with a dynamic sequence length.

The sequence is cut into chunks of a fixed size T (zero-padded: a padded step has delta = 0, so it
keeps the state). Three passes, each a loop that the graph keeps as a loop (an ONNX Scan node):

1. all chunks at once, T steps from a zero state -> the state at each chunk's end;
2. over the (dynamic) chunk count: the true state entering each chunk, carried with the chunk's
   total decay exp(A * sum(delta));
3. all chunks at once, T steps again from their true entry states -> the outputs y.

While exporting (torch.compiler.is_compiling()), the loops are torch's `scan` higher-order op, which
the ONNX exporter turns into Scan nodes; in eager mode they are plain Python loops (the op would
compile itself for every new shape). Every exponent is delta * A or A * sum(delta), <= 0 for
delta >= 0 and A < 0: strong decays underflow to an exact 0 and never overflow.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from .scan_core import run_core_scan

EXPORT_CHUNK = 32  # steps per chunk: passes 1 and 3 loop T times over all chunks, pass 2 L / T times


def _loop(step: Callable, init: Tensor, xs: tuple[Tensor, ...]) -> tuple[Tensor, Tensor]:
    """(final carry, stacked outputs) of carry, out = step(carry, x) over the first axis of xs."""
    if torch.compiler.is_compiling():
        from torch._higher_order_ops.scan import scan

        return scan(step, init, xs)
    outs, carry = [], init
    for x in zip(*(t.unbind(0) for t in xs)):
        carry, out = step(carry, x)
        outs.append(out)
    return carry, torch.stack(outs)


def export_scan_core(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor,
                     chunk_size: int = EXPORT_CHUNK) -> tuple[Tensor, Tensor]:
    """Core recurrence: u, delta (b, dim, L); A (dim, N); B, C (b, G, N, L) -> y (b, dim, L), last (b, dim, N)."""
    b, dim, L = u.shape
    G, N = B.shape[1], B.shape[2]
    dg, T = dim // G, chunk_size
    pad = (-L) % T
    u, delta, B, C = (torch.nn.functional.pad(x, (0, pad)) for x in (u, delta, B, C))
    M = (L + pad) // T

    # chunk-major layout (M, b, G, dg, N): A (G, dg, N) broadcasts against it without size-1 axes,
    # which the scan op's tracer would give symbolic sizes that no longer broadcast
    def steps(x: Tensor) -> Tensor:  # (b, dim, M*T) -> (T, M, b, G, dg, 1)
        return x.reshape(b, G, dg, -1, T).permute(4, 3, 0, 1, 2).unsqueeze(-1)

    def state_steps(x: Tensor) -> Tensor:  # (b, G, N, M*T) -> (T, M, b, G, 1, N)
        return x.reshape(b, G, N, -1, T).permute(4, 3, 0, 1, 2).unsqueeze(4)

    A3 = A.reshape(G, dg, N)
    dc, xc, Bc, Cc = steps(delta), steps(delta * u), state_steps(B), state_steps(C)

    def advance(h: Tensor, x: tuple[Tensor, ...]) -> tuple[Tensor, Tensor]:
        d, du, B_t = x
        h = torch.exp(d * A3) * h + du * B_t
        return h, d[..., 0] * 0  # a placeholder output: scan needs one

    def advance_and_read(h: Tensor, x: tuple[Tensor, ...]) -> tuple[Tensor, Tensor]:
        d, du, B_t, C_t = x
        h = torch.exp(d * A3) * h + du * B_t
        return h, (h * C_t).sum(-1)

    def carry_over(h: Tensor, x: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        decay, end = x
        return decay * h + end, h.clone()

    zero = torch.zeros(M, b, G, dg, N, dtype=u.dtype, device=u.device)
    end, _ = _loop(advance, zero, (dc, xc, Bc))  # pass 1
    decay = torch.exp(dc.sum(0) * A3)  # (M, b, G, dg, N)
    last, entry = _loop(carry_over, zero[0], (decay, end))  # pass 2
    _, y = _loop(advance_and_read, entry, (dc, xc, Bc, Cc))  # pass 3: (T, M, b, G, dg)
    y = y.permute(2, 3, 4, 1, 0).reshape(b, dim, -1)[..., :L]
    return y, last.reshape(b, dim, N)


def selective_scan_export(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                          return_last_state=False, chunk_size: int = EXPORT_CHUNK):
    """Exportable backend (mamba_ssm's call convention): any device, dynamic L, exact for strong decays."""
    return run_core_scan(export_scan_core, u, delta, A, B, C, D, z, delta_bias, delta_softplus,
                         return_last_state, chunk_size=chunk_size)
