"""Run a study: train (or resume) every variant under one protocol, score all on the same photos.

A finished variant is never trained again and its scores are cached in its run folder, keyed by
what they were measured on, so adding a variant to a study, or rerunning an interrupted one, only
does the missing work. Each scored variant is also recorded beside the report (records.py): on a
machine without its run folder, the record stands in for it. The report is rewritten after every
variant, so a long study can be read while it runs.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

from serpentir.atomic_write import write_text_atomic
from serpentir.checkpoint import read_metadata
from serpentir.errors import UserError
from serpentir.train import RunFolderBusy, last_checkpoint

from ..compare import CompareRow, architecture_cost, measure_run, protocol_differences
from .records import read_record, write_record
from .report import write_report
from .result import KNOBS, VariantResult
from .study import Study, Variant

SCORES_FILE = "ablate_scores.json"
SCORES_VERSION = 2  # 2: per-photo scores and band PSNRs kept; a cache without them is measured again


def finished_step(run_dir: Path) -> int:
    """The step of a run folder's last checkpoint, 0 if it has none."""
    checkpoint = last_checkpoint(run_dir)
    return int(read_metadata(checkpoint)["step"]) if checkpoint.is_file() else 0


def run_budget_spent(run_dir: Path, budget_min: float | None) -> bool:
    """Whether a run with a time budget has already stepped for all of it (the seconds its checkpoint keeps),
    by the trainer's own rule (serpentir.train.time_budget_spent)."""
    from serpentir.checkpoint.format import load_train_state
    from serpentir.train import time_budget_spent

    checkpoint = last_checkpoint(run_dir)
    if budget_min is None or not checkpoint.is_file():
        return False
    return time_budget_spent(float(load_train_state(checkpoint).get("train_seconds", 0.0)), budget_min)


def run_finished(variant: Variant, run_dir: Path, step: int) -> bool:
    """Whether the run, whose last checkpoint is at `step`, has made all its steps or spent its time budget
    (an interrupted run has not)."""
    return step >= variant.config.steps or run_budget_spent(run_dir, variant.config.time_budget_min)


def train_variant(variant: Variant, run_dir: Path, *, progress: bool = True) -> None:
    """Train until the config's step count or time budget, resuming exactly from the run's last checkpoint;
    a finished run is left alone (no data loaded, no model built)."""
    from serpentir.train import train

    done = finished_step(run_dir)
    if run_finished(variant, run_dir, done):
        return
    config = variant.config
    config.out_dir, config.resume, config.progress = str(run_dir), done > 0, progress
    config.tensorboard = False
    train(config)


def model_knobs(checkpoint: Path) -> tuple[str, dict]:
    """The architecture name and its study knobs, read from the model the checkpoint describes.

    The model is built on the meta device from the checkpoint's metadata: its full configuration
    (registered defaults included) without reading the weights, which measure_run loads anyway.
    """
    import torch

    from serpentir.models import create_model

    arch = read_metadata(checkpoint)["model"]
    with torch.device("meta"):
        model = create_model(arch["name"], **arch.get("kwargs", {}))
    config = getattr(model, "config", None)
    knobs = {k: getattr(config, k, None) for k in KNOBS}
    return arch["name"], knobs


def scoring_key(cache_key: dict) -> dict:
    """What a variant's scores depend on, wherever its photos lie: what its record must match."""
    return {**{k: v for k, v in cache_key.items() if k != "test_dir"}, "scores": SCORES_VERSION}


def score_variant(name: str, run_dir: Path, items, cache_key: dict, *, latency_size: int | None, threads: int | None,
                  repeats: int = 3) -> VariantResult:
    """Cost and scores of a trained variant, from its cache when measured on the same photos at the same step."""
    checkpoint = last_checkpoint(run_dir)
    key = {**cache_key, "step": finished_step(run_dir), "latency_size": latency_size, "threads": threads,
           "memory": True, "scores": SCORES_VERSION}
    cache = run_dir / SCORES_FILE
    if cache.is_file():
        try:
            saved = json.loads(cache.read_text())
            if saved.get("key") == key and saved["row"]["per_photo"]:
                # scores come from the cache; the cost is counted again, so a formula change reaches old runs
                params, flops, macs = architecture_cost(read_metadata(checkpoint)["model"], (512,))
                row = CompareRow(**{**saved["row"], "params": params, "flops": flops, "macs": macs})
                return VariantResult(name, saved["model"], saved["knobs"], row, run_dir, saved.get("notes", []))
        except (ValueError, KeyError, TypeError):
            pass  # an unreadable or older cache (no per-photo scores, no MACs) is measured again
    model, knobs = model_knobs(checkpoint)
    row, notes = measure_run(name, checkpoint, items, flop_sizes=(512,), latency_size=latency_size,
                             repeats=repeats, threads=threads, memory=True)
    write_text_atomic(cache, json.dumps({"key": key, "model": model, "knobs": knobs, "row": asdict(row),
                                         "notes": notes}, indent=1, default=str))
    return VariantResult(name, model, knobs, row, run_dir, notes)


def scored_items(study: Study, task, seed: int) -> list:
    """The scored photos, degraded with their fixed seeds: whole, or the centre test_crop square of each.

    A photo smaller than test_crop is refused, not padded: a mirrored border is not a photo.
    """
    from PIL import Image

    from serpentir.image_io import list_images
    from serpentir.image_io.files import named_read_errors

    from ..release.bundle import validation_items

    if not study.test_dir.is_dir():
        raise UserError(f"{study.path}: test photo folder not found: {study.test_dir}")
    if study.test_crop:
        for path in list_images(study.test_dir):
            with named_read_errors(path), Image.open(path) as im:
                width, height = im.size
            if min(width, height) < study.test_crop:
                raise UserError(f"{study.path}: test photo {path} is {width}x{height}, smaller than "
                                f"test_crop {study.test_crop} in a side")
    return validation_items(task, study.test_dir, seed, crop_size=study.test_crop)


def tuning_items(study: Study, task, seed: int) -> tuple[list | None, str]:
    """The photos the classical reference's strength is chosen on (None: the scored ones) and what to call them.

    The validation split whenever the test photos are another folder, so no choice is made on them.
    """
    from ..release.bundle import validation_items

    if study.tune_dir.resolve() == study.test_dir.resolve():
        return None, f"the scored photos themselves (`{study.test_dir}` is also the validation split)"
    if not study.tune_dir.is_dir():
        raise UserError(f"{study.path}: validation photo folder not found: {study.tune_dir} (the base's "
                        "data.val_dir: the classical reference is tuned on it)")
    items = validation_items(task, study.tune_dir, seed, crop_size=study.test_crop)
    crops = f", centre {study.test_crop}-px crops" if study.test_crop else ", whole photos"
    return items, f"the validation split `{study.tune_dir}` ({len(items)} photos{crops}), not the test photos"


def run_study(study: Study, out_dir: str | Path, *, runs_dir: str | Path | None = None, only: list[str] | None = None,
              latency_size: int | None = 512, threads: int | None = None, train: bool = True,
              command: str = "", progress: bool = True) -> list[VariantResult]:
    """Train and score the study's variants (those named in `only`, if given); write the report after each."""
    from tqdm import tqdm

    from serpentir.checkpoint import build_task
    from serpentir.metrics import BAND_EDGES

    from ..release.bundle import reference_scores

    out_dir = Path(out_dir)
    runs_dir = Path(runs_dir) if runs_dir is not None else out_dir / "runs"
    names = [v.name for v in study.variants]
    for name in only or []:
        if name not in names:
            raise UserError(f"{study.path}: no variant {name!r} (variants: {', '.join(names)})")
    tasks = {json.dumps({"name": v.config.task.name, "params": v.config.task.params}, sort_keys=True)
             for v in study.variants}
    if len(tasks) > 1:
        raise UserError(f"{study.path}: the variants learn different tasks ({'; '.join(sorted(tasks))}): "
                        "a study compares variants of one task")
    first = study.variants[0].config.task
    task = build_task(first.name, first.params)
    seed = study.variants[0].config.seed
    items = scored_items(study, task, seed)
    photos = [name for name, *_ in items]
    tune, tuned_on = tuning_items(study, task, seed)
    references = reference_scores(task, items, tune)
    cache_key = {"test_dir": str(study.test_dir.resolve()), "photos": photos, "seed": seed,
                 "test_crop": study.test_crop, "bands": list(BAND_EDGES)}

    selected = [v for v in study.variants if not only or v.name in only]
    own = {o.split("=")[0] for v in study.variants for o in v.overrides}  # what the variants are meant to vary
    results: list[VariantResult] = []
    configs: dict[str, dict] = {}  # each scored variant's saved training config
    scoring = scoring_key(cache_key)
    timing = {"latency_size": latency_size, "threads": threads}
    for variant in tqdm(selected, desc=f"ablate {study.name}", unit="variant", disable=not progress):
        run_dir = study.run_dir(variant, runs_dir)
        finished = run_finished(variant, run_dir, step := finished_step(run_dir))
        recorded = read_record(out_dir, variant, scoring, timing) if step == 0 else None
        if recorded is not None:  # scored on a machine whose run folders this one lacks: not trained again
            results.append(recorded.result)
            configs[variant.name] = recorded.config
        else:
            if train:
                try:
                    train_variant(variant, run_dir, progress=progress)
                except RunFolderBusy as busy:  # a second job on the same study: it goes on to the next variant
                    print(f"{variant.name}: left out for now, {busy}", file=sys.stderr)
                    continue
            elif not finished:  # --no-train: finished runs only
                if step:
                    print(f"{variant.name}: not reported, its run stopped at step {step} of {variant.config.steps} "
                          "(run without --no-train to finish it)", file=sys.stderr)
                continue
            results.append(score_variant(variant.name, run_dir, items, cache_key, latency_size=latency_size,
                                         threads=threads))
            metadata = read_metadata(last_checkpoint(run_dir))
            configs[variant.name] = metadata["config"]
            write_record(out_dir, variant, results[-1], scoring=scoring, timing=timing, arch=metadata["model"],
                         config=metadata["config"])
        differences = [d for d in protocol_differences(configs) if d.split(":")[0] not in own]
        write_report(study, results, references, task, out_dir, photos=photos, differences=differences,
                     command=command, threads=threads, latency_size=latency_size, tuned_on=tuned_on)
    if not results:
        raise UserError(f"{study.path}: no variant has been trained yet (run without --no-train)")
    return results
