"""A scored variant of a study: what the runner produces and the report reads."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from serpentir.train import TRAIN_LOG, VAL_LOG

from ..compare import CompareRow

KNOBS = ("directions", "order", "patch_size", "d_state", "embed_dim")
CURVE_LOGS = {"psnr": VAL_LOG, "loss": TRAIN_LOG}  # a learning curve -> the run-folder log that holds it


def read_log(path: Path, column: str) -> tuple[list[int], list[float]]:
    """The steps and values of one column of a run's csv log (empty when there is no log)."""
    if not path.is_file():
        return [], []
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get(column) not in (None, "", "nan")]
    return [int(r["step"]) for r in rows], [float(r[column]) for r in rows]


def read_curves(run_dir: Path) -> dict[str, tuple[list[int], list[float]]]:
    """A run folder's learning curves: validation PSNR and training loss, by step."""
    return {name: read_log(run_dir / log, name) for name, log in CURVE_LOGS.items()}


@dataclass
class VariantResult:
    """A trained variant: its knobs (None for a model without them), cost and scores.

    run_dir is None for a variant read from its record (records.py), whose curves come with it."""

    variant: str
    model: str
    knobs: dict
    row: CompareRow
    run_dir: Path | None
    notes: list
    recorded_curves: dict[str, tuple[list[int], list[float]]] | None = None

    def curves(self) -> dict[str, tuple[list[int], list[float]]]:
        """Validation PSNR ("psnr") and training loss ("loss") by step, from the record or the run folder."""
        return self.recorded_curves if self.recorded_curves is not None else read_curves(self.run_dir)
