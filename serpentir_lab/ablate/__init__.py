"""`serpentir ablate`: one study (a base training config plus variants) trained under one protocol,
scored on the same test photos, and reported as ablations.csv, ablations.md and plots: arms of seeds
against the first arm with per-photo bootstrap intervals, overall and per frequency band."""

from serpentir.train import learning_digest

from .result import VariantResult
from .runner import run_study
from .study import Study, Variant, load_study

__all__ = ["Study", "Variant", "VariantResult", "learning_digest", "load_study", "run_study"]
