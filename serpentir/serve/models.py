"""The bundled models the server offers, each loaded on first use and then kept: one per task."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..checkpoint.format import load_checkpoint, read_metadata
from ..degradations import Degradation, get_task
from ..errors import UserError
from ..infer.catalogue import DEFAULT_TASK, bundled_checkpoints
from .limits import UploadRejected


@dataclass(frozen=True)
class LoadedModel:
    """A checkpoint ready to restore: the network, its task's degradation, its metadata."""

    task: str
    path: Path
    model: nn.Module
    degradation: Degradation
    meta: dict


class ModelCache:
    """Task name -> LoadedModel, loading each bundled checkpoint once, on first use, thread-safely."""

    def __init__(self, device: torch.device, checkpoints: dict[str, Path] | None = None) -> None:
        self.device = device
        self.checkpoints = bundled_checkpoints() if checkpoints is None else checkpoints
        if not self.checkpoints:
            raise UserError("no bundled weights found: the package install is incomplete (serpentir/weights/)")
        self.default_task = DEFAULT_TASK if DEFAULT_TASK in self.checkpoints else sorted(self.checkpoints)[0]
        self._loaded: dict[str, LoadedModel] = {}
        self._lock = threading.Lock()

    def resolve(self, task: str | None) -> str:
        """The task name to use (the default when none is given); 400 for one without a bundled model."""
        task = task or self.default_task
        if task not in self.checkpoints:
            raise UploadRejected(400, f"no bundled model for task {task!r} (bundled: {', '.join(sorted(self.checkpoints))})")
        return task

    def get(self, task: str) -> LoadedModel:
        with self._lock:
            if task not in self._loaded:
                path = self.checkpoints[task]
                model, degradation, meta = load_checkpoint(path, device=self.device)
                self._loaded[task] = LoadedModel(task, path, model, degradation, meta)
            return self._loaded[task]

    def describe(self) -> list[dict]:
        """What GET /api/models answers: one entry per bundled model, the default first."""
        entries = []
        for task, path in sorted(self.checkpoints.items(), key=lambda kv: (kv[0] != self.default_task, kv[0])):
            meta = read_metadata(path)
            entries.append({
                "task": task,
                "default": task == self.default_task,
                "description": _task_description(task),
                "model": meta["model"]["name"],
                "weights": path.name,
                "size_bytes": path.stat().st_size,
                "channels": meta["channels"],
                "loaded": task in self._loaded,
                "needs_mask": _needs_mask(task),  # the page offers no way to paint one: it lists these apart
            })
        return entries


def _task_description(task: str) -> str:
    try:
        return get_task(task).description
    except UserError:
        return ""


def _needs_mask(task: str) -> bool:
    """Whether the task's model takes a mask beside the image (inpainting), which an upload cannot carry."""
    try:
        return bool(get_task(task).extra_channels)
    except UserError:
        return False
