"""Argument types and help-text wrapping shared by the subcommands: a bad value is one line from argparse."""

from __future__ import annotations

import argparse
import textwrap

from ..errors import UserError

DEFAULT_TILE_OVERLAP = 32


def wrap(text: str) -> str:
    """Descriptions sit beside hand-laid-out examples (raw formatting), so they are wrapped here."""
    return textwrap.fill(text, width=100)


def positive_int(text: str) -> int:
    return _int_at_least(text, 1, "a positive integer")


def non_negative_int(text: str) -> int:
    return _int_at_least(text, 0, "an integer >= 0")


def _int_at_least(text: str, minimum: int, expected: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def quality(text: str) -> int:
    value = positive_int(text)
    if value > 100:
        raise argparse.ArgumentTypeError(f"expected a quality from 1 to 100, got {text!r}")
    return value


def tile_overlap(tile: int | None, overlap: int | None) -> int:
    """The tile overlap to use: an explicit one too large for an explicit tile is refused, not capped.

    Neighbouring tiles' blends must not meet, so the overlap stays below half the tile: the default is
    reduced to fit a small tile (as it is for tiles chosen to fit memory), a value the user gave is not.
    """
    if overlap is None:
        return DEFAULT_TILE_OVERLAP
    if tile is not None and tile >= 8 and overlap > (tile - 1) // 2:
        raise UserError(f"--tile-overlap {overlap} does not fit --tile {tile}: the overlap must stay below half "
                        f"the tile (at most {(tile - 1) // 2})")
    return overlap
