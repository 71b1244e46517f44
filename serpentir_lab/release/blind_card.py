"""Bundle a blind model trained on the real-photo corpus: EMA weights plus a model card that scores it
per degradation strength on the corpus' held-out photos and states the issue's floors, met or missed."""

from __future__ import annotations

import os
import platform
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from serpentir.atomic_write import write_text_atomic
from serpentir.checkpoint import load_checkpoint, read_metadata, save_checkpoint
from serpentir.infer import WEIGHTS_DIR

from .blind_validation import evaluate_strengths, floors, load_val_photos, strengths_table


def _utc(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def bundle_blind_run(checkpoint: str | Path, corpus_dir: str | Path, *, train_started: float, train_ended: float,
                     wall_time_s: float, out_dir: str | Path = WEIGHTS_DIR, max_side: int | None = 768,
                     configs: list[str] | None = None, history: str | None = None, notes: str = "",
                     produced_by: str | None = None, progress: bool = True) -> tuple[Path, Path]:
    """Write out_dir/<task>.safetensors (EMA weights) and out_dir/<task>.md; returns both paths.

    train_started / train_ended: epoch seconds of the training's first and last file (for the card);
    max_side: the held-out photos' long side is capped to this for validation (whole photos, area
    averaged), because whole multi-megapixel photos take minutes each on a CPU.
    """
    from ..corpus import read_manifest

    corpus_dir = Path(corpus_dir)
    rows = read_manifest(corpus_dir)
    meta = read_metadata(checkpoint)
    model, task, _ = load_checkpoint(checkpoint, use_ema=True)
    photos = load_val_photos(corpus_dir / "val", max_side)
    eval_started = time.time()
    results = evaluate_strengths(model, task, photos, progress=progress)
    eval_s = time.time() - eval_started

    out_dir = Path(out_dir)
    weights = save_checkpoint(out_dir / f"{task.name}.safetensors", model=model, task=task, step=meta["step"],
                              config=meta["config"])
    params = sum(p.numel() for p in model.parameters())
    configs = configs or [f"configs/bundled/{task.name}.yaml"]
    data = meta["config"].get("data", {})
    train = [r for r in rows if r["split"] == "train"]
    val = [r for r in rows if r["split"] == "val"]
    megapixels = sum(int(r["width"]) * int(r["height"]) for r in train) / 1e6
    sizes = ", ".join(f"{n} {tuple(p.shape[-1:-3:-1])}" for n, p in photos)
    card = f"""# {task.name}: {model.arch['name']} ({params / 1e6:.2f}M parameters)

Bundled weights `{weights.name}` ({weights.stat().st_size / 1e6:.1f} MB, the EMA weights of step {meta['step']}).
Retrain: `serpentir corpus build CORPUS --max-side {_max_side(rows)}`, then
{', then '.join(f'`serpentir train {c} data.train_dir=CORPUS/train data.val_dir=CORPUS/val`' for c in configs)}.

- Task: `{task.name}` {dict(task.params)}: {task.description} (ranges: `serpentir/degradations/blind.py`)
- Model: `{model.arch['name']}` with options {model.arch['kwargs'] or '{}'}
- Data: the real-photo corpus (`serpentir corpus build`): {len(train)} training photos ({megapixels:.1f} megapixels:
  {', '.join(r['name'] for r in train)}), random crops, flips and rotations.
  Held out (whole photos, never cropped into training): {', '.join(r['name'] for r in val)}.
- Steps: {meta['step']}{f' ({history})' if history else ''}, batch {data.get('batch_size', '?')}, crops {data.get('crop_size', '?')} px
- Training: {_utc(train_started)} to {_utc(train_ended)}, wall time {wall_time_s / 60:.1f} min on {platform.machine()},
  {os.cpu_count()} CPU cores shared with other jobs, one torch thread, torch {torch.__version__}, no GPU
- Validation: {_utc(eval_started)}, {eval_s / 60:.1f} min, one torch thread

## Validation on the held-out photos, per degradation strength

Whole photos, long side capped at {max_side} px (area averaging; sizes W x H: {sizes}); each strength
applied to every photo with the code training draws from (`task.apply`). PSNR/SSIM/LPIPS are means
over the photos (LPIPS-alex v0.1, lower is better); gain is output minus input PSNR; the worst photo
is the one with the smallest gain (for sharp photos: the lowest output PSNR); the colour shift is the
largest |mean image - mean clean| of any channel of any photo, in 8-bit levels, for the degraded
input and for the output (noise clipped at black and white shifts the input's mean by itself).

{strengths_table(results)}

## The issue's floors

{chr(10).join(floors(results, general=task.name == 'general'))}
{notes}
Produced by `{produced_by or f'python scripts/bundle_weights.py {checkpoint} --corpus {corpus_dir}'}`.
"""
    card_path = out_dir / f"{task.name}.md"
    write_text_atomic(card_path, card)
    return weights, card_path


def _max_side(rows: list[dict]) -> int:
    return max(max(int(r["width"]), int(r["height"])) for r in rows)
