"""Issue 19's GPU measurements: peak training memory, inference latency and training throughput.

    python benchmarks/gpu/gpu_bench.py [--device cuda] [--out docs/gpu] [--budget-s 330]
    python benchmarks/gpu/gpu_bench.py --device cpu --smoke --out /tmp/gpu_smoke   # tiny sizes, seconds

Cases:
  memory      one AdamW training step (batch 1, float32) of swinir-b and serpent-l at 256 and 512 px:
              the paper's "5x less GPU memory". peak_mib = torch.cuda.max_memory_allocated over the
              step (weights, gradients and optimizer state included; on the CPU the resident-set
              high-water mark above the process before the step), step_mib = the part above the
              idle model and optimizer.
  latency     inference of one 512-px image, median of timed runs after warm-up (CUDA events).
  throughput  training steps on 128-px crops, batch 8: crop pixels per second.

Every case runs inside its own try: an out-of-memory or any other error is a row with its error,
never the end of the run, and cases left when the time budget is spent are rows saying so. The
report (gpu_bench.csv, gpu_bench.md) records the device, torch and CUDA versions and which scan
backend each Serpent case ran (mamba_ssm's CUDA kernel, or the PyTorch 'chunked' fallback).
"""

from __future__ import annotations

import argparse
import csv
import gc
import math
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch

COLUMNS = ("kind", "model", "size", "batch", "value", "unit", "peak_mib", "step_mib", "params_m", "scan_backend",
           "device", "seconds", "error")


@dataclass(frozen=True)
class Case:
    """One measurement: what (kind), of which model, on what input."""

    kind: str  # memory | latency | throughput
    model: str
    size: int
    batch: int


@dataclass
class Row:
    """One line of the report: a number, or the error that took its place."""

    kind: str
    model: str
    size: int
    batch: int
    value: float = math.nan
    unit: str = ""
    peak_mib: float = math.nan
    step_mib: float = math.nan
    params_m: float = math.nan
    scan_backend: str = "-"
    device: str = ""
    seconds: float = 0.0
    error: str = ""


@dataclass(frozen=True)
class Plan:
    """Sizes and repeat counts: the full GPU plan, or the smoke plan that only checks the machinery."""

    memory_models: tuple[str, str] = ("swinir-b", "serpent-l")  # (the larger, the smaller) for the ratio
    memory_sizes: tuple[int, ...] = (256, 512)
    speed_models: tuple[str, ...] = ("serpent-t", "serpent-b", "serpent-l", "nafnet-t", "swinir-t", "swinir-b")
    latency_size: int = 512
    crop: int = 128
    train_batch: int = 8
    warmup: int = 3
    repeats: int = 10

    def cases(self) -> list[Case]:
        memory = [Case("memory", m, s, 1) for s in self.memory_sizes for m in self.memory_models]
        latency = [Case("latency", m, self.latency_size, 1) for m in self.speed_models]
        throughput = [Case("throughput", m, self.crop, self.train_batch) for m in self.speed_models]
        return memory + latency + throughput


# the smallest model of each family at 16 px, one timed run: every code path in seconds on a CPU
SMOKE = Plan(memory_models=("swinir-t", "serpent-t"), memory_sizes=(16,),
             speed_models=("serpent-t", "nafnet-t", "swinir-t"), latency_size=16, crop=16, train_batch=1,
             warmup=1, repeats=1)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _rss_bytes(field: str) -> int:
    """VmRSS / VmHWM of this process from /proc (the CPU stand-in for the allocator's peak)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _reset_peak(device: torch.device) -> int:
    """Start a peak measurement; returns the baseline in bytes."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        return torch.cuda.memory_allocated(device)
    try:  # writing 5 resets the kernel's VmHWM to the current RSS
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    return _rss_bytes("VmRSS")


def _peak(device: torch.device) -> int:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device)
    return _rss_bytes("VmHWM")


def scan_backend_of(model: torch.nn.Module, device: torch.device) -> str:
    """The scan backend a Serpent model runs on this device ('-' for a model without a scan)."""
    backend = getattr(getattr(model, "config", None), "scan_backend", None)
    if backend is None or getattr(model.config, "mixer", "scan") != "scan":
        return "-"
    from serpentir.ops import resolve_backend_2d

    return resolve_backend_2d(backend, torch.empty(1, 1, 1, 1, device=device))


def _train_step(model: torch.nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, target: torch.Tensor) -> None:
    opt.zero_grad(set_to_none=True)
    (model(x) - target).abs().mean().backward()
    opt.step()


def _timed(fn: Callable[[], None], device: torch.device, warmup: int, repeats: int) -> list[float]:
    """Seconds of each of `repeats` calls after `warmup` untimed ones (CUDA events on a GPU)."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) / 1000)
        else:
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    return times


def run_case(case: Case, plan: Plan, device: torch.device) -> Row:
    """Measure one case; never raises for a failure of the case itself."""
    import serpentir

    row = Row(case.kind, case.model, case.size, case.batch, device=str(device))
    t0 = time.perf_counter()
    model = opt = None
    try:
        torch.manual_seed(0)
        model = serpentir.create_model(case.model).to(device)
        row.params_m = round(sum(p.numel() for p in model.parameters()) / 1e6, 3)
        row.scan_backend = scan_backend_of(model, device)
        x = torch.rand(case.batch, 3, case.size, case.size, device=device)
        if case.kind == "latency":
            model.eval()
            with torch.no_grad():
                times = _timed(lambda: model(x), device, plan.warmup, plan.repeats)
            row.value, row.unit = round(statistics.median(times) * 1000, 3), "ms"
        else:
            model.train()
            opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
            target = torch.rand_like(x)
            step = lambda: _train_step(model, opt, x, target)  # noqa: E731
            if case.kind == "memory":
                step()  # allocates the optimizer state: what stays from step to step
                opt.zero_grad(set_to_none=True)
                baseline = _reset_peak(device)
                step()
                peak = _peak(device)
                if device.type == "cuda":
                    row.peak_mib = round(peak / 2**20, 1)
                    row.step_mib = round((peak - baseline) / 2**20, 1)
                else:  # the RSS high-water mark only sees growth, not what was resident before
                    row.step_mib = round(max(peak - baseline, 0) / 2**20, 1)
                    row.peak_mib = round(_rss_bytes("VmHWM") / 2**20, 1)
                row.value, row.unit = row.peak_mib, "MiB"
            else:
                times = _timed(step, device, plan.warmup, plan.repeats)
                row.value = round(case.batch * case.size ** 2 / statistics.median(times), 1)
                row.unit = "crop px/s"
    except Exception as e:  # noqa: BLE001: a case's failure is its result
        text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        oom = isinstance(e, MemoryError) or "out of memory" in text.lower()
        row.error = ("OOM: " if oom else f"{type(e).__name__}: ") + text[:200]
    finally:
        del model, opt
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    row.seconds = round(time.perf_counter() - t0, 2)
    return row


def environment(device: torch.device) -> dict:
    """What ran: device, versions, and which scan backends this installation offers there."""
    from serpentir.ops import available_backends

    try:
        import mamba_ssm  # noqa: F401
        mamba = f"installed ({getattr(mamba_ssm, '__version__', '?')})"
    except Exception as e:  # noqa: BLE001: missing or broken, either way not used
        mamba = f"not usable ({type(e).__name__})"
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    return {"device": f"{device} ({name})", "torch": torch.__version__, "cuda": torch.version.cuda or "-",
            "python": platform.python_version(), "mamba_ssm": mamba,
            "scan backends here": ", ".join(available_backends(device))}


def run(plan: Plan, device: torch.device, budget_s: float, log: Callable[[str], None] = print) -> list[Row]:
    """Every case of the plan in order; once budget_s is spent the rest are rows marked skipped."""
    rows, start = [], time.perf_counter()
    for case in plan.cases():
        if time.perf_counter() - start > budget_s:
            rows.append(Row(case.kind, case.model, case.size, case.batch, device=str(device),
                            error=f"skipped: time budget of {budget_s:.0f} s spent"))
        else:
            rows.append(run_case(case, plan, device))
        r = rows[-1]
        log(f"{r.kind:10s} {r.model:10s} {r.size:4d}px x{r.batch}: {r.value} {r.unit} {r.error} ({r.seconds} s)")
    return rows


def _fmt(value: float) -> str:
    return "" if isinstance(value, float) and math.isnan(value) else str(value)


def memory_ratios(rows: list[Row], big: str, small: str) -> dict[int, float]:
    """peak(big) / peak(small) at each size where both were measured: the paper's "5x less memory"."""
    peaks = {(r.model, r.size): r.peak_mib for r in rows if r.kind == "memory" and not r.error}
    return {size: round(peaks[(big, size)] / peaks[(small, size)], 2)
            for (model, size) in peaks if model == big and (small, size) in peaks and peaks[(small, size)] > 0}


def write_report(rows: list[Row], env: dict, out: Path, plan: Plan, smoke: bool) -> tuple[Path, Path]:
    """gpu_bench.csv (one row per case) and gpu_bench.md (the same, by kind, with the environment)."""
    out.mkdir(parents=True, exist_ok=True)
    csv_path, md_path = out / "gpu_bench.csv", out / "gpu_bench.md"
    with csv_path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        for r in rows:
            writer.writerow({k: _fmt(v) for k, v in asdict(r).items()})
    lines = ["# GPU benchmark (issue 19)" + (" - SMOKE RUN, tiny sizes, numbers mean nothing" if smoke else ""), "",
             *(f"- {k}: {v}" for k, v in env.items()), "",
             "Produced by `benchmarks/gpu/run.sh` (benchmarks/gpu/gpu_bench.py). float32, AdamW; every model "
             "from `serpentir.create_model` with its registered defaults.", ""]
    titles = {"memory": "Peak memory of one training step (batch 1)", "latency": "Inference latency (batch 1, median)",
              "throughput": "Training throughput"}
    for kind, title in titles.items():
        lines += [f"## {title}", "",
                  "| model | size | batch | value | unit | step MiB | params (M) | scan backend | error |",
                  "|---|---|---|---|---|---|---|---|---|"]
        lines += [f"| {r.model} | {r.size} | {r.batch} | {_fmt(r.value)} | {r.unit} | {_fmt(r.step_mib)} | "
                  f"{_fmt(r.params_m)} | {r.scan_backend} | {r.error} |" for r in rows if r.kind == kind]
        lines.append("")
    big, small = plan.memory_models
    ratios = memory_ratios(rows, big, small)
    lines += [f"## {big} / {small} peak memory" + (" (CPU: resident-set high-water marks, not comparable)"
                                                     if "cpu" in env["device"] else ""), ""]
    lines += ([f"- {size} px: {ratio}x" for size, ratio in sorted(ratios.items())]
              or ["- not measured (see errors above)"])
    md_path.write_text("\n".join(lines) + "\n")
    return csv_path, md_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto", help="cuda, cpu or auto (cuda when available)")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes and repeats: checks the machinery, seconds on a CPU")
    parser.add_argument("--out", default="docs/gpu", help="report folder (default docs/gpu)")
    parser.add_argument("--budget-s", type=float, default=330.0, help="stop starting cases after this many seconds")
    args = parser.parse_args(argv)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    if device.type == "cuda" and not torch.cuda.is_available():
        print("no CUDA device here: use --device cpu --smoke to check the script", file=sys.stderr)
        return 2
    plan = SMOKE if args.smoke else Plan()
    rows = run(plan, device, args.budget_s)
    csv_path, md_path = write_report(rows, environment(device), Path(args.out), plan, args.smoke)
    print(f"wrote {csv_path} and {md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
