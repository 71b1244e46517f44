"""One model's memory and latency, measured in a child process: `python -m serpentir_lab.bench.measure`.

A process of its own per memory measurement makes the peak mean something (the peak RSS of a process
never goes down) and lets the parent kill a run that is too slow or too big without dying with it;
latency is timed in the inference-memory child, after that run (which serves as its warm-up).
The child reports on stdout, one JSON line per event, each prefixed with EVENT_PREFIX:
  {"event": "ready"} once the model is built, then for each task
  {"event": "start", "task": T, "t": monotonic time} and {"event": "result", "task": T, "value": V,
  "elapsed": seconds, ...}
  or {"event": "failed", "task": T, "status": "OOM" | "error", "message": M}.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import statistics
import sys
import time

from serpentir.infer import process_status_bytes, reset_peak_rss

EVENT_PREFIX = "@serpentir-bench "
TASKS = ("infer_memory", "train_memory", "warmup", "latency")
OOM_EXIT_CODE = 3
WARMUP_SIZE = 32  # a small forward first, so thread pools and lazy initialisation are not "peak memory"


def emit(event: str, **fields) -> None:
    """Send one event to the parent."""
    print(EVENT_PREFIX + json.dumps({"event": event, **fields}), flush=True)


OOM_MESSAGES = ("out of memory", "can't allocate memory", "cannot allocate memory", "not enough memory")
# oneDNN reports a failed scratch allocation only as this; trusted as OOM only under our own limit
LIMITED_OOM_MESSAGES = ("could not create a primitive",)


def is_out_of_memory(error: BaseException, limited: bool = False) -> bool:
    """Allocation failures as torch and Python spell them (CPU allocator, CUDA, address-space limit)."""
    if isinstance(error, MemoryError):
        return True
    if limited and isinstance(error, SystemError) and "without exception set" in str(error):
        return True  # C code under the address-space limit whose failed allocation never raised
    text = str(error).lower()
    markers = OOM_MESSAGES + (LIMITED_OOM_MESSAGES if limited else ())
    return isinstance(error, RuntimeError) and any(s in text for s in markers)


class Meter:
    """Peak memory growth of one step above the idle process: RSS high-water mark on CPU, allocator on CUDA."""

    def __init__(self, device: str, memory_limit_gb: float | None):
        self.device, self.memory_limit_gb = device, memory_limit_gb

    def __enter__(self) -> "Meter":
        import torch

        gc.collect()
        if self.device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.baseline = torch.cuda.memory_allocated()
        else:
            reset_peak_rss()
            self.baseline = process_status_bytes("VmRSS")
            self.saved_limit = resource.getrlimit(resource.RLIMIT_AS)
            if self.memory_limit_gb is not None:  # room for this step only, on top of what is mapped now
                limit = process_status_bytes("VmSize") + int(self.memory_limit_gb * 2**30)
                resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
        return self

    def __exit__(self, *exc) -> None:
        import torch

        if self.device == "cuda":
            torch.cuda.synchronize()
            self.peak_bytes = torch.cuda.max_memory_allocated() - self.baseline
        else:
            self.peak_bytes = process_status_bytes("VmHWM") - self.baseline
            if self.memory_limit_gb is not None:
                resource.setrlimit(resource.RLIMIT_AS, self.saved_limit)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True)
    p.add_argument("--size", type=int, required=True)
    p.add_argument("--model-kwargs", type=json.loads, default={}, help="JSON options on top of the registered ones")
    p.add_argument("--in-channels", type=int, default=3)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--tasks", required=True, help=f"comma-separated, in order, from {', '.join(TASKS)}")
    p.add_argument("--repeats", type=int, default=5, help="timed latency runs at most")
    p.add_argument("--latency-budget", type=float, default=float("inf"),
                   help="seconds: stop timing further runs once another would not fit")
    p.add_argument("--memory-limit-gb", type=float, default=None,
                   help="CPU: address space a step may add (RLIMIT_AS); beyond it allocation fails -> OOM")
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args(argv)
    tasks = args.tasks.split(",")
    unknown = set(tasks) - set(TASKS)
    if unknown:
        p.error(f"unknown tasks {sorted(unknown)}")

    import torch

    from serpentir.models import create_model

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = create_model(args.model, **{**args.model_kwargs, "in_channels": args.in_channels}).to(device)
    x = torch.rand(1, args.in_channels, args.size, args.size, device=device)

    def infer() -> None:
        with torch.inference_mode():
            model.eval()
            model(x)
        if device.type == "cuda":
            torch.cuda.synchronize()

    def train_step() -> None:
        model.train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        (model(x) - target).abs().mean().backward()
        optimizer.step()

    with torch.no_grad():  # warm-up on a crop; also tells how many channels come out
        model.eval()
        out_channels = model(x[..., :WARMUP_SIZE, :WARMUP_SIZE]).shape[1]
    target = torch.rand(1, out_channels, args.size, args.size, device=device)  # any target: cost, not accuracy
    emit("ready")

    for task in tasks:
        started = time.monotonic()  # CLOCK_MONOTONIC is system-wide: the parent's deadline uses it too
        emit("start", task=task, t=started)
        try:
            if task in ("infer_memory", "train_memory"):
                with Meter(args.device, args.memory_limit_gb) as meter:
                    (infer if task == "infer_memory" else train_step)()
                emit("result", task=task, value=meter.peak_bytes / 2**20, elapsed=time.monotonic() - started)
            elif task == "warmup":
                infer()
                emit("result", task=task, value=None, elapsed=time.monotonic() - started)
            else:
                times: list[float] = []
                start = time.perf_counter()
                while len(times) < args.repeats:
                    t0 = time.perf_counter()
                    infer()
                    times.append(time.perf_counter() - t0)
                    if time.perf_counter() - start + times[-1] > args.latency_budget:
                        break
                emit("result", task=task, value=1000 * statistics.median(times), runs=len(times),
                     elapsed=time.monotonic() - started)
        except Exception as e:  # noqa: BLE001 - every failure becomes a cell, not a crash
            oom = is_out_of_memory(e, limited=args.memory_limit_gb is not None and task.endswith("memory"))
            emit("failed", task=task, status="OOM" if oom else "error", message=f"{type(e).__name__}: {e}"[:500])
            return OOM_EXIT_CODE if oom else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
