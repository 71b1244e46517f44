"""The learning-rate schedule as a pure function of the step (or of the time budget spent).

A function of the step (rather than a stateful LR scheduler object) makes resuming exact by
construction: restoring the step restores the schedule, whatever `steps` the resumed run uses.
A run with a time budget (equal wall-clock comparisons) decays by the share of its budget spent,
which its checkpoints keep, so a resumed run goes on where the schedule stood.
"""

from __future__ import annotations

import math


def lr_at(step: int, *, base_lr: float, warmup_steps: int, total_steps: int, min_lr: float = 0.0) -> float:
    """The learning rate for the update that takes the weights from `step` to `step + 1` (0-based).

    Linear warm-up over the first `warmup_steps` updates (base_lr * (step + 1) / warmup_steps, so the
    first update is not wasted at lr 0), then half a cosine from base_lr down to min_lr at the last
    update (total_steps - 1).
    """
    if warmup_steps > 0 and step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    decay_steps = total_steps - warmup_steps - 1
    if decay_steps <= 0:
        return base_lr
    return _cosine((step - warmup_steps) / decay_steps, base_lr, min_lr)


def lr_at_time(step: int, spent_s: float, budget_s: float, *, base_lr: float, warmup_steps: int,
               min_lr: float = 0.0) -> float:
    """The rate of a run with a time budget: the same warm-up by steps, then half a cosine over the
    share of the budget spent (`spent_s / budget_s`), reaching min_lr as the budget runs out."""
    if warmup_steps > 0 and step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    return _cosine(spent_s / budget_s, base_lr, min_lr)


def time_budget_spent(spent_s: float, budget_min: float | None) -> bool:
    """Whether a run with a time budget of `budget_min` minutes has stepped for all of it (never without one)."""
    return budget_min is not None and spent_s >= 60 * budget_min


def _cosine(progress: float, base_lr: float, min_lr: float) -> float:
    progress = min(1.0, max(0.0, progress))
    return min_lr + (base_lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))
