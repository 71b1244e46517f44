"""Scan directions as walks of the raster grid: a transpose and two flips, no index tables.

Every scan order Serpent uses visits the H x W grid row by row (or, transposed, column by column),
possibly with the rows and/or the columns reversed. Described this way, a compiled kernel visits a
direction by index arithmetic on the raster-ordered map, and pure PyTorch forms the sequence with
flip and transpose (no gather, no index tensor; both export to ONNX).

"diagonal" (the paper's four scans): from the top left to the bottom right (raster), from the top
right to the bottom left (each row right to left), and the reverse of both. "cross" (VMamba's
cross-scan): rows, columns, and their reverses. With 1 direction only the first walk is used, with 2
the first and its reverse.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

ORDERS = ("diagonal", "cross")


@dataclass(frozen=True)
class Walk:
    """Step t visits (t // W, t % W), or (t % H, t // H) if transposed, then flips rows / columns."""

    name: str
    transpose: bool = False
    flip_rows: bool = False
    flip_cols: bool = False

    @property
    def code(self) -> int:
        """The compiled kernel's encoding: 4 * transpose + 2 * flip_rows + flip_cols."""
        return 4 * self.transpose + 2 * self.flip_rows + self.flip_cols

    @property
    def outer_axis(self) -> int:
        """The grid axis (1 = rows, 2 = columns of a (B, H, W, C) map) that the walk finishes one line of at a time."""
        return 2 if self.transpose else 1

    @property
    def outer_reversed(self) -> bool:
        """Whether the walk goes through the lines of its outer axis from the last to the first."""
        return self.flip_cols if self.transpose else self.flip_rows

    def _flip_dims(self) -> list[int]:
        return [d for d, on in ((1, self.flip_rows), (2, self.flip_cols)) if on]

    def sequence(self, x: Tensor) -> Tensor:
        """(B, H, W, C) map -> (B, H*W, C) tokens in this walk's order (a flip and/or transpose)."""
        dims = self._flip_dims()
        y = x.flip(dims) if dims else x
        if self.transpose:
            y = y.transpose(1, 2)
        return y.reshape(x.shape[0], -1, x.shape[-1])

    def unsequence(self, seq: Tensor, H: int, W: int) -> Tensor:
        """(B, H*W, C) tokens in this walk's order -> (B, H, W, C) map: the inverse of sequence()."""
        B, _, C = seq.shape
        y = seq.reshape(B, W, H, C).transpose(1, 2) if self.transpose else seq.reshape(B, H, W, C)
        dims = self._flip_dims()
        return y.flip(dims) if dims else y


_FOUR = {
    "diagonal": (Walk("top-left->bottom-right"), Walk("top-right->bottom-left", flip_cols=True),
                 Walk("bottom-right->top-left", flip_rows=True, flip_cols=True),
                 Walk("bottom-left->top-right", flip_rows=True)),
    "cross": (Walk("rows"), Walk("columns", transpose=True), Walk("rows-reversed", flip_rows=True, flip_cols=True),
              Walk("columns-reversed", transpose=True, flip_rows=True, flip_cols=True)),
}


def scan_walks(directions: int, order: str = "diagonal") -> tuple[Walk, ...]:
    """The walks used for a direction count, in the order their channels are stacked."""
    if order not in ORDERS:
        raise ValueError(f"unknown scan order {order!r}; choose from {', '.join(ORDERS)}")
    if directions not in (1, 2, 4):
        raise ValueError(f"directions must be 1, 2 or 4, got {directions}")
    four = _FOUR[order]
    return {1: four[:1], 2: (four[0], four[2]), 4: four}[directions]
