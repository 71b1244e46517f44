"""Bundle a blind model trained on the real-photo corpus: EMA weights plus a model card that scores it
per degradation strength on the corpus' held-out photos and states the issue's floors, met or missed."""

from __future__ import annotations

import os
import platform
import re
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from serpentir.atomic_write import write_text_atomic
from serpentir.checkpoint import load_checkpoint, read_metadata, save_checkpoint
from serpentir.errors import UserError
from serpentir.infer import WEIGHTS_DIR

from .blind_validation import evaluate_strengths, floors, load_val_photos, strengths_table
from .regression_gate import class_scores, history_row, history_table, read_history, regression_gate


def _utc(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def bundle_blind_run(checkpoint: str | Path, corpus_dir: str | Path, *, train_started: float, train_ended: float,
                     wall_time_s: float, out_dir: str | Path = WEIGHTS_DIR, max_side: int | None = 768,
                     configs: list[str] | None = None, history: str | None = None, notes: str = "",
                     produced_by: str | None = None, progress: bool = True, force: bool = False) -> tuple[Path, Path]:
    """Write out_dir/<task>.safetensors (EMA weights) and out_dir/<task>.md; returns both paths.

    Where out_dir already holds a model of this task, both are scored on the same photos and the
    candidate is refused (UserError, nothing written) unless it is not worse in any degradation class
    and its sharp photos stay at or above 38 dB (regression_gate); `force` bundles it anyway, verdict in the card.

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
    old_weights, card_path = out_dir / f"{task.name}.safetensors", out_dir / f"{task.name}.md"
    history_rows = read_history(card_path)
    gate = ""
    if old_weights.is_file():
        old_model, _, _ = load_checkpoint(old_weights, use_ema=True)
        old_results = evaluate_strengths(old_model, task, photos, progress=progress)
        verdict = regression_gate(results, old_results)
        gate = ("\n## Against the model it replaces\n\nSame photos and strengths, per class (mean over its strengths):\n\n"
                + "\n".join(verdict.lines) + ("\n" if verdict.passed else "\n\nBundled although worse (--force).\n"))
        if not verdict.passed and not force:
            raise UserError(f"{checkpoint}: not bundled, it is worse than {old_weights} somewhere: "
                            + "; ".join(line[2:] for line in verdict.lines))
        if not history_rows:  # the first table: the replaced model's own row, from its card
            old_card = card_path.read_text() if card_path.is_file() else ""
            date = re.search(r"Validation: (\d{4}-\d\d-\d\d)", old_card)
            minutes = re.search(r"wall time ([\d.]+) min", old_card)
            history_rows.append(history_row(date.group(1) if date else "unknown", str(read_metadata(old_weights)["step"]),
                                       float(minutes.group(1)) if minutes else float("nan"), class_scores(old_results)))
    history_rows.append(history_row(_utc(eval_started)[:10], str(meta["step"]), wall_time_s / 60, class_scores(results)))
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
{gate}
{history_table(history_rows)}
{notes}
Produced by `{produced_by or f'python scripts/bundle_weights.py {checkpoint} --corpus {corpus_dir}'}`.
"""
    write_text_atomic(card_path, card)
    return weights, card_path


def _max_side(rows: list[dict]) -> int:
    return max(max(int(r["width"]), int(r["height"])) for r in rows)
