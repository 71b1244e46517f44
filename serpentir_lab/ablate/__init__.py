"""`serpentir ablate`: one study (a base training config plus variants) trained under one protocol,
scored on the same held-out photos, and reported as ablations.csv, ablations.md and plots."""

from .runner import VariantResult, run_study
from .study import Study, Variant, learning_digest, load_study

__all__ = ["Study", "Variant", "VariantResult", "learning_digest", "load_study", "run_study"]
