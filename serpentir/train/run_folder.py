"""Where a training run keeps its files: the one definition that training, resuming and the workshop read.

    OUT_DIR/config.yaml                     the resolved config the run was started with
    OUT_DIR/train_log.csv, val_log.csv      one row per logged step
    OUT_DIR/checkpoints/last.safetensors    the latest weights (+ last.state.pt, the training state)
    OUT_DIR/checkpoints/step_0001000.safetensors   a numbered copy every ckpt_every steps
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import UserError

CHECKPOINT_DIR = "checkpoints"
LAST = "last.safetensors"
CONFIG = "config.yaml"
TRAIN_LOG = "train_log.csv"
VAL_LOG = "val_log.csv"
_NUMBERED = re.compile(r"step_(\d+)\.safetensors")


def last_checkpoint(run_dir: str | Path) -> Path:
    """Where a run folder keeps its latest checkpoint (whether or not it has written one yet)."""
    return Path(run_dir) / CHECKPOINT_DIR / LAST


def numbered_checkpoint(run_dir: str | Path, step: int) -> Path:
    """Where a run folder keeps the numbered copy of the checkpoint of `step`."""
    return Path(run_dir) / CHECKPOINT_DIR / f"step_{step:07d}.safetensors"


def numbered_checkpoints(run_dir: str | Path) -> list[tuple[int, Path]]:
    """(step, path) of every numbered checkpoint the run folder holds, in step order."""
    found = []
    for path in (Path(run_dir) / CHECKPOINT_DIR).glob("step_*.safetensors"):
        match = _NUMBERED.fullmatch(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def checkpoint_of(run: str | Path) -> Path:
    """A run folder's last checkpoint, or the checkpoint file itself."""
    path = Path(run)
    if path.is_dir():
        path = last_checkpoint(path)
        if not path.is_file():
            raise UserError(f"{run}: no {Path(CHECKPOINT_DIR) / LAST} in this run folder (has it saved a checkpoint yet?)")
    return path


def run_dir_of(checkpoint: str | Path) -> Path:
    """The run folder a checkpoint was written into (RUN/checkpoints/NAME.safetensors -> RUN)."""
    return Path(checkpoint).parent.parent
