"""Does THP_MEM_ALLOC_ENABLE (transparent huge pages for torch's CPU allocator) pay for serpent-t inference?

    python benchmarks/thp_inference.py [--procs 6] [--warmup 4] [--rounds 5] [--threads 1] [--size 512]

Each trial is a fresh process (the variable is read once, at torch's first allocation), with the
variable set to 0 or 1, alternating 0/1 so that machine load hits both alike. A process runs
--warmup untimed passes, then --rounds timed ones of serpent-t on one random RGB image; its steady
state is the median of the timed rounds, wall and process CPU time (on one thread the CPU time,
page faults included, is what the work costs whatever else runs on the machine). Prints the first-pass time and the steady state per
process, and the median over processes of each setting.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys


def worker(size: int, warmup: int, rounds: int, threads: int) -> dict:
    """One process's first-pass and steady-state times (seconds)."""
    import time

    import torch

    from serpentir.models import create_model
    from serpentir.ops.scan_cpu_build import cpu_kernel_ops

    torch.set_num_threads(threads)
    assert cpu_kernel_ops() is not None, "the compiled scan (what users run) did not build"
    torch.manual_seed(0)
    net = create_model("serpent-t").eval()
    image = torch.rand(1, 3, size, size)
    times, cpu = [], []
    with torch.inference_mode():
        for _ in range(warmup + rounds):
            start, start_cpu = time.perf_counter(), time.process_time()
            net(image)
            times.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
    return {"first": times[0], "steady": statistics.median(times[warmup:]), "steady_cpu": statistics.median(cpu[warmup:])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--procs", type=int, default=6, help="fresh processes per setting")
    parser.add_argument("--warmup", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.size, args.warmup, args.rounds, args.threads)))
        return
    results: dict[str, list[dict]] = {"0": [], "1": []}
    for i in range(args.procs):
        for setting in ("0", "1") if i % 2 == 0 else ("1", "0"):
            env = dict(os.environ, THP_MEM_ALLOC_ENABLE=setting, OMP_NUM_THREADS=str(args.threads))
            cmd = [sys.executable, __file__, "--worker", "--size", str(args.size), "--warmup",
                   str(args.warmup), "--rounds", str(args.rounds), "--threads", str(args.threads)]
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            results[setting].append(r)
            print(f"THP={setting} first {r['first'] * 1000:.0f} ms  steady {r['steady'] * 1000:.0f} ms "
                  f"(CPU time {r['steady_cpu'] * 1000:.0f} ms)", flush=True)
    for setting, rs in results.items():
        print(f"THP_MEM_ALLOC_ENABLE={setting}: median first pass "
              f"{statistics.median(r['first'] for r in rs) * 1000:.0f} ms, median steady state "
              f"{statistics.median(r['steady'] for r in rs) * 1000:.0f} ms (CPU time "
              f"{statistics.median(r['steady_cpu'] for r in rs) * 1000:.0f} ms) over {len(rs)} processes")


if __name__ == "__main__":
    main()
