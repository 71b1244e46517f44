"""Checkpoints: the file format that training writes and inference, serving and export read.

    format.py  safetensors weights (model + EMA) with the recipe in their metadata, a digest checked on
               load, the training state beside them; load_checkpoint rebuilds the network from the file
    build.py   a model and a task from their names, the model's channels following the task
"""

from .build import build_model, build_task
from .format import (DIGEST_KEY, add_digest, load_checkpoint, load_train_state, load_weights, read_metadata,
                     save_checkpoint, state_path_for, tensors_digest)

__all__ = ["DIGEST_KEY", "add_digest", "build_model", "build_task", "load_checkpoint", "load_train_state",
           "load_weights", "read_metadata", "save_checkpoint", "state_path_for", "tensors_digest"]
