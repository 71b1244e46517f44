"""Inference: a model applied to tensors, pictures, files and folders, within the memory there is.

    api.py            serpentir.load_model / serpentir.restore for PIL images, arrays and tensors
    catalogue.py      the bundled weights: which tasks ship a model, where, and what input each expects
    files.py          a checkpoint applied to image files and folders (planned outputs, resumable batches)
    inference.py      a model applied to one image: grey/RGB, masks, whole or tiled
    tiling.py         overlapping tiles blended so seams do not show
    memory.py         calibrated peak memory of a forward vs the memory available: when to tile
    evaluate.py       PSNR / SSIM / LPIPS per image and their means; eval of a checkpoint on a folder
    degrade_folder.py a degraded copy of a folder (inputs for eval and restore)
    demo.py           `serpentir demo`: degrade a real photo, restore it, save the three side by side
"""

from .api import load_model, restore
from .catalogue import (DEFAULT_TASK, FIXED_STRENGTH, WEIGHTS_DIR, bundled_checkpoints, bundled_tasks, bundled_weights,
                        expects)
from .degrade_folder import degrade_folder
from .evaluate import (degraded_items, evaluate_checkpoint, evaluate_model, format_summary, paired_items, score,
                       summarize)
from .files import RestoreJob, RestoreReport, plan_restore, restore_path, side_by_side
from .inference import restore_picture, restore_tensor
from .memory import process_status_bytes, reset_peak_rss
from .tiling import run_tiled

__all__ = [
    "DEFAULT_TASK", "FIXED_STRENGTH", "RestoreJob", "RestoreReport", "WEIGHTS_DIR", "bundled_checkpoints", "bundled_tasks",
    "bundled_weights", "degrade_folder", "degraded_items", "evaluate_checkpoint", "evaluate_model", "expects",
    "format_summary", "load_model", "paired_items", "plan_restore", "process_status_bytes", "reset_peak_rss",
    "restore", "restore_path", "restore_picture", "restore_tensor", "run_tiled", "score", "side_by_side", "summarize",
]
