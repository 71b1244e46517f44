"""Training: any registered model on any task, one process or many (torchrun), resumable exactly.

    config.py        TrainConfig dataclasses <-> YAML, dotted overrides, one-line errors for bad keys;
                     each field declares whether it changes what is learnt
    learnt.py        what a run learns from (its settings less the not-learnt ones) and its digest
    loop.py          the loop: AdamW, warm-up + cosine, grad clip, EMA, AMP (CUDA), DDP, exact resume
    run_folder.py    where a run keeps its config, logs and checkpoints (the one definition); one
                     training at a time per folder
    schedule.py      the learning rate as a pure function of the step
    data_order.py    the batches as a pure function of (seed, step, rank)
    rng.py           generator states for checkpoints; seeded forks per sample
    ema.py           the moving average of the weights
    distributed.py   torchrun environment -> process group (nccl / gloo), or a single process
    run_log.py       train_log.csv / val_log.csv, TensorBoard when installed

Checkpoints are read and written by serpentir.checkpoint; validation scores come from serpentir.infer.
"""

from .config import (TrainConfig, apply_override, config_from_dict, config_to_dict, load_config, save_config,
                     validate_config)
from .loop import TrainResult, train
from .learnt import config_fields, flatten_config, learning_digest, learnt_settings, not_learnt_keys
from .run_folder import (CHECKPOINT_DIR, CONFIG, LAST, TRAIN_LOG, VAL_LOG, RunFolderBusy, checkpoint_of,
                         last_checkpoint, numbered_checkpoint, numbered_checkpoints, run_dir_of)
from .schedule import lr_at, time_budget_spent

__all__ = [
    "CHECKPOINT_DIR", "CONFIG", "LAST", "RunFolderBusy", "TRAIN_LOG", "TrainConfig", "TrainResult", "VAL_LOG", "apply_override",
    "checkpoint_of", "config_fields", "config_from_dict", "config_to_dict", "flatten_config", "last_checkpoint",
    "learning_digest", "learnt_settings", "load_config", "lr_at", "not_learnt_keys", "numbered_checkpoint",
    "numbered_checkpoints", "run_dir_of", "save_config", "time_budget_spent", "train", "validate_config",
]
