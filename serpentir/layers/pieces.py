"""Inference in pieces: how much of a feature map a layer processes at once when no gradient is needed.

Under inference a large map goes through the VSS blocks in bands of lines (the scan carries its
state from band to band), so memory grows with the map only by the few full-size maps a block must
keep. The result is the same as processing the map whole, not an approximation like tiling.
Tests lower PIECE_TOKENS to exercise the piecewise paths on small maps.
"""

from __future__ import annotations

from collections.abc import Iterator

PIECE_TOKENS = 1 << 16  # tokens per piece (all images of the batch together)


def use_pieces(batch: int, height: int, width: int) -> bool:
    """Whether a map of this size is large enough to be processed in pieces."""
    return batch * height * width > PIECE_TOKENS


def bands(extent: int, line_tokens: int, reverse: bool = False) -> Iterator[tuple[int, int]]:
    """(start, end) of consecutive bands of lines covering range(extent), each about PIECE_TOKENS tokens."""
    lines = max(1, PIECE_TOKENS // max(1, line_tokens))
    starts = range(0, extent, lines)
    for start in reversed(starts) if reverse else starts:
        yield start, min(start + lines, extent)
