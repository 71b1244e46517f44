"""Release tooling: a training run turned into a bundled model with its model card.

    bundle.py            EMA weights in safetensors + a card scored against the input and the classical method
    blind_validation.py  a blind model scored per strength of its degradation on held-out photos
    blind_card.py        the card of a blind model (its strengths table), written when it is bundled
    regression_gate.py   a candidate refused unless no class gets worse; the card's history table
    class_curve.py       the same strengths scored along a run's checkpoints: which floors are flat, which still rise
"""

from .blind_card import bundle_blind_run
from .bundle import bundle_run

__all__ = ["bundle_blind_run", "bundle_run"]
