"""How every workshop measurement names a model: a bundled task, LABEL=PATH, or a bare path.

One rule, so `benchmarks/receptive_field.py` and `python -m serpentir_lab.scaling` read the same
words the same way; a path may be a checkpoint or a run folder (its last checkpoint).
"""

from __future__ import annotations

from pathlib import Path

from serpentir.errors import UserError
from serpentir.infer.catalogue import bundled_tasks, bundled_weights
from serpentir.train import checkpoint_of


def labelled_checkpoint(spec: str) -> tuple[str, Path]:
    """(label, checkpoint) for a bundled task name ("deblur" -> "deblur (bundled)"), LABEL=PATH, or a bare path
    (labelled by itself)."""
    if spec in bundled_tasks():
        return f"{spec} (bundled)", bundled_weights(spec)
    label, sep, path = spec.rpartition("=")  # no "=": ("", "", spec)
    if not path or (sep and not label):
        raise UserError(f"bad model {spec!r}: expected a bundled task name, LABEL=PATH or a path")
    checkpoint = checkpoint_of(path)
    if not checkpoint.is_file():
        raise UserError(f"{path}: no such checkpoint or run folder")
    return (label or path), checkpoint
