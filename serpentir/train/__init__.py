"""Training, evaluation and inference: the layer between models/data/metrics/degradations and the CLI.

    config.py          TrainConfig dataclasses <-> YAML, dotted overrides, one-line errors for bad keys
    train.py           the loop: AdamW, warm-up + cosine, grad clip, EMA, AMP (CUDA), DDP, exact resume
    schedule.py        the learning rate as a pure function of the step
    data_order.py      the batches as a pure function of (seed, step, rank)
    rng.py             generator states for checkpoints; seeded forks per sample
    ema.py             the moving average of the weights
    distributed.py     torchrun environment -> process group (nccl / gloo), or a single process
    checkpoint.py      safetensors weights + metadata, training state, atomic writes, load_checkpoint
    build.py           model and task from names, channels following the task
    run_log.py         train_log.csv / val_log.csv, TensorBoard when installed
    evaluate.py        PSNR / SSIM / LPIPS per image and their means; eval of a checkpoint on a folder
    restore.py         a checkpoint applied to image files and folders (resumable, keep-going batches)
    inference.py       a model applied to one image: grey/RGB, masks, whole or tiled (tiling.py)
    memory.py          calibrated peak memory of a forward vs the memory available: when to tile
    api.py             serpentir.load_model / serpentir.restore for PIL images, arrays and tensors
    degrade_folder.py  a degraded copy of a folder for benchmarks
"""

from .checkpoint import load_checkpoint, load_weights, read_metadata, save_checkpoint
from .config import TrainConfig, config_from_dict, config_to_dict, load_config, save_config
from .degrade_folder import degrade_folder
from .evaluate import evaluate_checkpoint, evaluate_model, format_summary, summarize
from .restore import restore_path, restore_tensor
from .schedule import lr_at
from .train import TrainResult, train

__all__ = [
    "TrainConfig", "TrainResult", "config_from_dict", "config_to_dict", "degrade_folder", "evaluate_checkpoint",
    "evaluate_model", "format_summary", "load_checkpoint", "load_config", "load_weights", "lr_at", "read_metadata",
    "restore_path", "restore_tensor", "save_checkpoint", "save_config", "summarize", "train",
]
