"""What the fused 2-D scan buys: Serpent's time against a CNN, the scan's share, its exp rate, 4K/8K memory.

    python benchmarks/bench_fused_scan.py --out docs/fused_scan [--threads 2] [--rounds 5] [--warmup 3]
        [--baseline-src /path/to/an/older/checkout] [--big 3840x2160,7680x4320]

1. Latency, side by side in one process, models interleaved round by round: inference on one
   512x512 RGB image (batch 1, after --warmup unmeasured rounds) and one training step (batch 8,
   96x96 crops, L1 loss, AdamW). The ratio serpent-t / nafnet-t is taken per round, then its
   median. The process CPU time is reported too: with one thread it is what the work costs,
   whatever else runs on the machine. --baseline-src runs the same measurement on another checkout
   (e.g. the commit before the fused scan, via `git worktree add`) in a second process, after this one.
2. Profile: torch.profiler's share of serpent-t's inference at 512 per operator, the scan's first.
3. The 2-D scan kernel alone at serpent-t's first level (256x256 tokens, d 32, K 4, N 8):
   exponentials per second against torch.exp's rate on the same machine and thread count.
4. Whole images, untiled: the bundled default model on a real photo (scikit-image's astronaut,
   resized) of each --big size, in a fresh process each: peak resident memory (the process's
   high-water mark), seconds, bytes per pixel.
Writes OUT/fused_scan.md, OUT/latency.csv, OUT/big_images.csv and OUT/latency.png.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

LATENCY_MODELS = ("serpent-t", "nafnet-t", "serpent-b", "serpent-l")


def latency_worker(models: list[str], rounds: int, threads: int, warmup: int = 3) -> dict:
    """Per model: inference and training-step times for each round (models interleaved within a round)."""
    import torch

    import serpentir
    from serpentir.models import create_model

    serpentir.enable_huge_pages()  # as the command line does, before the first tensor
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    image, crops = torch.rand(1, 3, 512, 512), torch.rand(8, 3, 96, 96)
    nets = {n: create_model(n) for n in models}
    optims = {n: torch.optim.AdamW(m.parameters(), lr=1e-4) for n, m in nets.items()}

    def infer(net):
        net.eval()
        with torch.inference_mode():
            net(image)

    def train_step(name):
        net = nets[name].train()
        loss = (net(crops) - crops).abs().mean()
        optims[name].zero_grad()
        loss.backward()
        optims[name].step()

    # warm-up: kernel build, thread pools, and the allocator's steady state (with transparent huge
    # pages the first few passes over fresh memory are up to 2.5x slower than the later ones)
    for _ in range(warmup):
        for name, net in nets.items():
            infer(net)
            train_step(name)
    out = {n: {"infer_s": [], "train_s": [], "infer_cpu_s": [], "train_cpu_s": []} for n in models}
    for _ in range(rounds):
        for name, net in nets.items():
            for key, fn in (("infer", lambda: infer(net)), ("train", lambda: train_step(name))):
                wall, cpu = time.perf_counter(), time.process_time()
                fn()
                out[name][f"{key}_s"].append(time.perf_counter() - wall)
                out[name][f"{key}_cpu_s"].append(time.process_time() - cpu)
    out["_serpentir"] = serpentir.__file__
    return out


def run_latency(src: str | None, models: list[str], rounds: int, threads: int, warmup: int) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    if src:
        env["PYTHONPATH"] = src
    code = f"import json, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import bench_fused_scan as b; " \
           f"print(json.dumps(b.latency_worker({models!r}, {rounds}, {threads}, {warmup})))"
    # run inside the checkout measured: the working directory comes first on sys.path
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=src or None)
    if out.returncode:
        raise SystemExit(f"latency worker failed ({src or 'this checkout'}):\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def profile_shares(threads: int) -> list[tuple[str, float]]:
    import torch
    from torch.profiler import profile

    from serpentir.models import create_model

    torch.set_num_threads(threads)
    net, x = create_model("serpent-t").eval(), torch.rand(1, 3, 512, 512)
    with torch.inference_mode():
        net(x)
        with profile() as prof:
            for _ in range(3):
                net(x)
    events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    total = sum(e.self_cpu_time_total for e in events)
    top = sorted(events, key=lambda e: -e.self_cpu_time_total)[:8]
    return [(e.key, e.self_cpu_time_total / total) for e in top]


def scan_rate(threads: int) -> dict:
    import torch

    from serpentir.ops import scan_walks, selective_scan_2d

    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(0)
    b, H, W, d, K, N, R = 1, 256, 256, 32, 4, 8, 1
    args = (torch.randn(b, H, W, d, generator=g), torch.randn(b, H, W, K, R, generator=g) * 0.1,
            torch.randn(K * d, R, generator=g), -torch.rand(K * d, N, generator=g) - 0.5,
            torch.randn(b, H, W, K, N, generator=g), torch.randn(b, H, W, K, N, generator=g),
            torch.randn(K * d, generator=g), torch.randn(K * d, generator=g))
    exps = K * d * H * W * N
    x, y = torch.empty(exps).uniform_(-5, 0), torch.empty(exps)

    def best(fn, n=7):
        fn()
        times = []
        for _ in range(n):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return min(times)

    with torch.inference_mode():
        t_scan = best(lambda: selective_scan_2d(*args, walks=scan_walks(4), backend="cpu"))
        t_exp = best(lambda: torch.exp(x, out=y))
    return {"scan_ms": t_scan * 1e3, "scan_gexp_s": exps / t_scan / 1e9, "torch_exp_gexp_s": exps / t_exp / 1e9}


BIG_WORKER = """
import json, sys, time, torch, numpy as np
from skimage import data, transform
import serpentir
serpentir.enable_huge_pages()
from serpentir.infer import DEFAULT_TASK, process_status_bytes
w, h = map(int, sys.argv[1].split("x"))
model = serpentir.load_model(DEFAULT_TASK)
photo = transform.resize(data.astronaut(), (h, w), order=1, anti_aliasing=False).astype(np.float32)
x = torch.from_numpy(photo).permute(2, 0, 1)[None].contiguous()
del photo
with torch.inference_mode():
    model(torch.rand(1, 3, 64, 64))
    base = process_status_bytes("VmRSS")
    t = time.perf_counter()
    y = model(x)
    seconds = time.perf_counter() - t
print(json.dumps(dict(task=DEFAULT_TASK, seconds=seconds, base_mb=base / 2**20,
                      peak_mb=process_status_bytes("VmHWM") / 2**20)))
"""


def big_image(size: str, threads: int) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    out = subprocess.run([sys.executable, "-c", BIG_WORKER, size], env=env, capture_output=True, text=True)
    if out.returncode:
        return {"size": size, "error": out.stderr.strip().splitlines()[-1][:200]}
    r = json.loads(out.stdout.strip().splitlines()[-1])
    w, h = map(int, size.split("x"))
    r.update(size=size, bytes_per_pixel=r["peak_mb"] * 2**20 / (w * h))
    return r


def med(xs):
    return statistics.median(xs)


def write_report(out: Path, lat: dict, base: dict | None, shares, rate, bigs, args) -> None:
    import csv

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    models = [m for m in lat if not m.startswith("_")]
    rows = []
    for label, res in (("fused", lat), ("baseline", base)):
        if res:
            print(f"{label}: serpentir imported from {res['_serpentir']}")
        for m in ([k for k in res if not k.startswith("_")] if res else []):
            rows.append(dict(code=label, model=m, infer_ms=med(res[m]["infer_s"]) * 1e3,
                             train_ms=med(res[m]["train_s"]) * 1e3, infer_cpu_ms=med(res[m]["infer_cpu_s"]) * 1e3,
                             train_cpu_ms=med(res[m]["train_cpu_s"]) * 1e3))
    with open(out / "latency.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with open(out / "big_images.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["size", "task", "peak_mb", "base_mb", "seconds", "bytes_per_pixel"],
                                extrasaction="ignore")
        writer.writeheader()
        writer.writerows([b for b in bigs if "error" not in b])

    def ratio(res, key):
        return med([a / b for a, b in zip(res["serpent-t"][key], res["nafnet-t"][key])])

    lines = [f"# The fused 2-D scan: time, memory and the scan's rate ({args.threads} thread(s), {args.warmup} warm-up "
             f"+ {args.rounds} measured rounds)", "",
             "Command: `python benchmarks/bench_fused_scan.py " + " ".join(sys.argv[1:]) + "`", "",
             "| code | model | inference 512x512 (ms) | training step, 8 x 96x96 (ms) | inference CPU (ms) | training CPU (ms) |",
             "|---|---|---:|---:|---:|---:|"]
    lines += [f"| {r['code']} | {r['model']} | {r['infer_ms']:.0f} | {r['train_ms']:.0f} | {r['infer_cpu_ms']:.0f} | "
              f"{r['train_cpu_ms']:.0f} |" for r in rows]
    lines += ["", "Median over rounds of the per-round ratio serpent-t / nafnet-t:", ""]
    for label, res in (("fused", lat), ("baseline", base)):
        if res and "serpent-t" in res and "nafnet-t" in res:
            lines.append(f"- {label}: inference {ratio(res, 'infer_s'):.2f} (CPU time {ratio(res, 'infer_cpu_s'):.2f}), "
                         f"training step {ratio(res, 'train_s'):.2f} (CPU time {ratio(res, 'train_cpu_s'):.2f})")
    lines += ["", "## Where serpent-t's inference time goes (512x512, torch.profiler, self time)", "",
              "| operator | share |", "|---|---:|"]
    lines += [f"| `{name}` | {share:.0%} |" for name, share in shares]
    lines += ["", "## The scan kernel alone (256x256 tokens, d 32, K 4, N 8)", "",
              f"{rate['scan_ms']:.1f} ms: {rate['scan_gexp_s']:.2f} G exponentials/s, against torch.exp's "
              f"{rate['torch_exp_gexp_s']:.2f} G/s on the same threads.", "",
              "## Whole images, untiled (bundled default model, fresh process each)", "",
              "| size | task | peak RSS (MB) | of which the idle process (MB) | seconds | bytes/pixel |",
              "|---|---|---:|---:|---:|---:|"]
    for b in bigs:
        if "error" in b:
            lines.append(f"| {b['size']} | failed: {b['error']} | | | | |")
        else:
            lines.append(f"| {b['size']} | {b['task']} | {b['peak_mb']:.0f} | {b['base_mb']:.0f} | {b['seconds']:.1f} | "
                         f"{b['bytes_per_pixel']:.0f} |")
    (out / "fused_scan.md").write_text("\n".join(lines) + "\n")

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, key, title in ((axes[0], "infer_ms", "inference, 512x512"), (axes[1], "train_ms", "training step, 8 x 96x96")):
        labels = [f"{r['model']}\n({r['code']})" for r in rows]
        ax.bar(range(len(rows)), [r[key] for r in rows],
               color=["tab:green" if r["model"].startswith("serpent") else "tab:gray" for r in rows])
        ax.set_xticks(range(len(rows)), labels, fontsize=7)
        ax.set_ylabel("ms (median)")
        ax.set_title(title)
        ax.set_yscale("log")
    fig.suptitle(f"serpentir on this CPU, {args.threads} thread(s)")
    fig.tight_layout()
    fig.savefig(out / "latency.png", dpi=110)
    print((out / "fused_scan.md").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="docs/fused_scan")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=3, help="unmeasured rounds first (steady state)")
    parser.add_argument("--models", default=",".join(LATENCY_MODELS))
    parser.add_argument("--baseline-src", help="an older checkout to measure the same way, for before/after")
    parser.add_argument("--big", default="3840x2160,7680x4320", help="whole-image sizes WxH ('' for none)")
    args = parser.parse_args()
    models = args.models.split(",")
    lat = run_latency(None, models, args.rounds, args.threads, args.warmup)
    base = (run_latency(args.baseline_src, ["serpent-t", "nafnet-t"], args.rounds, args.threads, args.warmup)
            if args.baseline_src else None)
    shares = profile_shares(args.threads)
    rate = scan_rate(args.threads)
    bigs = [big_image(s, args.threads) for s in args.big.split(",") if s]
    write_report(Path(args.out), lat, base, shares, rate, bigs, args)


if __name__ == "__main__":
    main()
