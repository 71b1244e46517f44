"""Inference in pieces: how much of a feature map a layer processes at once when no gradient is needed.

Under inference a large map goes through the VSS blocks in bands of lines (the scan carries its
state from band to band), so memory grows with the map only by the few full-size maps a block must
keep. The result is the same as processing the map whole, not an approximation like tiling.
The piece size is context-local (a ContextVar, each thread starting at the default): the memory
calibration and tests lower it inside `piece_budget`, and no other thread or task sees the change.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

PIECE_TOKENS = 1 << 16  # the default tokens per piece (all images of the batch together); never reassigned
_budget: ContextVar[int] = ContextVar("serpentir_piece_tokens", default=PIECE_TOKENS)


def piece_tokens() -> int:
    """Tokens per piece in the current context (thread or task)."""
    return _budget.get()


@contextmanager
def piece_budget(tokens: int) -> Iterator[None]:
    """Process maps in pieces of `tokens` tokens inside the block, in this context only (then restored)."""
    if tokens < 1:
        raise ValueError(f"piece budget must be at least 1 token, got {tokens}")
    reset = _budget.set(tokens)
    try:
        yield
    finally:
        _budget.reset(reset)


def use_pieces(batch: int, height: int, width: int) -> bool:
    """Whether a map of this size is large enough to be processed in pieces."""
    return batch * height * width > piece_tokens()


def bands(extent: int, line_tokens: int, reverse: bool = False) -> Iterator[tuple[int, int]]:
    """(start, end) of consecutive bands of lines covering range(extent), each about piece_tokens() tokens."""
    lines = max(1, piece_tokens() // max(1, line_tokens))
    starts = range(0, extent, lines)
    for start in reversed(starts) if reverse else starts:
        yield start, min(start + lines, extent)
