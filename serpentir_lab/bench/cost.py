"""The cost benchmark's measurements: parameters, FLOPs/MACs, peak memory and latency per model and size.

Parameters and FLOPs are counted here on the meta device (seconds, no memory, any size). Memory and
latency are measured in child processes (serpentir_lab.bench.measure), one per (model, size) for
inference and one for the training step, so every peak is a process's own and a run that is too
big or too slow becomes an "OOM" or "timeout" cell instead of taking the benchmark down.
"""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Union

import torch

from serpentir.models import create_model

from .flops import FlopCount, count_flops
from .measure import EVENT_PREFIX, OOM_EXIT_CODE

DEFAULT_SIZES = (128, 256, 512, 1024, 2048)
FAILURES = ("OOM", "timeout", "error")
Cell = Union[float, str, None]  # a measurement, one of FAILURES, or None where not measured

# measured column -> the child task that measures it
COLUMN_TASKS = {"infer_peak_mb": "infer_memory", "train_peak_mb": "train_memory", "latency_ms": "latency"}


@dataclass(frozen=True)
class BenchSettings:
    """What to measure, where, and how long a single measurement may take."""

    models: tuple[str, ...]
    sizes: tuple[int, ...] = DEFAULT_SIZES
    device: str = "cpu"
    measure_memory: bool = True
    measure_latency: bool = True
    timeout: float = 300.0  # seconds per measurement (one memory step, or all timed latency runs)
    repeats: int = 5  # timed latency runs after the warm-up, fewer if they would not fit in the timeout
    memory_limit_gb: float | None = None  # CPU: memory a measured step may add before it counts as OOM
    in_channels: int = 3
    threads: int | None = None
    measure_up_to: int | None = None  # sizes above this get counts only: FLOPs are cheap, running is not
    startup_timeout: float = 180.0  # importing torch and building the model, before any measurement


@dataclass
class CostRow:
    """One model at one square size: counts, and measurements or why they are missing."""

    model: str
    size: int
    params: int
    flops: int
    macs: int
    scan_flops: int = 0  # the part of flops counted by formula, not by FlopCounterMode
    scan_formula: str = ""
    infer_peak_mb: Cell = None
    train_peak_mb: Cell = None
    latency_ms: Cell = None
    latency_runs: int | None = None
    lower_bounds: dict[str, float] = field(default_factory=dict)  # column -> a value the failure proves exceeded
    notes: list[str] = field(default_factory=list)


@dataclass
class TaskOutcome:
    """A child's answer for one task."""

    value: Cell
    runs: int | None = None
    message: str = ""
    inherited: bool = False  # failed because an earlier task in the same child failed


def count_params_and_flops(name: str, size: int, in_channels: int = 3,
                           model_kwargs: dict | None = None) -> tuple[int, FlopCount]:
    """Parameters and forward FLOPs/MACs of a registered model (with options) on a (1, C, size, size) input, on meta."""
    with torch.device("meta"):
        model = create_model(name, **{**(model_kwargs or {}), "in_channels": in_channels})
    params = sum(p.numel() for p in model.parameters())
    return params, count_flops(model, (1, in_channels, size, size))


def _child_command(model: str, size: int, tasks: list[str], s: BenchSettings, model_kwargs: dict | None) -> list[str]:
    cmd = [sys.executable, "-m", "serpentir_lab.bench.measure", "--model", model,
           "--model-kwargs", json.dumps(model_kwargs or {}), "--size", str(size),
           "--in-channels", str(s.in_channels), "--device", s.device, "--tasks", ",".join(tasks),
           "--repeats", str(s.repeats), "--latency-budget", str(0.8 * s.timeout)]
    if s.memory_limit_gb is not None:
        cmd += ["--memory-limit-gb", str(s.memory_limit_gb)]
    if s.threads:
        cmd += ["--threads", str(s.threads)]
    return cmd


def _pump(stream, put: Callable[[str | None], object]) -> None:
    """Forward a child's output line by line as it comes, then None when the stream closes."""
    for line in stream:
        put(line)
    put(None)


def run_child(model: str, size: int, tasks: list[str], settings: BenchSettings,
              model_kwargs: dict | None = None) -> dict[str, TaskOutcome]:
    """Run tasks in one child; each task gets `settings.timeout` seconds from its start, then the child dies.

    model_kwargs: options on top of the registered configuration (a trained run's own).
    """
    proc = subprocess.Popen(_child_command(model, size, tasks, settings, model_kwargs), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    events: queue.Queue = queue.Queue()
    stderr_tail: deque = deque(maxlen=20)
    threads = [threading.Thread(target=_pump, args=(proc.stdout, events.put), daemon=True),
               threading.Thread(target=_pump, args=(proc.stderr, stderr_tail.append), daemon=True)]
    for t in threads:
        t.start()
    outcomes: dict[str, TaskOutcome] = {}
    current: str | None = None
    deadline = time.monotonic() + settings.startup_timeout
    timed_out = False
    while True:
        try:
            line = events.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            timed_out = True
            proc.kill()
            break
        if line is None:
            break
        if not line.startswith(EVENT_PREFIX):
            continue
        event = json.loads(line[len(EVENT_PREFIX):])
        if event["event"] == "start":
            current = event["task"]
            deadline = event["t"] + settings.timeout  # the child's clock: no credit for our own scheduling delays
        elif event["event"] == "result":
            if event.get("elapsed", 0.0) > settings.timeout:  # finished, but past the limit all the same
                timed_out = True
                proc.kill()
                break
            outcomes[event["task"]] = TaskOutcome(event["value"], event.get("runs"))
            current = None
        elif event["event"] == "failed":
            outcomes[event["task"]] = TaskOutcome(event["status"], message=event.get("message", ""))
    proc.wait()
    for t in threads:
        t.join(timeout=5)

    if timed_out:
        status = "timeout"
        message = f"{current} killed after {settings.timeout:g} s" if current else "child did not start in time"
    elif proc.returncode == OOM_EXIT_CODE:
        status, message = "OOM", ""
    elif proc.returncode < 0 and (-proc.returncode == signal.SIGKILL or settings.memory_limit_gb is not None):
        status, message = "OOM", f"killed by signal {-proc.returncode} (out-of-memory killer or memory limit)"
    else:
        status, message = "error", "".join(line for line in stderr_tail if line).strip()[-500:]
    for task in tasks:  # what did not finish inherits why the child stopped
        if task in outcomes:
            if outcomes[task].value in FAILURES:
                status, message = outcomes[task].value, f"{task} failed first"
        elif task == current:
            outcomes[task] = TaskOutcome(status, message=message)
        else:
            outcomes[task] = TaskOutcome(status, message=message, inherited=True)
    return outcomes


def _plan_children(columns: list[str]) -> list[list[str]]:
    """Inference memory and latency share a child (the memory run is the warm-up); training gets its own."""
    first: list[str] = []
    if "infer_peak_mb" in columns:
        first.append("infer_memory")
    if "latency_ms" in columns:
        first += ([] if first else ["warmup"]) + ["latency"]
    children = [first] if first else []
    if "train_peak_mb" in columns:
        children.append(["train_memory"])
    return children


def run_benchmark(settings: BenchSettings, progress: bool = True,
                  on_row: Callable[[list[CostRow]], None] | None = None) -> list[CostRow]:
    """Every model at every size: counts always, memory and latency as the settings ask.

    on_row(rows so far) runs after every cell, so a long run can write partial results as it goes.
    """
    from tqdm import tqdm

    wanted = ([c for c in ("infer_peak_mb", "train_peak_mb") if settings.measure_memory]
              + (["latency_ms"] if settings.measure_latency else []))
    sizes = sorted(set(settings.sizes))
    rows: list[CostRow] = []
    failed: dict[tuple[str, str], tuple[str, int, float | None]] = {}  # (model, column) -> (status, size, bound)
    bar = tqdm(total=len(settings.models) * len(sizes), desc="bench", unit="cell", disable=not progress,
               file=sys.stderr)
    for name in settings.models:
        for size in sizes:
            bar.set_postfix_str(f"{name} {size}x{size}")
            params, flops = count_params_and_flops(name, size, settings.in_channels)
            row = CostRow(name, size, params, flops.flops, flops.macs, flops.scan_flops, flops.scan_formula)
            in_range = settings.measure_up_to is None or size <= settings.measure_up_to
            to_measure = []
            for column in wanted if in_range else []:
                if (name, column) in failed:  # cost only grows with size: a failure stays a failure
                    status, at, bound = failed[name, column]
                    setattr(row, column, status)
                    if bound is not None:
                        row.lower_bounds[column] = bound
                    row.notes.append(f"{column}: not run, {status} already at {at}x{at}")
                else:
                    to_measure.append(column)
            for tasks in _plan_children(to_measure):
                outcomes = run_child(name, size, tasks, settings)
                for column, task in COLUMN_TASKS.items():
                    if task not in outcomes:
                        continue
                    out = outcomes[task]
                    setattr(row, column, out.value)
                    if column == "latency_ms":
                        row.latency_runs = out.runs
                    if out.value in FAILURES:
                        row.notes.append(f"{column}: {out.value}" + (f" ({out.message})" if out.message else ""))
                        if out.value == "error":  # a bug, not a size limit: larger sizes still get their try
                            continue
                        bound = None if out.inherited else _lower_bound(column, out.value, settings)
                        if bound is not None:
                            row.lower_bounds[column] = bound
                        failed[name, column] = (out.value, size, bound)
            rows.append(row)
            bar.update()
            if on_row is not None:
                on_row(rows)
    bar.close()
    return rows


def _lower_bound(column: str, status: str, settings: BenchSettings) -> float | None:
    """What a failure proves: an OOM under our own limit exceeded it; a timed-out timed run exceeded the timeout."""
    if status == "OOM" and column != "latency_ms" and settings.memory_limit_gb is not None:
        return settings.memory_limit_gb * 1024
    if status == "timeout" and column == "latency_ms":
        return settings.timeout * 1000
    return None
