"""Trained runs side by side: quality on the same held-out photos and cost measured the same way.

The question it answers is the paper's: is Serpent on par with the baselines at a fraction of their
cost? So every run must have learnt the same task under the same protocol (differences in the
training config are reported, never hidden), all are scored on the same whole photos with the same
degradation seeds, beside the degraded input and the task's classical method, and each gets its
parameters, FLOPs and MACs (scans by formula), CPU latency (in a child process, as `serpentir bench` does)
and the wall time its training took.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from serpentir.checkpoint import load_checkpoint, load_train_state, read_metadata
from serpentir.errors import UserError
from serpentir.train import TRAIN_LOG, checkpoint_of, flatten_config, not_learnt_keys, run_dir_of

from .bench.cost import FAILURES, BenchSettings, Cell, count_params_and_flops, run_child


@dataclass
class CompareRow:
    """One trained run: what it is, what it costs, how well it restores."""

    run: str
    model: str
    params: int
    flops: dict[int, int]  # square size -> forward FLOPs
    latency_ms: Cell
    train_seconds: float | None
    step: int
    psnr: float
    ssim: float
    lpips: float
    infer_peak_mb: float | None = None  # inference peak memory at latency_size, when measured
    macs: dict[int, int] = field(default_factory=dict)  # square size -> forward multiply-accumulates
    per_photo: list[dict] = field(default_factory=list)  # photo_scores rows: photo, psnr, ssim, lpips, band_psnr


@dataclass
class Comparison:
    """The rows, the references every row is read against, and what the reader must know."""

    task: str
    rows: list[CompareRow]
    references: dict[str, dict]  # "input" and "classical" -> psnr/ssim/lpips means, and per_photo rows
    classical_method: str
    latency_size: int
    threads: int | None
    val_photos: list[str]
    notes: list[str] = field(default_factory=list)


def training_seconds(run_dir: Path, batch_size: int, world_size: int) -> float | None:
    """Wall time of the training loop, rebuilt from train_log.csv: each row's steps x images / images_per_s.

    Survives resumes (each row keeps the rate it was logged with) and includes the periodic
    validation and checkpoints that fell inside the logged intervals.
    """
    log = run_dir / TRAIN_LOG
    if not log.is_file():
        return None
    total, previous = 0.0, 0
    with open(log, newline="") as f:
        for row in csv.DictReader(f):
            step, rate = int(row["step"]), float(row["images_per_s"])
            if rate > 0:
                total += (step - previous) * batch_size * world_size / rate
            previous = step
    return total


def protocol_differences(configs: dict[str, dict]) -> list[str]:
    """'key: run=value, ...' for every training setting that is not the same in all runs.

    A key a run's config lacks (saved by an older serpentir) counts as its default value.
    """
    from serpentir.train import TrainConfig, config_to_dict

    defaults = flatten_config(config_to_dict(TrainConfig()))
    flat = {run: {**defaults, **flatten_config(c)} for run, c in configs.items()}
    not_protocol = ("model.", *not_learnt_keys())  # the model is what is compared; the rest must match
    keys = sorted({k for f in flat.values() for k in f if not k.startswith(not_protocol)})
    differences = []
    for key in keys:
        values = {run: f.get(key, "(unset)") for run, f in flat.items()}
        if len({repr(v) for v in values.values()}) > 1:
            differences.append(f"{key}: " + ", ".join(f"{run}={v}" for run, v in values.items()))
    return differences


def compare_runs(runs: list[str | Path], *, val_dir: str | Path | None = None, flop_sizes: tuple[int, ...] = (256, 512),
                 latency_size: int | None = 512, repeats: int = 3, threads: int | None = None,
                 timeout: float = 900.0, seed: int = 0, progress: bool = True) -> Comparison:
    """Score and cost every run; runs must share one task (name and parameters)."""
    from tqdm import tqdm

    from serpentir.checkpoint import build_task
    from serpentir.classical import classical_method_name
    from serpentir.data import sample_images_dir
    from serpentir.image_io import list_images

    from .release.bundle import reference_scores, validation_items

    if not runs:
        raise UserError("name at least one run folder or checkpoint to compare")
    checkpoints = {str(run): checkpoint_of(run) for run in runs}
    metas = {run: read_metadata(path) for run, path in checkpoints.items()}
    tasks = {run: m["task"] for run, m in metas.items()}
    first_run, task_spec = next(iter(tasks.items()))
    for run, spec in tasks.items():
        if spec != task_spec:
            raise UserError(f"{run} learnt task {spec}, but {first_run} learnt {task_spec}: compare runs of one task")
    val_dir = Path(val_dir) if val_dir is not None else sample_images_dir() / "val"

    task = build_task(task_spec["name"], task_spec.get("params", {}))
    items = validation_items(task, val_dir, seed)
    references = reference_scores(task, items)
    notes = [f"training settings differ: {d}" for d in protocol_differences({r: m["config"] for r, m in metas.items()})]

    rows = []
    for run in tqdm(checkpoints, desc="compare", unit="run", disable=not progress):
        row, run_notes = measure_run(run, checkpoints[run], items, flop_sizes=flop_sizes, latency_size=latency_size,
                                     repeats=repeats, threads=threads, timeout=timeout)
        rows.append(row)
        notes += run_notes
    for row in rows:
        if isinstance(row.latency_ms, str) and row.latency_ms in FAILURES:
            notes.append(f"{row.run}: latency {row.latency_ms}")
    return Comparison(task=task.name, rows=rows, references=references, classical_method=classical_method_name(task),
                      latency_size=latency_size or 0, threads=threads,
                      val_photos=[p.name for p in list_images(val_dir)], notes=notes)


def architecture_cost(arch: dict, sizes: tuple[int, ...]) -> tuple[int, dict[int, int], dict[int, int]]:
    """Parameters, and forward FLOPs and MACs per square size, of a checkpoint's model description
    ({"name", "kwargs"}), counted now: a pure function of the architecture under the current formula."""
    kwargs = dict(arch.get("kwargs", {}))
    in_channels = int(kwargs.pop("in_channels", 3))
    params, flops, macs = 0, {}, {}
    for size in sizes:
        params, count = count_params_and_flops(arch["name"], size, in_channels, kwargs)
        flops[size], macs[size] = count.flops, count.macs
    return params, flops, macs


def measure_latency(arch: dict, latency_size: int | None, *, repeats: int = 3, threads: int | None = None,
                    timeout: float = 900.0, memory: bool = False) -> tuple[Cell, float | None]:
    """(latency in ms, inference peak MB or None: not asked for or not measured) of the architecture at
    latency_size, in a fresh process (the weights do not matter); (None, None) when latency_size is None."""
    if not latency_size:
        return None, None
    kwargs = dict(arch.get("kwargs", {}))
    in_channels = int(kwargs.pop("in_channels", 3))
    settings = BenchSettings(models=(arch["name"],), sizes=(latency_size,), repeats=repeats, timeout=timeout,
                             in_channels=in_channels, threads=threads)
    tasks = (["infer_memory"] if memory else []) + ["warmup", "latency"]
    outcomes = run_child(arch["name"], latency_size, tasks, settings, kwargs)
    peak = outcomes["infer_memory"].value if memory else None
    return outcomes["latency"].value, peak if isinstance(peak, (int, float)) else None


def measure_run(run: str, checkpoint: Path, items, *, flop_sizes: tuple[int, ...] = (256, 512),
                latency_size: int | None = 512, repeats: int = 3, threads: int | None = None,
                timeout: float = 900.0, memory: bool = False) -> tuple[CompareRow, list[str]]:
    """One trained run's row (cost and scores on the validation items) and what a reader must know about it.

    memory: also the inference peak memory at latency_size, measured first in the same fresh process.
    """
    from .release.bundle import mean_of, model_photo_scores

    notes = []
    model, _, meta = load_checkpoint(checkpoint)
    arch = meta["model"]
    params, flops, macs = architecture_cost(arch, flop_sizes)
    latency, peak = measure_latency(arch, latency_size, repeats=repeats, threads=threads, timeout=timeout,
                                    memory=memory)
    run_dir = run_dir_of(checkpoint)
    config = meta["config"]
    steps_wanted = config.get("steps")
    if steps_wanted and meta["step"] < steps_wanted and not config.get("time_budget_min"):
        notes.append(f"{run} stopped at step {meta['step']} of {steps_wanted}")
    try:
        state = load_train_state(checkpoint)
    except (UserError, OSError):
        state = {}
    batch_size = config.get("data", {}).get("batch_size")
    # a time-budgeted run: the trainer's own clock; others: rebuilt from the log as they always were
    seconds = state.get("train_seconds") if config.get("time_budget_min") else None
    if seconds is None and batch_size:
        seconds = training_seconds(run_dir, int(batch_size), int(state.get("world_size", 1)))
    photos = model_photo_scores(model, items)
    row = CompareRow(run=run, model=arch["name"], params=params, flops=flops, latency_ms=latency,
                     train_seconds=seconds, step=meta["step"], **mean_of(photos),
                     infer_peak_mb=peak, macs=macs, per_photo=photos)
    return row, notes
