"""Checkpoints: weights (model + EMA) in safetensors with the recipe in its metadata, the optimizer and
RNG states beside them; both written atomically.

The metadata (JSON strings: model name + kwargs, task name + params, step, config) lets
`load_checkpoint` rebuild the network without the user repeating its architecture. Weights are
safetensors so loading them runs no code; the training state (optimizer moments, RNG states) is a
torch.save dict loaded with weights_only=True.

Every weights file records a SHA-256 digest of its tensors (names, dtypes, shapes and bytes) in its
metadata, checked on load: a file damaged in transfer or on disk is refused with a one-line error
instead of restoring wrong images. Files from before the digest load with a one-line warning.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import torch
from torch import nn

from ..atomic_write import atomic_path
from ..errors import UserError
from .build import build_model, build_task

CHECKPOINT_FORMAT = "serpentir-checkpoint/1"
MODEL_PREFIX, EMA_PREFIX = "model.", "ema."
DIGEST_KEY = "tensors_sha256"

log = logging.getLogger(__name__)


def tensors_digest(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over every tensor's name, dtype, shape and raw bytes, in name order."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu").contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def add_digest(path: str | Path) -> str:
    """Record the tensors' digest in an older weights file's metadata, the tensors bit for bit unchanged."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    path = _existing(path)
    with safe_open(str(path), framework="pt") as f:
        metadata = dict(f.metadata() or {})
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    metadata[DIGEST_KEY] = digest = tensors_digest(tensors)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
        with safe_open(str(tmp), framework="pt") as f:
            if tensors_digest({k: f.get_tensor(k) for k in f.keys()}) != digest:
                raise RuntimeError(f"{path}: tensors changed while rewriting; file left as it was")
    return digest


def state_path_for(weights_path: str | Path) -> Path:
    """The training-state file that goes with a weights file: last.safetensors -> last.state.pt."""
    p = Path(weights_path)
    return p.with_name(p.name.removesuffix(".safetensors") + ".state.pt")


def save_checkpoint(path: str | Path, *, model: nn.Module, task, step: int, ema_model: nn.Module | None = None,
                    config: dict | None = None, train_state: dict | None = None) -> Path:
    """Write `path` (.safetensors) and, if given, the training state next to it; each file atomically.

    The state is written first: a crash between the two leaves an older weights file whose step
    disagrees with the state, which resuming detects, never new weights beside a stale state.
    """
    from safetensors.torch import save_file

    path = Path(path)
    channels = int(model.arch["kwargs"].get("out_channels", 3)) if hasattr(model, "arch") else 3
    metadata = {
        "format": CHECKPOINT_FORMAT,
        "model": json.dumps(model.arch),
        "task": json.dumps({"name": task.name, "params": dict(task.params)}, default=list),
        "channels": str(channels),
        "step": str(int(step)),
        "config": json.dumps(config or {}, default=str),
    }
    tensors = {MODEL_PREFIX + k: _plain(v) for k, v in model.state_dict().items()}
    if ema_model is not None:
        tensors.update({EMA_PREFIX + k: _plain(v) for k, v in ema_model.state_dict().items()})
    metadata[DIGEST_KEY] = tensors_digest(tensors)
    path.parent.mkdir(parents=True, exist_ok=True)
    if train_state is not None:
        with atomic_path(state_path_for(path)) as tmp:
            torch.save({**train_state, "step": int(step)}, tmp)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return path


def read_metadata(path: str | Path) -> dict:
    """The decoded metadata of a checkpoint: model, task, channels, step, config."""
    from safetensors import safe_open

    path = _existing(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = f.metadata() or {}
    except Exception as e:  # safetensors raises its own error type for a bad header
        raise UserError(f"{path}: not a safetensors checkpoint ({_first_line(e)})") from None
    if "model" not in raw or "task" not in raw:
        raise UserError(f"{path}: not a serpentir checkpoint (its metadata names no model and task)")
    try:
        return {"format": raw.get("format", ""), "model": json.loads(raw["model"]), "task": json.loads(raw["task"]),
                "channels": int(raw.get("channels", 3)), "step": int(raw.get("step", 0)),
                "config": json.loads(raw.get("config", "{}"))}
    except (ValueError, TypeError) as e:
        raise UserError(f"{path}: corrupt checkpoint metadata ({_first_line(e)})") from None


def load_checkpoint(path: str | Path, *, use_ema: bool = True, device: str | torch.device = "cpu"):
    """(model in eval mode, task, metadata) from a checkpoint alone; the EMA weights when present."""
    meta = read_metadata(path)
    task = build_task(meta["task"]["name"], meta["task"].get("params", {}))
    arch = meta["model"]
    kwargs = dict(arch.get("kwargs", {}))
    channels = meta["channels"]
    kwargs.pop("in_channels", None)
    kwargs.pop("out_channels", None)
    model = build_model(arch["name"], kwargs, channels=channels, extra_channels=task.extra_channels)
    load_weights(model, path, use_ema=use_ema)
    return model.to(device).eval(), task, meta


def load_weights(model: nn.Module, path: str | Path, *, use_ema: bool = True) -> None:
    """Load a checkpoint's model (or EMA) weights into `model`; a mismatch is a one-line UserError."""
    path = _existing(path)
    tensors = read_verified_tensors(path)
    has_ema = any(k.startswith(EMA_PREFIX) for k in tensors)
    prefix = EMA_PREFIX if use_ema and has_ema else MODEL_PREFIX
    if not any(k.startswith(prefix) for k in tensors):
        prefix = ""  # a bare state dict written elsewhere
    state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    if prefix == "":
        state = {k: v for k, v in state.items() if not k.startswith(EMA_PREFIX)}
    _check_match(model, state, path)
    model.load_state_dict(state, strict=True)


def read_verified_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    """Every tensor of a safetensors file, checked against the digest in its metadata."""
    from safetensors import safe_open

    path = _existing(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            recorded = (f.metadata() or {}).get(DIGEST_KEY)
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # safetensors raises its own error types for a bad header or short data
        raise UserError(f"{path}: not a safetensors checkpoint ({_first_line(e)})") from None
    if recorded is None:
        log.warning("%s: no digest of its tensors (written before serpentir recorded one); loaded unverified", path)
    elif tensors_digest(tensors) != recorded:
        raise UserError(f"{path}: corrupted weights: the tensors do not match the digest recorded in the file "
                        "(damaged or altered); get a fresh copy")
    return tensors


def load_train_state(weights_path: str | Path) -> dict:
    """The optimizer / RNG / step state saved beside a weights file (for resuming)."""
    state_path = state_path_for(weights_path)
    if not state_path.is_file():
        raise UserError(f"{state_path}: missing; cannot resume from {weights_path} without its training state")
    try:
        return torch.load(state_path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise UserError(f"{state_path}: unreadable training state ({_first_line(e)})") from None


def _check_match(model: nn.Module, state: dict, path: Path) -> None:
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [(k, tuple(state[k].shape), tuple(v.shape)) for k, v in expected.items()
              if k in state and tuple(state[k].shape) != tuple(v.shape)]
    if not (missing or unexpected or shapes):
        return
    name = getattr(model, "arch", {}).get("name", type(model).__name__)
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing key(s) (e.g. {missing[0]})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected key(s) (e.g. {unexpected[0]})")
    if shapes:
        k, got, want = shapes[0]
        parts.append(f"{len(shapes)} shape mismatch(es) (e.g. {k}: checkpoint {got} vs model {want})")
    raise UserError(f"{path}: checkpoint does not match model {name}: {'; '.join(parts)}")


def _plain(t: torch.Tensor) -> torch.Tensor:
    # safetensors refuses non-contiguous or storage-sharing tensors; a private copy is neither
    return t.detach().to("cpu").contiguous().clone()


def _existing(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such checkpoint file")
    if path.is_dir():
        raise UserError(f"{path}: is a folder, not a checkpoint file")
    return path


def _first_line(e: BaseException) -> str:
    return " ".join(str(e).split())[:200] or type(e).__name__
