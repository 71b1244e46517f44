"""Pure-PyTorch selective scan in linear space: chunked two-pass recurrence with a recomputing backward.

The sequence is cut into chunks of T steps. All chunks are scanned at once from a zero state (a
Python loop of T steps over tensors that hold every chunk), the true state entering each chunk is
then carried across chunk boundaries (a loop over chunks on small tensors), and each chunk's states
are corrected by ``exp(A * cumsum(delta)) * entry_state``. Every factor is a decay <= 1 when
delta >= 0 and A < 0, so strong decays never overflow or produce NaN (unlike factored or log-space
forms). Chunks are processed in groups whose stacked (T, ..., N) tensors stay under a fixed element
budget, so memory does not grow with L * dim * N; the backward saves only the (dim, N) entry state
of each chunk and recomputes the rest group by group.

Internal layout of stacked tensors: (T, batch, groups, dim_per_group, chunks, N).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

GROUP_ELEMENT_BUDGET = 1 << 24  # elements in one stacked (T, ..., N) tensor, ~64 MB in float32


def default_chunk_size(length: int) -> int:
    """About sqrt(L) balances the in-chunk loop (T steps) against the carry loop (L / T steps)."""
    return int(min(128, max(8, round(math.sqrt(length)))))


def _time_major(x: Tensor, T: int) -> Tensor:
    """(b, G, dg, L) -> (T, b, G, dg, chunks)."""
    b, G, dg, L = x.shape
    return x.reshape(b, G, dg, L // T, T).permute(4, 0, 1, 2, 3).contiguous()


def _time_major_state(x: Tensor, T: int) -> Tensor:
    """(b, G, N, L) -> (T, b, G, 1, chunks, N)."""
    b, G, N, L = x.shape
    return x.reshape(b, G, N, L // T, T).permute(4, 0, 1, 3, 2).contiguous().unsqueeze(3)


def _chunk_groups(T: int, batch: int, dim: int, chunks: int, N: int):
    per_chunk = T * batch * dim * N
    step = max(1, min(chunks, GROUP_ELEMENT_BUDGET // max(per_chunk, 1)))
    return [(c0, min(c0 + step, chunks)) for c0 in range(0, chunks, step)]


def _scan_steps(dc: Tensor, uc: Tensor, Bc: Tensor, A6: Tensor, h: Tensor, Cc: Tensor | None = None,
                y: Tensor | None = None) -> Tensor:
    """Advance the states h of all chunks through their T steps in place; write C.h into y if given.

    Works on one time step of every chunk at a time, so no (T, ..., N) tensor is ever allocated.
    """
    a = torch.empty_like(h)
    x = torch.empty_like(h)
    for t in range(dc.shape[0]):
        torch.mul(dc[t][..., None], A6, out=a)
        a.exp_()
        torch.mul((dc[t] * uc[t])[..., None], Bc[t], out=x)
        h.mul_(a).add_(x)
        if y is not None:
            torch.mul(h, Cc[t], out=x)
            torch.sum(x, dim=-1, out=y[t])
    return h


def _local_states(dc: Tensor, uc: Tensor, Bc: Tensor, A6: Tensor) -> tuple[Tensor, Tensor]:
    """Decays a[t] and states h[t] of every chunk scanned from a zero state."""
    a = torch.exp(dc[..., None] * A6)
    h = (dc * uc)[..., None] * Bc  # becomes the states, in place
    for t in range(1, h.shape[0]):
        h[t].addcmul_(a[t], h[t - 1])
    return a, h


def _local_adjoints(a: Tensor, dyc: Tensor, Cc: Tensor) -> Tensor:
    """dL/dh[t] of every chunk, ignoring what flows in from later chunks."""
    g = dyc[..., None] * Cc
    for t in range(g.shape[0] - 2, -1, -1):
        g[t].addcmul_(a[t + 1], g[t + 1])
    return g


def _chunk_major(x: Tensor) -> Tensor:
    """(b, G, dg, chunks, N) -> (chunks, b, G, dg, N), so the carry loop indexes contiguous memory."""
    return x.movedim(-2, 0)


def _state_major(x: Tensor) -> Tensor:
    """(chunks, b, G, dg, N) -> (b, G, dg, chunks, N), broadcastable against stacked tensors."""
    return x.movedim(0, -2)


class ChunkedScan(torch.autograd.Function):
    """y, last_state = scan(u, delta, A, B, C) with B, C of shape (b, G, N, L); L a multiple of T."""

    @staticmethod
    def forward(ctx, u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, T: int):
        b, dim, L = u.shape
        G, N = B.shape[1], B.shape[2]
        dg, chunks = dim // G, L // T
        uc = _time_major(u.reshape(b, G, dg, L), T)
        dc = _time_major(delta.reshape(b, G, dg, L), T)
        Bc, Cc = _time_major_state(B, T), _time_major_state(C, T)
        A6 = A.reshape(G, dg, 1, N)

        # pass 1: every chunk from a zero state, one step at a time -> its end state
        end_state = _scan_steps(dc, uc, Bc, A6, uc.new_zeros(b, G, dg, chunks, N))
        decay = _chunk_major(torch.exp(dc.sum(0)[..., None] * A6))

        # pass 2: the true state entering each chunk
        entry = decay.new_zeros(decay.shape)  # contiguous, chunk-major
        end_state = _chunk_major(end_state)
        for c in range(1, chunks):
            torch.addcmul(end_state[c - 1], decay[c - 1], entry[c - 1], out=entry[c])
        last_state = torch.addcmul(end_state[-1], decay[-1], entry[-1])

        # pass 3: rerun every chunk from its true entry state and read out y
        y = u.new_empty(T, b, G, dg, chunks)
        _scan_steps(dc, uc, Bc, A6, _state_major(entry).clone(memory_format=torch.contiguous_format), Cc, y)

        ctx.save_for_backward(u, delta, A, B, C, entry)
        ctx.T = T
        return y.permute(1, 2, 3, 4, 0).reshape(b, dim, L), last_state.reshape(b, dim, N)

    @staticmethod
    def backward(ctx, dy: Tensor, dlast: Tensor | None):
        u, delta, A, B, C, entry = ctx.saved_tensors
        T = ctx.T
        b, dim, L = u.shape
        G, N = B.shape[1], B.shape[2]
        dg, chunks = dim // G, L // T
        uc = _time_major(u.reshape(b, G, dg, L), T)
        dc = _time_major(delta.reshape(b, G, dg, L), T)
        dyc = _time_major(dy.reshape(b, G, dg, L), T)
        Bc, Cc = _time_major_state(B, T), _time_major_state(C, T)
        A6 = A.reshape(G, dg, 1, N)
        groups = _chunk_groups(T, b, dim, chunks, N)

        # pass A: adjoints of every chunk with nothing flowing in from the right
        head = u.new_empty(chunks, b, G, dg, N)  # a[first] * g_local[first]: what a chunk passes left
        decay = u.new_empty(chunks, b, G, dg, N)
        cache = None
        for c0, c1 in groups:
            sl = (..., slice(c0, c1))
            a = torch.exp(dc[sl][..., None] * A6)
            g = _local_adjoints(a, dyc[sl], Cc[sl + (slice(None),)])
            head[c0:c1] = _chunk_major(a[0] * g[0])
            decay[c0:c1] = _chunk_major(torch.exp(dc[sl].sum(0)[..., None] * A6))
            if len(groups) == 1:
                cache = (a, g)

        # pass B: the adjoint arriving at each chunk's last step from the chunks after it
        carry = torch.empty_like(head)
        carry[-1] = 0 if dlast is None else dlast.reshape(b, G, dg, N)
        for c in range(chunks - 1, 0, -1):
            torch.addcmul(head[c], decay[c], carry[c], out=carry[c - 1])

        # pass C: true states and adjoints per group, then every gradient in closed form
        du = torch.empty_like(uc)
        ddelta = torch.empty_like(dc)
        dB = u.new_empty(T, b, G, 1, chunks, N)
        dC = u.new_empty(T, b, G, 1, chunks, N)
        dA = A.new_zeros(G, dg, N)
        for c0, c1 in groups:
            sl = (..., slice(c0, c1))
            slN = sl + (slice(None),)
            d_g, u_g, B_g, C_g = dc[sl], uc[sl], Bc[slN], Cc[slN]
            if cache is not None:
                a, g = cache
                h = _local_states(d_g, u_g, B_g, A6)[1]
            else:
                a, h = _local_states(d_g, u_g, B_g, A6)
                g = _local_adjoints(a, dyc[sl], C_g)
            cum = d_g.cumsum(0)
            entry_g = _state_major(entry[c0:c1])
            h.addcmul_(torch.exp(cum[..., None] * A6), entry_g)
            g.addcmul_(torch.exp((cum[-1] - cum)[..., None] * A6), _state_major(carry[c0:c1]))
            dC[slN] = (dyc[sl][..., None] * h).sum(3, keepdim=True)
            h_prev = torch.cat([entry_g[None], h[:-1]], dim=0)
            del h
            dlog_a = g * h_prev * a  # dL/d(delta*A) through the decay
            del h_prev, a
            ddelta[sl] = (g * (u_g[..., None] * B_g) + dlog_a * A6).sum(-1)
            dA += (dlog_a * d_g[..., None]).sum(dim=(0, 1, 4))
            del dlog_a
            du[sl] = (g * B_g).sum(-1) * d_g
            dB[slN] = (g * (d_g * u_g)[..., None]).sum(3, keepdim=True)

        def seq(x: Tensor) -> Tensor:  # (T, b, G, dg, chunks) -> (b, dim, L)
            return x.permute(1, 2, 3, 4, 0).reshape(b, dim, L)

        def state_seq(x: Tensor) -> Tensor:  # (T, b, G, 1, chunks, N) -> (b, G, N, L)
            return x.squeeze(3).permute(1, 2, 4, 3, 0).reshape(b, G, N, L)

        return seq(du), seq(ddelta), dA.reshape(dim, N), state_seq(dB), state_seq(dC), None


def chunked_scan_core(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, chunk_size: int | None = None):
    """Core recurrence on float tensors, B and C as (b, G, N, L); pads L to a multiple of the chunk."""
    L = u.shape[-1]
    T = chunk_size or default_chunk_size(L)
    T = min(T, L)
    pad = (-L) % T
    if pad:
        # delta = 0 on padded steps: decay 1 and input 0, so the state passes through unchanged
        u, delta, B, C = (torch.nn.functional.pad(x, (0, pad)) for x in (u, delta, B, C))
    y, last = ChunkedScan.apply(u.contiguous(), delta.contiguous(), A.contiguous(), B.contiguous(), C.contiguous(), T)
    return y[..., :L], last
