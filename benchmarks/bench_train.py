"""Training throughput of the general model's real configuration, and where a step's time goes.

    python benchmarks/bench_train.py --corpus runs/corpus1600 --out docs/bench_train [--threads 2]
        [--steps 40] [--warmup 8] [--baseline-src /path/to/an/older/checkout] [--setting NAME=OVERRIDES ...]

Each measurement runs the trainer itself (`_Run`: the `general` task's on-the-fly degradations of
128-px crops, batch 8, AdamW, gradient clip, EMA) in a fresh process, for serpent-t and nafnet-t:
crop pixels per second over --steps steps after --warmup unmeasured ones, with the time a step
waits for its batch apart from the update. A second pass splits the update into forward, loss and
backward, and optimiser (clip, AdamW, EMA), and times preparing one batch in the process (reading
crops and degrading them). Settings are config overrides (e.g. `amp=bf16`, `data.num_workers=1`);
--baseline-src measures the default setting on another checkout in the same run, after this one's,
with that checkout's own general.yaml (an older one refuses keys added since).
Rounds alternate the sides so that a change in the machine's load hits both.
Writes OUT/bench_train.md and OUT/bench_train.csv.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
GENERAL = HERE.parent / "configs" / "bundled" / "general.yaml"


def worker(spec: dict) -> dict:
    """One process: throughput of the real trainer, then the split of a step into its phases."""
    import tempfile

    import serpentir

    if hasattr(serpentir, "enable_huge_pages"):  # as `serpentir train` runs (older checkouts set it at import)
        serpentir.enable_huge_pages()
    import torch

    try:
        from serpentir.train.config import load_config
        from serpentir.train.distributed import init_distributed
        from serpentir.train.loop import _Run
    except ImportError:  # a baseline checkout from before the layout of issue 20
        from serpentir.engine.config import load_config
        from serpentir.engine.distributed import init_distributed
        from serpentir.engine.train import _Run

    torch.set_num_threads(spec["threads"])
    out = tempfile.mkdtemp(prefix="bench_train_")
    config = load_config(spec["config"], spec["overrides"] + [
        f"model.name={spec['model']}", f"out_dir={out}", "resume=false", "tensorboard=false", "progress=false",
        "data.max_val_images=1", "init_from=null"])
    if spec["model"] != "serpent-t":
        config.model.kwargs = {}
    ctx = init_distributed(config.device)
    run = _Run(config, ctx, log=lambda _m: None)
    run.model.train()
    warmup, steps = spec["warmup"], spec["steps"]
    waits, updates = [], []
    batches = iter(run._loader(0, warmup + steps))
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        batch = next(batches)
        t1 = time.perf_counter()
        run._update(batch)
        run.step += 1
        t2 = time.perf_counter()
        if i >= warmup:
            waits.append(t1 - t0)
            updates.append(t2 - t1)
    del batches

    # the phases of an update (the same work as _Run._update, timed piece by piece)
    phases = {"forward": [], "loss+backward": [], "optimiser+ema": []}
    amp = run.amp_dtype
    x, y = batch["input"], batch["target"]
    for _ in range(max(3, steps // 4)):
        t0 = time.perf_counter()
        with torch.autocast(run.device.type, dtype=amp or torch.float32, enabled=amp is not None):
            pred = run.net(x)
        t1 = time.perf_counter()
        loss = run.loss_fn(pred.float(), y)
        run.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        t2 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(run.model.parameters(), 1.0)
        run.optimizer.step()
        if run.ema is not None:
            run.ema.update(run.model)
        t3 = time.perf_counter()
        for key, dt in zip(phases, (t1 - t0, t2 - t1, t3 - t2)):
            phases[key].append(dt)
    prep = []
    batch_size = config.data.batch_size
    for k in range(6):  # preparing a batch in this process (crop, augment, degrade), photos decoded once
        t0 = time.perf_counter()
        for j in range(batch_size):
            run.train_set[j % len(run.train_set)]
        prep.append(time.perf_counter() - t0)
    prep = prep[2:]
    pixels = batch_size * ctx.world_size * config.data.crop_size ** 2
    step_s = [w + u for w, u in zip(waits, updates)]
    return {"step_s": statistics.median(step_s), "wait_s": statistics.median(waits),
            "update_s": statistics.median(updates), "pixels_per_s": pixels / statistics.median(step_s),
            "phases_s": {k: statistics.median(v) for k, v in phases.items()},
            "batch_prep_s": statistics.median(prep), "amp": str(amp), "num_workers": config.data.num_workers,
            "processes": ctx.world_size, "rank": ctx.rank}


def measure(src: Path, spec: dict) -> dict:
    """Run `worker` in fresh processes that import serpentir from `src` (torchrun when spec asks for several)."""
    env = dict(os.environ, PYTHONPATH=str(src), OMP_NUM_THREADS=str(spec["threads"]))
    procs = spec.get("processes", 1)
    launch = [sys.executable] if procs == 1 else [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}"]
    proc = subprocess.run(launch + [str(Path(__file__).resolve()), "--worker", json.dumps(spec)], env=env,
                          capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT"):
            return json.loads(line[6:])
    raise SystemExit(f"{src}: the measurement failed:\n{proc.stderr[-3000:]}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", type=Path, help="a corpus from `serpentir corpus build` (required)")
    ap.add_argument("--out", type=Path, help="report folder (required)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3, help="fresh processes per (side, model); medians are reported")
    ap.add_argument("--models", default="serpent-t,nafnet-t")
    ap.add_argument("--baseline-src", type=Path, help="another checkout, measured with its defaults in the same run")
    ap.add_argument("--setting", action="append", default=[],
                    help="NAME=override[,override...] measured on this checkout (default: 'default='); the override "
                         "'processes=K' trains with K DDP processes of threads/K threads each (global batch kept)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        result = worker(json.loads(args.worker))
        if result["rank"] == 0:
            print("RESULT" + json.dumps(result), flush=True)
        return
    if not (args.corpus and args.out):
        ap.error("--corpus and --out are required")
    corpus = args.corpus.resolve()
    data = [f"data.train_dir={corpus / 'train'}", f"data.val_dir={corpus / 'val'}"]
    sides = []  # (label, src, overrides)
    for spec in args.setting or ["default="]:
        name, _, rest = spec.partition("=")
        sides.append((name, HERE.parent, [o for o in rest.split(",") if o]))
    if args.baseline_src:
        sides.append(("baseline", args.baseline_src.resolve(), []))
    results: dict[tuple[str, str], list[dict]] = {}
    for r in range(args.rounds):
        for model in args.models.split(","):
            for label, src, overrides in (sides if r % 2 == 0 else sides[::-1]):
                procs = int(next((o.split("=")[1] for o in overrides if o.startswith("processes=")), 1))
                learn = [o for o in overrides if not o.startswith("processes=")]
                if procs > 1:
                    learn.append(f"data.batch_size={8 // procs}")
                config = src / GENERAL.relative_to(HERE.parent)  # each checkout's own general.yaml
                spec = {"config": str(config), "overrides": data + learn, "model": model, "processes": procs,
                        "threads": max(1, args.threads // procs), "steps": args.steps, "warmup": args.warmup}
                res = measure(src, spec)
                results.setdefault((label, model), []).append(res)
                print(f"round {r} {label} {model}: {res['pixels_per_s'] / 1e3:.1f} kpx/s "
                      f"(step {res['step_s'] * 1e3:.0f} ms, waiting for data {res['wait_s'] * 1e3:.0f} ms)", flush=True)
    write_report(args, sides, results)


def _median(rows: list[dict], key: str, sub: str | None = None) -> float:
    return statistics.median(r[key][sub] if sub else r[key] for r in rows)


def write_report(args, sides, results) -> None:
    args.out.mkdir(parents=True, exist_ok=True)
    ref = "baseline" if args.baseline_src else sides[0][0]
    fields = ["setting", "model", "overrides", "kpx_per_s", "ratio_to_" + ref, "step_ms", "wait_ms", "forward_ms",
              "loss_backward_ms", "optimiser_ema_ms", "batch_prep_ms", "rounds"]
    rows = []
    overrides = {label: " ".join(o) or "-" for label, _, o in sides}
    for (label, model), rs in results.items():
        base = results.get((ref, model))
        rows.append({"setting": label, "model": model, "overrides": overrides[label],
                     "kpx_per_s": f"{_median(rs, 'pixels_per_s') / 1e3:.1f}",
                     "ratio_to_" + ref: f"{_median(rs, 'pixels_per_s') / _median(base, 'pixels_per_s'):.2f}",
                     "step_ms": f"{_median(rs, 'step_s') * 1e3:.0f}", "wait_ms": f"{_median(rs, 'wait_s') * 1e3:.0f}",
                     "forward_ms": f"{_median(rs, 'phases_s', 'forward') * 1e3:.0f}",
                     "loss_backward_ms": f"{_median(rs, 'phases_s', 'loss+backward') * 1e3:.0f}",
                     "optimiser_ema_ms": f"{_median(rs, 'phases_s', 'optimiser+ema') * 1e3:.0f}",
                     "batch_prep_ms": f"{_median(rs, 'batch_prep_s') * 1e3:.0f}", "rounds": len(rs)})
    with open(args.out / "bench_train.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    import platform

    import torch

    lines = ["# Training throughput (issue 18)", "",
             "Command: `python benchmarks/bench_train.py " + " ".join(sys.argv[1:]) + "`", "",
             f"The general model's configuration (configs/bundled/general.yaml: the `general` task, batch 8, "
             f"128-px crops), {args.threads} threads, medians of {args.rounds} fresh processes x {args.steps} steps "
             f"after {args.warmup} warm-up steps; {platform.processor() or platform.machine()}, torch {torch.__version__}, "
             f"CPU capability {torch.backends.cpu.get_cpu_capability()}. Throughput is crop pixels per second of "
             "whole steps (waiting for the batch included); the phases are timed separately on one batch; "
             "'batch prep' is preparing one batch in the training process.", "",
             "| " + " | ".join(fields) + " |", "|" + "---|" * len(fields)]
    lines += ["| " + " | ".join(str(r[k]) for k in fields) + " |" for r in rows]
    (args.out / "bench_train.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
