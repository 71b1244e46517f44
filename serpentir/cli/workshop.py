"""`serpentir corpus`, `bench`, `compare` and `ablate`: the workshop's commands, run by serpentir_lab.

Only the arguments live here; each command imports serpentir_lab when it runs (the library never
imports the workshop at module level).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import UserError
from .args import positive_int, wrap


def _cmd_corpus_build(args: argparse.Namespace) -> None:
    from serpentir_lab.corpus import build_corpus, read_manifest

    manifest = build_corpus(args.dir, max_side=args.max_side, with_test=args.with_test, overwrite=args.overwrite)
    rows = read_manifest(args.dir)
    megapixels = sum(int(r["width"]) * int(r["height"]) for r in rows) / 1e6
    counts = ", ".join(f"{sum(r['split'] == s for r in rows)} {s}" for s in ("train", "val", "test")
                       if any(r["split"] == s for r in rows))
    print(f"{len(rows)} photos ({megapixels:.1f} megapixels; {counts}) -> {manifest}")


def add_corpus_parser(sub) -> None:
    p = sub.add_parser(
        "corpus", help="build a training corpus of the real photographs installed on this machine",
        description=wrap("Gathers the photographs of the Debian packages mate-backgrounds and "
                          "plasma-workspace-wallpapers (apt-get install them first) and the photos that scikit-image, "
                          "scikit-learn and matplotlib ship, into DIR/train and DIR/val (whole photos held out) "
                          "with DIR/manifest.csv (package, source file, size, sha256, split); with --with-test, "
                          "DIR/test from whole packages that give nothing to train or val."),
        epilog="examples:\n  serpentir corpus build ~/serpentir_corpus --max-side 1600\n"
               "  serpentir corpus build runs/corpus19 --max-side 1600 --with-test   # issue 19's studies",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    corpus_sub = p.add_subparsers(dest="corpus_command", required=True, metavar="ACTION")
    b = corpus_sub.add_parser("build", help="gather the installed photos into DIR")
    b.add_argument("dir", metavar="DIR", help="the corpus folder to write (new or empty)")
    b.add_argument("--max-side", type=positive_int, default=None,
                   help="downscale photos whose long side is larger (default: keep full size)")
    b.add_argument("--with-test", action="store_true",
                   help="add DIR/test: the photos of whole held-out packages (opencv-doc, visp-images-data; "
                        "apt-get install them first), for studies scored on photos no choice was made on")
    b.add_argument("--overwrite", action="store_true", help="replace the corpus already in DIR")
    b.set_defaults(func=_cmd_corpus_build)


def _csv_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(t) for t in _csv_list(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"sizes must be comma-separated integers, got {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError("sizes must be positive")
    return sizes


def add_bench_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the `bench` subcommand; the parsed namespace's func runs it."""
    from serpentir_lab.bench.cost import DEFAULT_SIZES

    p = subparsers.add_parser(
        "bench", help="measure parameters, FLOPs, peak memory and latency of models against resolution",
        description="Cost benchmark: parameters, FLOPs/MACs, peak memory (inference and one training step) and "
                    "latency per model and square size; writes bench.md, bench.csv, ratios.csv and PNG plots.")
    p.add_argument("--models", type=_csv_list, default=["swinir-b", "serpent-l"],
                   help="comma-separated registered names (default swinir-b,serpent-l)")
    p.add_argument("--sizes", type=_sizes, default=list(DEFAULT_SIZES),
                   help=f"comma-separated square sizes (default {','.join(map(str, DEFAULT_SIZES))})")
    p.add_argument("--out", type=Path, default=Path("bench"), help="output folder (default ./bench)")
    p.add_argument("--reference", default="swinir-b", help="model the ratios are taken against (default swinir-b)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--skip-latency", action="store_true", help="do not time inference")
    p.add_argument("--skip-memory", action="store_true", help="do not measure peak memory")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds per measurement before 'timeout' (default 300)")
    p.add_argument("--repeats", type=int, default=5, help="timed latency runs after the warm-up (default 5)")
    p.add_argument("--memory-limit-gb", type=float, default=None,
                   help="CPU: memory one measured step may add before it counts as OOM (default: no limit)")
    p.add_argument("--measure-up-to", type=int, default=None, metavar="SIZE",
                   help="measure memory and latency only at sizes up to SIZE; larger sizes get counts only")
    p.add_argument("--threads", type=int, default=None, help="torch threads in each measuring process")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots (no matplotlib needed)")
    p.set_defaults(func=run_bench_command)
    return p


def run_bench_command(args: argparse.Namespace) -> None:
    """Validate, measure, write the outputs, print the markdown table."""
    from ..models import list_models
    from serpentir_lab.bench.cost import BenchSettings, run_benchmark
    from serpentir_lab.bench.report import write_report

    unknown = [m for m in args.models if m not in list_models()]
    if unknown:
        raise UserError(f"unknown model(s) {', '.join(unknown)}; known models: {', '.join(list_models())}")
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise UserError("--device cuda: no CUDA device is available")
    if args.timeout <= 0 or args.repeats < 1:
        raise UserError("--timeout must be positive and --repeats at least 1")
    settings = BenchSettings(
        models=tuple(args.models), sizes=tuple(args.sizes), device=args.device,
        measure_memory=not args.skip_memory, measure_latency=not args.skip_latency, timeout=args.timeout,
        repeats=args.repeats, memory_limit_gb=args.memory_limit_gb, threads=args.threads,
        measure_up_to=args.measure_up_to,
    )
    rows = run_benchmark(settings, on_row=lambda done: write_report(done, args.out, settings, args.reference))
    text = write_report(rows, args.out, settings, args.reference)
    if not args.no_plots:
        from serpentir_lab.bench.plots import plot_costs

        plot_costs(rows, args.out)
    print(text)
    print(f"written to {args.out}/: bench.md, bench.csv, ratios.csv"
          + ("" if args.no_plots else ", flops.png, memory.png, latency.png"))


def add_compare_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the `compare` subcommand; the parsed namespace's func runs it."""
    p = subparsers.add_parser(
        "compare", help="trained runs side by side: quality on held-out photos against parameters, FLOPs, latency",
        description="Score trained runs of one task on the same whole held-out photos (with the degraded input and "
                    "the classical method as references) and cost them: parameters, FLOPs at 256 and 512, CPU "
                    "latency, training wall time. Writes compare.md, compare.csv and quality_vs_flops.png.",
        epilog="example:\n  serpentir compare runs/compare/serpent-t runs/compare/swinir-t --out docs/compare",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", metavar="RUN", help="run folders of `serpentir train` (or checkpoint files)")
    p.add_argument("--out", type=Path, default=Path("compare"), help="output folder (default ./compare)")
    p.add_argument("--val-dir", type=Path, default=None,
                   help="clean held-out photos (default: the bundled validation photos)")
    p.add_argument("--latency-size", type=int, default=512, help="square size to time (default 512; 0 skips timing)")
    p.add_argument("--repeats", type=int, default=3, help="timed forward passes after the warm-up (default 3)")
    p.add_argument("--threads", type=int, default=None, help="torch threads in the timing process (default: all)")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds the timing of one model may take (default 900)")
    p.add_argument("--no-plots", action="store_true", help="skip quality_vs_flops.png")
    p.set_defaults(func=run_compare_command)
    return p


def run_compare_command(args: argparse.Namespace) -> None:
    """Validate, score and cost every run, write the outputs, print the markdown."""
    from serpentir_lab.compare import compare_runs
    from serpentir_lab.compare_report import write_comparison

    if args.timeout <= 0 or args.repeats < 1 or args.latency_size < 0:
        raise UserError("--timeout must be positive, --repeats at least 1 and --latency-size >= 0")
    if args.val_dir is not None and not args.val_dir.is_dir():
        raise UserError(f"{args.val_dir}: no such folder of validation photos")
    comparison = compare_runs(args.runs, val_dir=args.val_dir, latency_size=args.latency_size or None,
                              repeats=args.repeats, threads=args.threads, timeout=args.timeout)
    print(write_comparison(comparison, args.out, plot=not args.no_plots))
    print(f"written to {args.out}/: compare.md, compare.csv" + ("" if args.no_plots else ", quality_vs_flops.png"))


def _study_example(doc: str) -> list[str]:
    """The indented example of a study file at the top of the study module's docstring."""
    lines = doc.splitlines()[2:]
    return lines[:lines.index("")] if "" in lines else lines


def add_ablate_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the `ablate` subcommand; the parsed namespace's func runs it."""
    from serpentir_lab.ablate import study

    p = subparsers.add_parser(
        "ablate", help="train a study's variants under one protocol and report quality against cost",
        description="Run a named study from a YAML file: a base training config plus variants, each trained "
                    "under the same protocol, scored on the same held-out whole photos, and reported as "
                    "ablations.csv, ablations.md and plots. Interrupted studies resume where they stopped; "
                    "a finished variant is not trained again (run folders are named by what they learn "
                    "from, so studies share identical variants); a second job on the same study leaves out the "
                    "variant the first is training and goes on to the next.",
        epilog="study file:\n" + "\n".join("  " + line[4:] for line in _study_example(study.__doc__)) +
               "\n\nexamples:\n"
               "  serpentir ablate configs/ablations/directions.yaml --out docs/ablations/directions "
               "--runs-dir runs/ablations\n"
               "  serpentir ablate STUDY.yaml --out /tmp/smoke --set steps=2 --set data.crop_size=32 --no-latency",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("study", type=Path, metavar="STUDY.yaml", help="the study file")
    p.add_argument("--out", type=Path, required=True,
                   help="where ablations.csv, ablations.md, the plots and records/ go (a variant recorded there "
                        "and without a run folder here is reported from its record, not trained again)")
    p.add_argument("--runs-dir", type=Path, default=None, help="where variants train (default OUT/runs; share it "
                   "between studies so identical variants train once)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="an override for every variant, applied last (repeatable)")
    p.add_argument("--only", action="append", default=None, metavar="VARIANT", help="run only this variant (repeatable)")
    p.add_argument("--threads", type=int, default=None, help="torch threads in the timing process (default: all)")
    p.add_argument("--no-latency", action="store_true", help="skip the CPU latency measurement")
    p.add_argument("--no-train", action="store_true", help="only score and report the variants already trained")
    p.set_defaults(func=run_ablate_command)
    return p


def run_ablate_command(args: argparse.Namespace) -> None:
    """Load the study, train and score its variants, print where the report went."""
    import shlex
    import sys

    from serpentir_lab.ablate import load_study, run_study

    if args.threads is not None and args.threads < 1:
        raise UserError("--threads must be at least 1")
    study = load_study(args.study, args.set)
    command = shlex.join(["serpentir", *sys.argv[1:]])
    results = run_study(study, args.out, runs_dir=args.runs_dir, only=args.only,
                        latency_size=None if args.no_latency else 512, threads=args.threads,
                        train=not args.no_train, command=command)
    print((args.out / "ablations.md").read_text())
    print(f"{len(results)} variant(s); written to {args.out}/: ablations.md, ablations.csv and plots")
