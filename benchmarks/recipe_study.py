"""Which training recipe buys the most gain per CPU-minute? Variants x seeds, scored per degradation class.

Issue 18's study: every variant continues one starting point (by default the bundled general model,
as every later round of the campaign will) for the same steps, with two or more seeds, on the
corpus' training photos minus a *choice* split of whole photos that the study scores on. The corpus'
held-out photos are never touched: they stay the model cards' test set.

For each class of the task's validation strengths (blur, noise, JPEG, the chain, sharp photos) a
variant's score is its mean gain in dB over the class' strengths and the choice photos; a variant
is compared with the first (the reference) by the per-photo paired difference, averaged over seeds
and strengths, with a 95% bootstrap interval over photos. An interval that holds 0 reads "no
difference measured". Runs resume exactly and their scores are cached, so the study can be stopped
and rerun at any time; the report is rewritten after every run.

    python benchmarks/recipe_study.py --corpus runs/corpus1600 --out docs/recipe_study --runs runs/recipe \\
        --base configs/bundled/general.yaml --init-from serpentir/weights/general.safetensors \\
        --variant charbonnier= --variant psnr=optim.loss=psnr --seeds 0,1 --steps 500
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

from serpentir_lab.stats import bootstrap_interval, verdict

CHOICE_PHOTOS = ("mate-Garden", "mate-Wood", "plasma-Path", "plasma-Volna", "skimage-rocket")


def split_corpus(corpus: Path, out: Path, choice: tuple[str, ...]) -> tuple[Path, Path]:
    """train/ and choice/ folders of links into the corpus' training photos (choice photos whole)."""
    train_dir, choice_dir = out / "train", out / "choice"
    for d in (train_dir, choice_dir):
        d.mkdir(parents=True, exist_ok=True)
    photos = sorted((corpus / "train").glob("*.png"))
    missing = set(choice) - {p.stem for p in photos}
    if missing:
        raise SystemExit(f"{corpus / 'train'}: no choice photo {', '.join(sorted(missing))}")
    for p in photos:
        link = (choice_dir if p.stem in choice else train_dir) / p.name
        if not link.exists():
            link.symlink_to(p.resolve())
    return train_dir, choice_dir


def train_run(base: str, overrides: list[str], run_dir: Path) -> float:
    """Train (or resume) one run; returns the wall seconds its log recorded for the steps it did here."""
    from serpentir.train import last_checkpoint, load_config, train

    config = load_config(base, overrides + [f"out_dir={run_dir}", "resume=true", "tensorboard=false"])
    done = last_checkpoint(run_dir)
    if done.is_file():
        from serpentir.checkpoint import read_metadata

        if int(read_metadata(done)["step"]) >= config.steps:
            return 0.0
    start = time.perf_counter()
    train(config)
    return time.perf_counter() - start


def score_run(run_dir: Path, task_name: str, photos, cache_key: dict, per_strength: bool = False) -> dict:
    """{class: {photo: mean gain over the class' strengths}} (or {strength: {photo: gain}}), cached in the run folder."""
    cache = run_dir / "recipe_scores.json"
    if cache.is_file():
        cached = json.loads(cache.read_text())
        if cached.get("key") == cache_key:
            return cached["gains"]
    from serpentir import load_model
    from serpentir.atomic_write import write_text_atomic
    from serpentir.checkpoint import build_task
    from serpentir.infer import restore_tensor, score
    from serpentir.train import last_checkpoint
    from serpentir_lab.release.blind_validation import STRENGTHS

    model = load_model(last_checkpoint(run_dir))
    task = build_task(task_name, {})
    gains: dict[str, dict[str, list[float]]] = {}
    with torch.no_grad():
        for label, kind, params in STRENGTHS[task_name]:
            for i, (name, clean) in enumerate(photos):
                degraded = task.apply(clean, params, 1000 + i)
                restored = restore_tensor(model, degraded[None])
                out = score(restored, clean[None], with_lpips=False)["psnr"][0]
                if kind == "clean":
                    gain = min(out, 60.0) - 60.0  # sharp photos: distance below a 60 dB ceiling
                else:
                    gain = out - score(degraded[None], clean[None], with_lpips=False)["psnr"][0]
                gains.setdefault(label if per_strength else kind, {}).setdefault(name, []).append(gain)
    result = {kind: {name: float(np.mean(v)) for name, v in per.items()} for kind, per in gains.items()}
    write_text_atomic(cache, json.dumps({"key": cache_key, "gains": result}, indent=1))
    return result


def report(out: Path, variants: dict, seeds: list[int], results: dict, minutes: dict, command: str) -> None:
    """recipe.md (per class: mean gain, difference to the reference with its interval) and recipe.png."""
    names = [v for v in variants if all((v, s) in results for s in seeds)]
    if not names:
        return
    classes = list(results[(names[0], seeds[0])])
    ref = names[0]

    def per_photo(v: str, kind: str) -> dict[str, float]:
        photos = results[(v, seeds[0])][kind]
        return {p: float(np.mean([results[(v, s)][kind][p] for s in seeds])) for p in photos}

    lines = ["# Recipe study (issue 18)", "", f"Command: `{command}`", "",
             f"Seeds {', '.join(map(str, seeds))}; gains in dB over the degraded input on the choice photos "
             f"(training photos held out of this study's training; the corpus' held-out test photos are not used); "
             f"'clean' is the sharp photos' output PSNR minus a 60 dB ceiling. Reference: `{ref}`. "
             "Differences are per-photo paired (mean over seeds and strengths) with a 95% bootstrap interval over photos.",
             "", "| variant | overrides | minutes (all seeds) | " + " | ".join(classes) + " |",
             "|---|---|---:|" + "---:|" * len(classes)]
    for v in names:
        cells = []
        for kind in classes:
            mine = per_photo(v, kind)
            mean = np.mean(list(mine.values()))
            if v == ref:
                cells.append(f"{mean:+.2f}")
            else:
                base = per_photo(ref, kind)
                d = np.array([mine[p] - base[p] for p in mine])
                lo, hi = bootstrap_interval(d)
                cells.append(f"{mean:+.2f} ({d.mean():+.2f} [{lo:+.2f}, {hi:+.2f}] {verdict(lo, hi)})")
        lines.append(f"| {v} | `{' '.join(variants[v]) or '-'}` | {minutes.get(v, 0):.1f} | " + " | ".join(cells) + " |")
    lines += ["", "Seed by seed (mean gain per class):", "", "| variant | seed | " + " | ".join(classes) + " |",
              "|---|---:|" + "---:|" * len(classes)]
    for v in names:
        for s in seeds:
            lines.append(f"| {v} | {s} | " + " | ".join(f"{np.mean(list(results[(v, s)][k].values())):+.2f}"
                                                      for k in classes) + " |")
    (out / "recipe.md").write_text("\n".join(lines) + "\n")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1.6 + 1.4 * len(classes), 3.6))
    width = 0.8 / len(names)
    for i, v in enumerate(names):
        means = [np.mean([np.mean(list(results[(v, s)][k].values())) for s in seeds]) for k in classes]
        spread = [np.std([np.mean(list(results[(v, s)][k].values())) for s in seeds]) for k in classes]
        ax.bar(np.arange(len(classes)) + i * width, means, width, yerr=spread, label=v, capsize=2)
    ax.set_xticks(np.arange(len(classes)) + 0.4 - width / 2, classes)
    ax.set_ylabel("gain over input (dB); clean: PSNR - 60")
    ax.axhline(0, color="k", lw=0.5)
    ax.legend(fontsize=7)
    ax.set_title("recipe study: mean over seeds (bars: seed spread)", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "recipe.png", dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", type=Path, required=True, help="a corpus from `serpentir corpus build`")
    ap.add_argument("--out", type=Path, required=True, help="report folder (recipe.md, recipe.png)")
    ap.add_argument("--runs", type=Path, required=True, help="run folders and the split links")
    ap.add_argument("--base", required=True, help="the base training config")
    ap.add_argument("--init-from", default=None, help="weights every run starts from (default: the config's)")
    ap.add_argument("--variant", action="append", required=True,
                    help="'NAME=override [override ...]' (space-separated); the first is the reference")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--lr", type=float, default=None, help="peak learning rate of every run (default: the config's)")
    ap.add_argument("--choice", default=",".join(CHOICE_PHOTOS), help="training photos held out to score on")
    ap.add_argument("--max-side", type=int, default=512, help="choice photos' long side when scoring")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--per-strength", action="store_true",
                    help="a column per validation strength instead of per class (for one-class tasks such as deblur)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    from serpentir_lab.release.blind_validation import load_val_photos

    train_dir, choice_dir = split_corpus(args.corpus, args.runs / "split", tuple(args.choice.split(",")))
    common = [f"data.train_dir={train_dir}", f"data.val_dir={choice_dir}", f"steps={args.steps}",
              f"optim.warmup_steps={max(1, args.steps // 20)}", f"val_every={max(1, args.steps // 4)}",
              f"ckpt_every={max(1, args.steps // 8)}", "lpips_at_end=false", "progress=false"]
    if args.init_from:
        common.append(f"init_from={Path(args.init_from).resolve()}")
    if args.lr:
        common.append(f"optim.lr={args.lr}")
    variants = {}
    for spec in args.variant:
        name, _, rest = spec.partition("=")
        variants[name] = rest.split()
    seeds = [int(s) for s in args.seeds.split(",")]
    photos = load_val_photos(choice_dir, max_side=args.max_side)
    args.out.mkdir(parents=True, exist_ok=True)
    import yaml

    task_name = yaml.safe_load(Path(args.base).read_text())["task"]["name"]
    command = shlex.join(["python", "benchmarks/recipe_study.py", *(argv if argv is not None else sys.argv[1:])])
    results, minutes = {}, {}
    for seed in seeds:  # seed-major: every variant gets its first seed before any gets a second
        for name, overrides in variants.items():
            run_dir = args.runs / f"{name}-s{seed}"
            seconds = train_run(args.base, common + overrides + [f"seed={seed}"], run_dir)
            log = run_dir / "recipe_minutes.json"
            spent = (json.loads(log.read_text())["minutes"] if log.is_file() else 0.0) + seconds / 60
            log.write_text(json.dumps({"minutes": spent}))
            minutes[name] = minutes.get(name, 0.0) + spent
            key = {"photos": [p for p, _ in photos], "max_side": args.max_side, "steps": args.steps,
                   "per_strength": args.per_strength}
            results[(name, seed)] = score_run(run_dir, task_name, photos, key, args.per_strength)
            print(f"{name} seed {seed}: " + ", ".join(f"{k} {np.mean(list(v.values())):+.2f}"
                                                   for k, v in results[(name, seed)].items()), flush=True)
            report(args.out, variants, seeds, results, minutes, command)


if __name__ == "__main__":
    main()
