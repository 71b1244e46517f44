"""Where a training run keeps its files: the one definition that training, resuming and the workshop read.

    OUT_DIR/config.yaml                     the resolved config the run was started with
    OUT_DIR/train_log.csv, val_log.csv      one row per logged step
    OUT_DIR/checkpoints/last.safetensors    the latest weights (+ last.state.pt, the training state)
    OUT_DIR/checkpoints/step_0001000.safetensors   a numbered copy every ckpt_every steps
    OUT_DIR/train.lock                      held while a training writes the folder (its pid inside)
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import UserError

CHECKPOINT_DIR = "checkpoints"
LAST = "last.safetensors"
CONFIG = "config.yaml"
LOCK = "train.lock"
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


class RunFolderBusy(UserError):
    """Another training holds the run folder (its pid in the message)."""


@contextmanager
def hold_run_folder(run_dir: str | Path, *, enabled: bool = True) -> Iterator[None]:
    """Hold the run folder for one training: a second training into it (two study jobs reaching the
    same variant, say) stops with a one-line error instead of writing over the first one's checkpoints.

    The lock is an advisory flock on OUT_DIR/train.lock, released when the process ends however it
    ends, so a killed run never leaves a folder locked. A folder this call created and the run left
    empty (it failed before writing anything) is removed again. Where the system has no flock
    (Windows), nothing is held.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - no flock on this system
        fcntl = None
    if not enabled or fcntl is None:
        yield
        return
    folder = Path(run_dir)
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise RunFolderBusy(f"{folder}: another training (pid {holder}) is writing this run folder; "
                                "wait for it to end, or train into another out_dir") from None
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            yield
        finally:
            if created and {p.name for p in folder.iterdir()} == {LOCK}:
                path.unlink()
                folder.rmdir()
            fcntl.flock(handle, fcntl.LOCK_UN)
