"""Turn a training run into a bundled model: EMA weights in safetensors plus a model card that
scores it on the held-out photos against the degraded input and the task's classical method."""

from __future__ import annotations

import math
import os
import platform
from pathlib import Path

import torch

from serpentir.atomic_write import write_text_atomic
from serpentir.checkpoint import load_checkpoint, read_metadata, save_checkpoint
from serpentir.infer import WEIGHTS_DIR, restore_tensor, score


def _mean(values: list[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return sum(finite) / len(finite) if finite else math.nan


ValidationItem = tuple[str, torch.Tensor, torch.Tensor, int]  # (name, degraded, clean, degradation seed)


def validation_items(task, val_dir: Path, seed: int = 0, crop_size: int | None = None) -> list[ValidationItem]:
    """Every photo in val_dir (whole, or its centre crop_size square), degraded as validation degrades it,
    with the seed it was degraded with."""
    from serpentir.data import ImageFolderDataset

    dataset = ImageFolderDataset(val_dir, task, crop_size=crop_size, train=False, channels=3, seed=seed)
    return [(it["name"], it["input"], it["target"], it["seed"]) for it in (dataset[i] for i in range(len(dataset)))]


def photo_scores(named_pairs) -> list[dict]:
    """Per (name, restored, clean) triple, images (C, H, W) or (1, C, H, W): its PSNR/SSIM/LPIPS and band
    PSNRs (serpentir.metrics.band_psnr), so a study can pair photos across arms instead of only means."""
    from serpentir.metrics import band_psnr

    rows = []
    for name, pred, clean in named_pairs:
        pred, clean = pred.reshape(1, *pred.shape[-3:]), clean.reshape(1, *clean.shape[-3:])
        row = {k: v[0] for k, v in score(pred, clean, with_lpips=True).items()}
        rows.append({"photo": name, **row, "band_psnr": [float(b) for b in band_psnr(pred, clean)[0]]})
    return rows


def mean_of(rows: list[dict]) -> dict[str, float]:
    """Mean PSNR/SSIM/LPIPS of photo_scores rows (NaNs, e.g. LPIPS of tiny photos, left out)."""
    return {m: _mean([r[m] for r in rows]) for m in ("psnr", "ssim", "lpips")}


def reference_scores(task, items: list[ValidationItem], tune_items: list[ValidationItem] | None = None) -> dict:
    """Scores of the degraded input and of the task's classical method: means, and per photo under "per_photo".

    The classical method's strength is tuned on tune_items when given (a validation split, so that the
    photos scored are never the photos chosen on), else on the scored items themselves, as the model
    cards do (the reference gets every advantage).
    """
    from serpentir.classical import classical_restore, tune_strength

    strength, _ = tune_strength(task, [(d, c, s) for _, d, c, s in (items if tune_items is None else tune_items)])
    with torch.no_grad():
        inputs = photo_scores((n, d[: c.shape[0]].clamp(0, 1), c) for n, d, c, _ in items)
        classical = photo_scores((n, classical_restore(task, d, s, strength), c) for n, d, c, s in items)
    return {"input": {**mean_of(inputs), "per_photo": inputs},
            "classical": {**mean_of(classical), "strength": strength, "per_photo": classical}}


def model_photo_scores(model, items: list[ValidationItem]) -> list[dict]:
    """Per-photo scores of a model's restorations of the items (whole items, no tiling)."""
    with torch.no_grad():
        return photo_scores((n, restore_tensor(model, d[None]), c) for n, d, c, _ in items)


def model_scores(model, items: list[ValidationItem]) -> dict[str, float]:
    """Mean scores of a model's restorations of the items (whole photos, no tiling)."""
    return mean_of(model_photo_scores(model, items))


def score_against_references(model, task, val_dir: Path, seed: int = 0) -> dict[str, dict[str, float]]:
    """Mean PSNR/SSIM/LPIPS of the model, the degraded input and the classical method on whole val photos."""
    items = validation_items(task, val_dir, seed)
    return {"model": model_scores(model, items), **reference_scores(task, items)}


def list_names(folder: Path) -> list[str]:
    from serpentir.image_io import list_images

    return [p.name for p in list_images(folder)]


def bundle_run(checkpoint: str | Path, *, wall_time_s: float, out_dir: str | Path = WEIGHTS_DIR,
               train_dir: Path | None = None, val_dir: Path | None = None, configs: list[str] | None = None,
               history: str | None = None, produced_by: str | None = None) -> tuple[Path, Path]:
    """Write out_dir/<task>.safetensors (EMA weights only) and out_dir/<task>.md; returns both paths.

    configs: the training configs to run in order to retrain it (default configs/bundled/<task>.yaml);
    history: what came before this checkpoint's run, for a model fine-tuned from an earlier stage;
    produced_by: the command that bundled it, for the card (default: the script on this checkpoint).
    """
    from serpentir.classical import classical_method_name
    from serpentir.data import VAL_PHOTOS, sample_images_dir

    meta = read_metadata(checkpoint)
    model, task, _ = load_checkpoint(checkpoint, use_ema=True)
    samples = sample_images_dir()
    train_dir, val_dir = train_dir or samples / "train", val_dir or samples / "val"
    scores = score_against_references(model, task, val_dir)
    out_dir = Path(out_dir)
    weights = save_checkpoint(out_dir / f"{task.name}.safetensors", model=model, task=task, step=meta["step"],
                              config=meta["config"])
    params = sum(p.numel() for p in model.parameters())
    method = classical_method_name(task)
    strength = scores["classical"].pop("strength")

    configs = configs or [f"configs/bundled/{task.name}.yaml"]
    retrain = ", then ".join(f"`serpentir train {c}`" for c in configs)

    def line(label: str, s: dict) -> str:
        return f"| {label} | {s['psnr']:.2f} | {s['ssim']:.4f} | {s['lpips']:.4f} |"

    card = f"""# {task.name}: {model.arch['name']} ({params / 1e6:.2f}M parameters)

Bundled weights `{weights.name}` ({weights.stat().st_size / 1e6:.1f} MB, the EMA weights of step {meta['step']}).
Retrain: {retrain} ({'the configurations it was trained with, in order' if len(configs) > 1 else 'the configuration it was trained with'}).

- Task: `{task.name}` {dict(task.params)}: {task.description}
- Model: `{model.arch['name']}` with options {model.arch['kwargs'] or '{}'}
- Data: the bundled sample photos (real photos shipped by scikit-image and matplotlib), random crops,
  flips and rotations. Training photos: {', '.join(list_names(train_dir))}.
  Validation photos (held out, whole images): {', '.join(list_names(val_dir))} (`serpentir.data.VAL_PHOTOS` = {', '.join(VAL_PHOTOS)}).
- Steps: {meta['step']}{f' ({history})' if history else ''}, batch {meta['config'].get('data', {}).get('batch_size', '?')}, crops {meta['config'].get('data', {}).get('crop_size', '?')} px
- Wall time: {wall_time_s / 60:.1f} min on {platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}, no GPU

## Validation (mean over the held-out photos; LPIPS-alex v0.1, lower is better)

| | PSNR (dB) | SSIM | LPIPS |
|---|---:|---:|---:|
{line('degraded input', scores['input'])}
{line(f'{method}' + (f' (strength {strength:.3g}, tuned on these photos)' if strength is not None else ''), scores['classical'])}
{line(model.arch['name'], scores['model'])}

Model minus input: {scores['model']['psnr'] - scores['input']['psnr']:+.2f} dB; model minus {method}: {scores['model']['psnr'] - scores['classical']['psnr']:+.2f} dB.
Produced by `{produced_by or f"python scripts/bundle_weights.py {checkpoint}"}`.
"""
    card_path = out_dir / f"{task.name}.md"
    write_text_atomic(card_path, card)
    return weights, card_path
