"""A scored variant of a study: what the runner produces and the report reads."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..compare import CompareRow

KNOBS = ("directions", "order", "patch_size", "d_state", "embed_dim")


@dataclass
class VariantResult:
    """A trained variant: its knobs (None for a model without them), cost and scores."""

    variant: str
    model: str
    knobs: dict
    row: CompareRow
    run_dir: Path
    notes: list
