"""Time and measure the selective-scan backends on this CPU; write docs/scan_benchmark.md.

    THP_MEM_ALLOC_ENABLE=1 python benchmarks/bench_scan.py            # full run, ~15-30 min on 2 cores
    python benchmarks/bench_scan.py --quick                           # small sizes only, a smoke test

Every configuration runs in its own subprocess, so one configuration's freed memory or warm caches
never flatter the next, and its peak memory is the process's own resident high-water mark
(VmHWM from /proc/self/status, reset through /proc/self/clear_refs just before the measured call)
minus the resident size before the inputs were allocated: it counts the inputs, the outputs, the
gradients and every temporary. Times are the minimum over repeats (after one warm-up call), wall
clock, with torch's default thread count. The machine is shared with other users: expect noise.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
N_STATE = 16
DIMS = (96, 192, 384)
LENGTHS = (4096, 16384, 65536)
REF_MAX_LENGTH = 4096  # the per-step Python loop takes seconds already there
MODEL_SIZES = (256, 512)
REPEAT_BUDGET_S = 4.0  # stop repeating a measurement once this much time was spent on it


# ------------------------------------------------------------------------------------------------
# measurements, each run in a child process


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)


def _peak_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _best_time(fn, budget_s: float = REPEAT_BUDGET_S, max_reps: int = 5) -> float:
    """Minimum wall time in ms over up to max_reps calls (the caller has warmed up already)."""
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < max_reps and (not times or time.perf_counter() - start < budget_s):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times) * 1e3


def child_scan(backend: str, dim: int, length: int) -> dict:
    import torch  # THP_MEM_ALLOC_ENABLE comes from run_child's environment

    from serpentir.ops import available_backends, selective_scan

    if backend == "cpu":
        assert "cpu" in available_backends("cpu"), "compiled kernel unavailable"
    base_rss = _rss_bytes()  # before the inputs: the peak below counts them, once
    g = torch.Generator().manual_seed(0)
    b = 1
    leaves = dict(
        u=torch.randn(b, dim, length, generator=g),
        delta=torch.randn(b, dim, length, generator=g) * 0.5 - 1.0,
        A=-(torch.rand(dim, N_STATE, generator=g) * 2 + 0.1),
        B=torch.randn(b, N_STATE, length, generator=g),
        C=torch.randn(b, N_STATE, length, generator=g),
        D=torch.randn(dim, generator=g),
        z=torch.randn(b, dim, length, generator=g),
        delta_bias=torch.randn(dim, generator=g) * 0.1,
    )
    for v in leaves.values():
        v.requires_grad_()
    inputs = leaves
    input_bytes = sum(v.numel() * v.element_size() for v in inputs.values())
    output_bytes = b * dim * length * 4  # y
    grad_bytes = input_bytes  # one gradient per input, same shapes

    def forward():
        with torch.no_grad():
            return selective_scan(**inputs, delta_softplus=True, backend=backend)

    def forward_backward():
        for v in leaves.values():
            v.grad = None
        y = selective_scan(**leaves, delta_softplus=True, backend=backend)
        y.sum().backward()  # dy is a broadcast scalar: no extra (b, dim, L) cotangent tensor

    # memory first, on a fresh process: the measured fwd+bwd call is also the warm-up
    rss_before = _rss_bytes()
    _reset_peak()
    t0 = time.perf_counter()
    forward_backward()
    first_call_ms = (time.perf_counter() - t0) * 1e3
    peak = _peak_bytes() - base_rss
    extra = _peak_bytes() - rss_before
    for v in leaves.values():
        v.grad = None
    heavy = backend == "ref" or first_call_ms > 8000
    fb_ms = first_call_ms if heavy else _best_time(forward_backward)
    forward()
    f_ms = _best_time(forward, max_reps=3 if heavy else 5)
    return dict(backend=backend, dim=dim, length=length, fwd_ms=f_ms, fwd_bwd_ms=fb_ms, peak_bytes=peak,
                extra_bytes=extra, input_bytes=input_bytes, output_bytes=output_bytes, grad_bytes=grad_bytes,
                threads=torch.get_num_threads())


def child_machine() -> dict:
    """What this machine can do: torch.exp throughput and copy bandwidth, both on all threads."""
    import serpentir  # noqa: F401
    import torch

    x = -torch.rand(64 * 2**20)
    y = torch.empty_like(x)
    torch.exp(x, out=y)
    exp_ms = _best_time(lambda: torch.exp(x, out=y), max_reps=7)
    src = torch.rand(64 * 2**20)
    dst = torch.empty_like(src)
    dst.copy_(src)
    copy_ms = _best_time(lambda: dst.copy_(src), max_reps=7)
    n = x.numel()
    return dict(exp_per_s=n / exp_ms * 1e3, copy_bytes_per_s=2 * n * 4 / copy_ms * 1e3, threads=torch.get_num_threads())


def child_model(backend: str, size: int) -> dict:
    os.environ["SERPENTIR_SCAN_BACKEND"] = backend
    import serpentir
    import torch

    torch.manual_seed(0)
    model = serpentir.create_model("serpent-b")
    x = torch.rand(1, 3, size, size)
    target = torch.rand(1, 3, size, size)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)

    def forward():
        model.eval()
        with torch.no_grad():
            model(x)

    def train_step():
        model.train()
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.l1_loss(model(x), target).backward()
        opt.step()

    t0 = time.perf_counter()
    forward()  # warm-up; when it alone takes long, it is the measurement
    first_ms = (time.perf_counter() - t0) * 1e3
    f_ms = first_ms if first_ms > 20_000 else _best_time(forward, max_reps=3)
    rss_before = _rss_bytes()
    _reset_peak()
    t0 = time.perf_counter()
    train_step()  # warm-up, and the memory measurement
    first_ms = (time.perf_counter() - t0) * 1e3
    train_extra = _peak_bytes() - rss_before
    t_ms = first_ms if first_ms > 20_000 else _best_time(train_step, max_reps=3)
    return dict(backend=backend, size=size, fwd_ms=f_ms, train_ms=t_ms, train_extra_bytes=train_extra)


# ------------------------------------------------------------------------------------------------
# orchestration and the report


def run_child(args: list[str], timeout: float) -> dict | None:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", *args]
    env = dict(os.environ, SERPENTIR_DISABLE_CPU_KERNEL="0")
    env.setdefault("THP_MEM_ALLOC_ENABLE", "1")
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)
    except subprocess.TimeoutExpired:
        print(f"  {' '.join(args)}: timed out after {timeout:.0f} s", flush=True)
        return None
    if out.returncode != 0:
        print(f"  {' '.join(args)}: failed\n{out.stderr[-2000:]}", flush=True)
        return None
    result = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"  {' '.join(args)}: {result}", flush=True)
    return result


def mb(x: float) -> str:
    return f"{x / 2**20:.0f}"


def ms(x: float | None) -> str:
    return "-" if x is None else (f"{x:.1f}" if x < 100 else f"{x:.0f}")


def write_report(path: Path, machine: dict, scans: list[dict], models: list[dict], command: str, wall_s: float,
                 load: str) -> None:
    by = {(r["backend"], r["dim"], r["length"]): r for r in scans}
    lines = [
        "# Selective scan on the CPU: measured",
        "",
        f"Written by `benchmarks/bench_scan.py` ({wall_s / 60:.0f} min). Command: `{command}`",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores ({machine.get('threads')} torch threads), "
        f"torch {__import__('torch').__version__}, "
        f"THP_MEM_ALLOC_ENABLE={os.environ.get('THP_MEM_ALLOC_ENABLE', '1')}; load average "
        f"{load}. The machine (2 cores) is shared with other developers working at the same time: "
        "times are the minimum over repeats but can be inflated when someone else runs, most for "
        "backends that run many small parallel regions (OpenMP threads spin at every barrier while "
        "another process holds a core), so ratios within one run say more than absolute values. "
        "An earlier run of this script beside another benchmark (load average about 4, and an earlier "
        "kernel about 1.4x slower than this one) measured the "
        "`cpu` backend 2-4x slower and `chunked` up to 15x slower.",
        "",
        "Method: one subprocess per configuration; batch 1, fp32, N = 16, softplus on, D and z given, "
        "`y.sum().backward()` for fwd+bwd (a broadcast cotangent, no extra tensor). Peak memory = the "
        "process's resident high-water mark (VmHWM, reset through /proc/self/clear_refs) during the first "
        "fwd+bwd call, minus the resident size before the inputs were allocated. *inputs + outputs* = "
        "u, delta, z, B, C, A, D, bias, y and the gradient of every input (what any implementation must "
        "hold at the end of fwd+bwd). `ref` runs only at L = 4096 (a Python loop per step).",
        "",
        f"Machine throughput: torch.exp {machine['exp_per_s'] / 1e9:.2f} G/s, "
        f"copy {machine['copy_bytes_per_s'] / 1e9:.1f} GB/s "
        "(read + write bytes, 256 MB tensors).",
        "",
        "## Forward and forward+backward, ms; peak memory of fwd+bwd, MB",
        "",
        "| dim | L | backend | fwd | fwd+bwd | peak MB | inputs+outputs MB | peak / (inputs+outputs) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for dim in DIMS:
        for length in LENGTHS:
            for backend in ("cpu", "chunked", "ref"):
                r = by.get((backend, dim, length))
                if r is None:
                    continue
                io = r["input_bytes"] + r["output_bytes"] + r["grad_bytes"]
                lines.append(f"| {dim} | {length} | {backend} | {ms(r['fwd_ms'])} | {ms(r['fwd_bwd_ms'])} | "
                             f"{mb(r['peak_bytes'])} | {mb(io)} | {r['peak_bytes'] / io:.2f} |")
    lines += ["", "## Compiled kernel (`cpu`) against `chunked`, and its throughput", "",
              "exp/s = dim * L * N exponentials per forward (the backward recomputes them once more: "
              "2x per fwd+bwd); bytes/s = the forward's compulsory traffic (read u, delta, z, B, C; write y).",
              "",
              "| dim | L | fwd speed-up | fwd+bwd speed-up | fwd G exp/s | fwd+bwd G exp/s | fwd GB/s | "
              "% of torch.exp rate | % of copy bandwidth |",
              "|---|---|---|---|---|---|---|---|---|"]
    for dim in DIMS:
        for length in LENGTHS:
            c, k = by.get(("cpu", dim, length)), by.get(("chunked", dim, length))
            if c is None:
                continue
            exps = dim * length * N_STATE
            traffic = 4 * (4 * dim * length + 2 * N_STATE * length)
            f_rate, fb_rate = exps / c["fwd_ms"] * 1e3, 2 * exps / c["fwd_bwd_ms"] * 1e3
            bw = traffic / c["fwd_ms"] * 1e3
            up_f = f"{k['fwd_ms'] / c['fwd_ms']:.1f}x" if k else "-"
            up_fb = f"{k['fwd_bwd_ms'] / c['fwd_bwd_ms']:.1f}x" if k else "-"
            lines.append(f"| {dim} | {length} | {up_f} | {up_fb} | {f_rate / 1e9:.2f} | {fb_rate / 1e9:.2f} | "
                         f"{bw / 1e9:.2f} | {100 * f_rate / machine['exp_per_s']:.0f}% | "
                         f"{100 * bw / machine['copy_bytes_per_s']:.0f}% |")
    if models:
        lines += ["", "## Whole model: serpent-b, batch 1", "",
                  "Training step = forward, L1 loss, backward, Adam step. Extra MB = resident high-water mark "
                  "during one training step above the resident size before it (model and optimiser state "
                  "already allocated).", "",
                  "| size | backend | forward ms | training step ms | training extra MB |", "|---|---|---|---|---|"]
        for r in models:
            lines.append(f"| {r['size']} | {r['backend']} | {ms(r['fwd_ms'])} | {ms(r['train_ms'])} | "
                         f"{mb(r['train_extra_bytes'])} |")
    lines += ["", "## Targets", ""]
    c, k = by.get(("cpu", 192, 16384)), by.get(("chunked", 192, 16384))
    if c and k:
        up = k["fwd_ms"] / c["fwd_ms"]
        lines.append(f"- forward at dim 192, L 16384 at least 5x faster than chunked (same run): "
                     f"{up:.1f}x ({ms(c['fwd_ms'])} vs {ms(k['fwd_ms'])} ms) - {'met' if up >= 5 else 'NOT met'}")
    for dim in DIMS:
        r = by.get(("cpu", dim, 65536))
        if r:
            io = r["input_bytes"] + r["output_bytes"] + r["grad_bytes"]
            io_no_grad = r["input_bytes"] + r["output_bytes"]
            lines.append(f"- fwd+bwd peak memory at dim {dim}, L 65536 under 2x inputs+outputs: "
                         f"{r['peak_bytes'] / io:.2f}x ({mb(r['peak_bytes'])} MB vs {mb(io)} MB; "
                         f"{r['peak_bytes'] / io_no_grad:.2f}x if the gradients are not counted as outputs) - "
                         f"{'met' if r['peak_bytes'] < 2 * io else 'NOT met'}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    print(f"wrote {path}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    p.add_argument("--quick", action="store_true", help="small sizes only (a smoke test of the script)")
    p.add_argument("--no-model", action="store_true", help="skip the whole-model timings")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "scan_benchmark.md")
    p.add_argument("--report-from", type=Path, help="re-render the report from the log (stdout) of an earlier run")
    args = p.parse_args()
    if args.child:
        kind, *rest = args.child
        result = {"scan": lambda: child_scan(rest[0], int(rest[1]), int(rest[2])),
                  "machine": child_machine,
                  "model": lambda: child_model(rest[0], int(rest[1]))}[kind]()
        print(json.dumps(result))
        return

    if args.report_from:
        render_from_log(args.report_from, args.out)
        return
    global DIMS, LENGTHS, MODEL_SIZES
    if args.quick:
        DIMS, LENGTHS, MODEL_SIZES = (96,), (4096,), (64,)
    start = time.perf_counter()
    load_start = os.getloadavg()[0]
    print("machine", flush=True)
    machine = run_child(["machine"], timeout=300)
    print("building / loading the compiled kernel", flush=True)
    run_child(["scan", "cpu", "8", "64"], timeout=600)  # builds once into torch's cache if needed
    scans = []
    for dim in DIMS:
        for length in LENGTHS:
            for backend in ("cpu", "chunked") + (("ref",) if length <= REF_MAX_LENGTH else ()):
                r = run_child(["scan", backend, str(dim), str(length)], timeout=900)
                if r:
                    scans.append(r)
    models = []
    if not args.no_model:
        for size in MODEL_SIZES:
            for backend in ("cpu", "chunked"):
                r = run_child(["model", backend, str(size)], timeout=1800)
                if r:
                    models.append(r)
    command = "python benchmarks/bench_scan.py" + (" --quick" if args.quick else "") + (
        " --no-model" if args.no_model else "")
    load = f"{load_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end"
    print(f"command: {command}\nwall_s: {time.perf_counter() - start:.0f}\nload: {load}", flush=True)
    write_report(args.out, machine, scans, models, command, time.perf_counter() - start, load)


def render_from_log(log: Path, out: Path) -> None:
    """The printed results of a run (one `  kind ...: {...}` line each) back into the report."""
    machine, scans, models, meta = {}, [], [], {}
    for line in log.read_text().splitlines():
        if line.startswith("  ") and ": {" in line:
            head, _, body = line.strip().partition(": ")
            result = ast.literal_eval(body)
            kind = head.split()[0]
            if kind == "machine":
                machine = result
            elif kind == "scan" and head.split()[2:] != ["8", "64"]:
                scans.append(result)
            elif kind == "model":
                models.append(result)
        elif ": " in line and line.split(": ")[0] in ("command", "wall_s", "load"):
            key, _, value = line.partition(": ")
            meta[key] = value
    write_report(out, machine, scans, models, meta.get("command", "python benchmarks/bench_scan.py"),
                 float(meta.get("wall_s", 0)), meta.get("load", "not recorded"))


if __name__ == "__main__":
    main()
