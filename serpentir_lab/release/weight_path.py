"""The straight line in weight space between two fine-tunes of one model, written as a run folder.

Two rounds of a campaign that share an ancestor often trade one class for another (general round 4
keeps JPEG, round 5 learnt blur at JPEG's cost). Averaging their weights is the cheapest candidate
between them; writing the points of the line as numbered checkpoints (step 0 = A, step 1000 = B) lets
class_curve score the whole path as the model card scores a run.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import nn

from serpentir.checkpoint import load_checkpoint, read_metadata, save_checkpoint
from serpentir.errors import UserError
from serpentir.train.run_folder import numbered_checkpoint

PATH_STEPS = 1000  # the checkpoint of alpha is step round(alpha * PATH_STEPS)


def _check_share(alpha: float) -> None:
    if not 0.0 <= alpha <= 1.0:
        raise UserError(f"alpha {alpha:g}: expected a share between 0 and 1")


def _load_pair(a: str | Path, b: str | Path):
    """(A's model, A's task, B's state dict), refused when the two are different networks."""
    meta_a, meta_b = read_metadata(a), read_metadata(b)
    if (meta_a["model"], meta_a["channels"]) != (meta_b["model"], meta_b["channels"]):
        raise UserError(f"{b}: a different network ({meta_b['model']['name']}, {meta_b['model'].get('kwargs')}) "
                        f"from {a}'s ({meta_a['model']['name']}, {meta_a['model'].get('kwargs')}): no line between them")
    model, task, _ = load_checkpoint(a)
    return model, task, load_checkpoint(b)[0].state_dict()


def _point(model_a: nn.Module, state_b: dict, alpha: float) -> nn.Module:
    """A copy of A's model with the weights (1 - alpha) * A + alpha * B."""
    model = copy.deepcopy(model_a)
    with torch.no_grad():
        for name, value in model.state_dict().items():
            if value.is_floating_point():
                value.lerp_(state_b[name], alpha)
    return model


def interpolate(a: str | Path, b: str | Path, alpha: float) -> nn.Module:
    """A's model with the weights (1 - alpha) * A + alpha * B (EMA weights where a file has them)."""
    _check_share(alpha)
    model, _, state_b = _load_pair(a, b)
    return _point(model, state_b, alpha)


def write_weight_path(a: str | Path, b: str | Path, alphas: list[float], run_dir: str | Path) -> list[Path]:
    """RUN_DIR/checkpoints/step_N.safetensors for each alpha (N = alpha * 1000), with A's task and B's config;
    every share is checked and both files read once, before anything is written."""
    for alpha in alphas:
        _check_share(alpha)
    model, task, state_b = _load_pair(a, b)
    config = read_metadata(b).get("config")
    written = []
    for alpha in alphas:
        step = round(alpha * PATH_STEPS)
        written.append(save_checkpoint(numbered_checkpoint(run_dir, step), model=_point(model, state_b, alpha),
                                       task=task, step=step, config=config))
    return written
