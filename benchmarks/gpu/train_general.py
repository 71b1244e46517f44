"""Issue 18 on a lent GPU: continue the bundled general model for a fixed budget of minutes, bring it back.

    python3 benchmarks/gpu/train_general.py --corpus runs/gpu_corpus --out "$OUT" --minutes 7   # benchmarks/gpu/carry_corpus.py packs it
    python benchmarks/gpu/train_general.py --device cpu --smoke --out /tmp/gpu_train   # seconds, tested

Two phases, so that the learning-rate schedule ends when the budget does (a run cut short mid-schedule
would stop at a high rate): a probe of `--probe-steps` steps measures seconds per step on this device,
then the real run is given as many steps as fit in what is left of the budget, with `time_limit_min`
as a guard. Both start from `init_from` (the bundled general weights) with the recipe of
configs/bundled/general_gpu.yaml. Written to --out (what the device tool brings back):
last.safetensors (the EMA weights and the training state's step), config.yaml, train_log.csv,
val_log.csv and plan.json (device, seconds per step, steps). Nothing here bundles anything: back on
the CPU, scripts/bundle_weights.py validates the weights on the held-out photos and refuses a
regression (command in docs/gpu/README.md).
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "bundled" / "general_gpu.yaml"
SMOKE = ["model.kwargs={embed_dim: 8}", "data.crop_size=32", "data.batch_size=2", "data.val_crop_size=32",
         "data.max_val_images=1", "data.cache_mb=16", "data.num_workers=0", "init_from=null", "val_every=1000000"]


def _config(overrides: list[str]):
    from serpentir.train import load_config

    return load_config(CONFIG, overrides)


def plan_steps(seconds_per_step: float, budget_s: float, minimum: int = 10) -> int:
    """How many steps fit in budget_s at the probe's rate (never fewer than `minimum`)."""
    return max(minimum, int(budget_s / max(seconds_per_step, 1e-6)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default="runs/corpus1600", help="a corpus built by `serpentir corpus build`")
    parser.add_argument("--out", required=True, help="folder for what comes back (at most 8 files)")
    parser.add_argument("--minutes", type=float, default=7.0, help="training budget, probe included")
    parser.add_argument("--probe-steps", type=int, default=30)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--smoke", action="store_true", help="a tiny model on the bundled sample photos (CPU tests)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="more config overrides")
    args = parser.parse_args(argv)

    import torch

    from serpentir.train import train

    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device here: nothing trained", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = out / "run"
    if args.smoke:
        from serpentir.data import sample_images_dir

        data = [f"data.train_dir={sample_images_dir() / 'train'}", f"data.val_dir={sample_images_dir() / 'val'}"]
        extra = SMOKE
    else:
        corpus = Path(args.corpus)
        data = [f"data.train_dir={corpus / 'train'}", f"data.val_dir={corpus / 'val'}"]
        extra = [f"init_from={ROOT / 'serpentir' / 'weights' / 'general.safetensors'}"]
    common = data + extra + [f"device={args.device}", "progress=false", "tensorboard=false"] + args.set
    started = time.monotonic()

    probe_dir = out / "probe"
    warm = 5  # the first steps compile kernels and fill caches: not part of the rate
    probe = _config(common + [f"out_dir={probe_dir}", f"steps={args.probe_steps + warm}", "ckpt_every=1000000",
                              f"log_every={warm}"])
    train(probe, log=lambda m: None)
    with open(probe_dir / "train_log.csv", newline="") as f:
        rates = [float(r["images_per_s"]) for r in csv.DictReader(f) if int(r["step"]) > warm]
    seconds_per_step = probe.data.batch_size / statistics.median(rates)
    shutil.rmtree(probe_dir, ignore_errors=True)

    left = 60 * args.minutes - (time.monotonic() - started)
    steps = plan_steps(seconds_per_step, 0.9 * left)  # 10% for validation and saving
    plan = {"device": torch.cuda.get_device_name() if args.device == "cuda" else args.device,
            "torch": torch.__version__, "seconds_per_step": seconds_per_step, "steps": steps,
            "budget_min": args.minutes, "probe_steps": args.probe_steps}
    print(json.dumps(plan), file=sys.stderr)
    config = _config(common + [f"out_dir={work}", f"steps={steps}", f"val_every={max(steps // 4, 1)}",
                               f"ckpt_every={max(steps // 4, 1)}", f"time_limit_min={max(left / 60, 0.1)}"])
    result = train(config, log=lambda m: print(m, file=sys.stderr))
    plan.update(trained_steps=result.step, minutes=(time.monotonic() - started) / 60, val=result.val)
    (out / "plan.json").write_text(json.dumps(plan, indent=1, default=str) + "\n")
    shutil.copy(result.checkpoint, out / "last.safetensors")
    for name in ("config.yaml", "train_log.csv", "val_log.csv"):
        if (work / name).is_file():
            shutil.copy(work / name, out / name)
    shutil.rmtree(work, ignore_errors=True)  # the state files stay behind: only the weights are validated here
    return 0


if __name__ == "__main__":
    sys.exit(main())
