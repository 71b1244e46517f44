"""The `serpentir` command: parses arguments and calls the layers below; no logic of its own.

Every mistake a user can make ends in a one-line message and a non-zero exit code: the layers raise
UserError and `main` prints it; argparse's own errors are squeezed onto one line too.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import textwrap
import time
from pathlib import Path

from .bench.command import add_ablate_parser, add_bench_parser, add_compare_parser
from .errors import UserError
from .huge_pages import enable_huge_pages


class _OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (naming the subcommand and where help is), not a usage dump."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _wrap(text: str) -> str:
    """Descriptions sit beside hand-laid-out examples (raw formatting), so they are wrapped here."""
    return textwrap.fill(text, width=100)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


# --- models / tasks / forward -----------------------------------------------------------------------

def _cmd_models(args: argparse.Namespace) -> None:
    import torch

    from .models import create_model, list_models, model_info

    print(f"{'name':<12} {'params':>10}  description")
    for name in list_models():
        with torch.device("meta"):
            params = sum(p.numel() for p in create_model(name).parameters())
        print(f"{name:<12} {params / 1e6:>9.2f}M  {model_info(name).description}")


def _cmd_tasks(args: argparse.Namespace) -> None:
    from .degradations import get_task, list_tasks

    print(f"{'name':<16} description")
    for name in list_tasks():
        print(f"{name:<16} {get_task(name).description}")


def _cmd_forward(args: argparse.Namespace) -> None:
    import numpy as np
    import torch
    from skimage import data as skdata
    from skimage.transform import resize

    from .models import create_model, model_info

    try:
        model_info(args.model)
    except KeyError as e:
        raise UserError(e.args[0]) from None
    torch.manual_seed(0)
    model = create_model(args.model).eval()
    image = resize(skdata.astronaut(), (args.size, args.size), anti_aliasing=True).astype(np.float32)
    x = torch.from_numpy(image).permute(2, 0, 1)[None]
    with torch.no_grad():
        model(x)  # warm-up
        start = time.perf_counter()
        y = model(x)
        elapsed = time.perf_counter() - start
    params = sum(p.numel() for p in model.parameters())
    print(f"model {args.model}: input {tuple(x.shape)} (skimage astronaut) -> output {tuple(y.shape)}, "
          f"{params / 1e6:.2f}M parameters, forward {elapsed * 1000:.0f} ms on {torch.get_num_threads()} CPU threads")


def add_models_parser(sub) -> None:
    p = sub.add_parser("models", help="list the registered model configurations")
    p.set_defaults(func=_cmd_models)


def add_tasks_parser(sub) -> None:
    p = sub.add_parser("tasks", help="list the restoration tasks (degradations)")
    p.set_defaults(func=_cmd_tasks)


def add_forward_parser(sub) -> None:
    p = sub.add_parser("forward", help="run one forward pass of a model on a real bundled photo and time it")
    p.add_argument("--model", default="serpent-t", help="registered model name (see `serpentir models`)")
    p.add_argument("--size", type=_positive_int, default=256, help="square input size in pixels (default 256)")
    p.set_defaults(func=_cmd_forward)


# --- train ------------------------------------------------------------------------------------------

def _cmd_train(args: argparse.Namespace) -> None:
    import yaml

    from .engine import config_to_dict, load_config, train

    configs = [a for a in args.items if "=" not in a]
    overrides = [a for a in args.items if "=" in a] + list(args.set or [])
    if len(configs) > 1:
        raise UserError(f"give at most one config file, got {', '.join(configs)} (overrides are key=value)")
    if args.out_dir:
        overrides.append(f"out_dir={args.out_dir}")
    if args.resume is not None:
        overrides.append(f"resume={args.resume}")
    config = load_config(configs[0] if configs else None, overrides)
    if args.print_config:
        print(yaml.safe_dump(config_to_dict(config), sort_keys=False), end="")
        return
    result = train(config, stop_after=args.stop_after)
    if result.checkpoint is not None:
        print(f"step {result.step}: checkpoint {result.checkpoint}")


def add_train_parser(sub) -> None:
    p = sub.add_parser(
        "train", help="train a model on a task from a YAML config",
        description=_wrap("Train any registered model on any task. Settings come from the YAML config (defaults for "
                    "anything it leaves out), then from key=value overrides with dotted keys. Run under torchrun "
                    "for several GPUs or nodes: the same command works as one process."),
        epilog="examples:\n"
               "  serpentir train configs/serpent-t_gaussian_deblur.yaml\n"
               "  serpentir train configs/serpent-t_denoise.yaml steps=500 optim.lr=1e-3 data.crop_size=48\n"
               "  serpentir train CONFIG.yaml --resume            # continue out_dir's last checkpoint exactly\n"
               "  torchrun --nproc_per_node=4 -m serpentir.cli train CONFIG.yaml\n"
               "  serpentir train CONFIG.yaml --print-config      # show every setting and its value",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("items", nargs="*", metavar="CONFIG.yaml | key=value",
                   help="a config file and/or overrides such as optim.lr=1e-3, task.params.sigma=2, model.name=serpent-b")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="an override (same as a bare key=value); repeatable")
    p.add_argument("--out-dir", help="where logs and checkpoints go (overrides out_dir)")
    p.add_argument("--resume", nargs="?", const="true", default=None, metavar="CKPT",
                   help="continue from out_dir's last checkpoint (or from CKPT) with identical results")
    p.add_argument("--stop-after", type=_positive_int, metavar="STEP",
                   help="stop after this step with a checkpoint, as if interrupted (continue later with --resume)")
    p.add_argument("--print-config", action="store_true", help="print the resolved config as YAML and exit")
    p.set_defaults(func=_cmd_train)


# --- eval -------------------------------------------------------------------------------------------

def _cmd_eval(args: argparse.Namespace) -> None:
    from .engine import evaluate_checkpoint, format_summary

    rows, summary = evaluate_checkpoint(
        args.weights, args.out, data_dir=args.data, input_dir=args.input_dir, target_dir=args.target_dir,
        seed=args.seed, device=args.device, with_lpips=not args.no_lpips, crop_border=args.crop_border,
        y_channel=args.y_channel, tile=args.tile, overlap=args.tile_overlap, save_images=args.save_images)
    print(f"{summary['images']} images, means (per-image scores in {Path(args.out) / 'per_image.csv'}):")
    print(format_summary(summary))


def add_eval_parser(sub) -> None:
    p = sub.add_parser(
        "eval", help="score a checkpoint (PSNR, SSIM, LPIPS) on a folder of images",
        description=_wrap("Score a checkpoint against the degraded input as the reference to beat. With --data, clean "
                    "images are degraded on the fly with the checkpoint's own task (image i seeded by --seed and "
                    "its index, as `serpentir degrade` does); with --input-dir/--target-dir, pairs are matched "
                    "by name. Without either, the bundled sample photos' val/ set is used."),
        epilog="example:\n  serpentir eval --weights runs/x/checkpoints/last.safetensors --data photos/ --out eval/",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", required=True, metavar="CKPT", help="a checkpoint written by `serpentir train`")
    p.add_argument("--data", metavar="DIR", help="clean images, degraded on the fly")
    p.add_argument("--input-dir", metavar="DIR", help="degraded images (e.g. from `serpentir degrade`)")
    p.add_argument("--target-dir", metavar="DIR", help="the clean images they came from")
    p.add_argument("--out", required=True, metavar="DIR", help="where per_image.csv and summary.csv go")
    p.add_argument("--seed", type=int, default=0, help="degradation seed for --data (default 0)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="default: a GPU if there is one")
    p.add_argument("--no-lpips", action="store_true", help="skip LPIPS (the slowest metric)")
    p.add_argument("--crop-border", type=_non_negative_int, default=0, metavar="PX", help="pixels ignored at each border")
    p.add_argument("--y-channel", action="store_true", help="score the luma (BT.601 Y) channel, as SR papers do")
    p.add_argument("--tile", type=_positive_int, metavar="N", help="restore in N x N tiles (bounded memory)")
    p.add_argument("--tile-overlap", type=_non_negative_int, default=32, metavar="PX", help="tile overlap (default 32)")
    p.add_argument("--save-images", action="store_true", help="also write the restored images to OUT/images/")
    p.set_defaults(func=_cmd_eval)


# --- restore ----------------------------------------------------------------------------------------

def _cmd_restore(args: argparse.Namespace) -> int:
    from .engine import restore_path

    report = restore_path(args.input, args.output, weights=args.weights, task=args.task, device=args.device,
                          tile=args.tile, overlap=args.tile_overlap, overwrite=args.overwrite, suffix=args.ext,
                          mask=args.mask, compare=args.side_by_side, keep_going=args.keep_going,
                          skip_existing=args.skip_existing, auto_tile=not args.no_auto_tile, quality=args.quality)
    written = report.written
    where = written[0] if len(written) == 1 else args.output
    skipped = f", {report.skipped} skipped (output exists)" if report.skipped else ""
    print(f"restored {len(written)} image{'s' if len(written) != 1 else ''} -> {where}{skipped}")
    if report.failed:
        total = len(report.failed) + len(written)
        print(f"serpentir: error: {len(report.failed)} of {total} images failed (each named above)", file=sys.stderr)
        return 1
    return 0


def _quality(text: str) -> int:
    value = _positive_int(text)
    if value > 100:
        raise argparse.ArgumentTypeError(f"expected a quality from 1 to 100, got {text!r}")
    return value


def add_restore_parser(sub) -> None:
    from .engine.restore import bundled_tasks

    p = sub.add_parser(
        "restore", help="restore an image or a folder of images with a checkpoint",
        description=_wrap("Restore any size of image. Outputs are written atomically; the input is never overwritten "
                    "and existing outputs are kept unless --overwrite. Each output keeps its input's kind: grey "
                    "stays grey, 16-bit stays 16-bit (PNG, TIFF), alpha is copied unchanged, the ICC profile "
                    "and EXIF are kept; the format follows the output's extension. An image too large for "
                    "memory is restored in tiles, with a notice. Bundled tasks (no --weights needed): "
                    f"{', '.join(bundled_tasks()) or 'none'}."),
        epilog="examples:\n"
               "  serpentir restore photo.jpg -o restored.png             # bundled general model\n"
               "  serpentir restore noisy.jpg -o clean.jpg --task denoise --quality 92\n"
               "  serpentir restore blurry.png -o sharp.png --weights last.safetensors\n"
               "  serpentir restore photos/ -o restored/ --keep-going --skip-existing  # resumable batch\n"
               "  serpentir restore photos/ -o restored/ --weights last.safetensors --tile 256",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", metavar="INPUT", help="an image file or a folder of images")
    p.add_argument("-o", "--output", required=True, metavar="OUTPUT", help="output file, or folder for a folder input")
    p.add_argument("--weights", metavar="CKPT", help="checkpoint from `serpentir train` (default: the bundled weights "
                                                     "for --task)")
    p.add_argument("--task", help="the task to restore: picks bundled weights (default general; bundled: "
                                  f"{', '.join(bundled_tasks()) or 'none'}), or is checked against --weights")
    p.add_argument("--side-by-side", action="store_true", help="write input | restored side by side, for comparing")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="default: a GPU if there is one")
    p.add_argument("--tile", type=_positive_int, metavar="N", help="restore in N x N tiles to bound memory")
    p.add_argument("--tile-overlap", type=_non_negative_int, default=32, metavar="PX",
                   help="overlap between tiles, blended so seams do not show (default 32)")
    p.add_argument("--no-auto-tile", action="store_true",
                   help="refuse (with --tile advice) instead of tiling an image that would not fit in memory")
    p.add_argument("--mask", metavar="PATH", help="inpainting mask (file, or folder of masks named like the inputs)")
    p.add_argument("--ext", metavar="EXT", help="write outputs in this format (e.g. png) instead of the input's")
    p.add_argument("--quality", type=_quality, default=95, help="JPEG / WebP output quality, 1-100 (default 95)")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--skip-existing", action="store_true",
                   help="leave images whose output exists (resume an interrupted batch)")
    p.add_argument("--keep-going", action="store_true",
                   help="report an image that fails on one line and restore the rest (exit 1 with the count)")
    p.set_defaults(func=_cmd_restore)


# --- demo -------------------------------------------------------------------------------------------

def _cmd_demo(args: argparse.Namespace) -> None:
    from .engine.demo import run_demo

    print(run_demo(args.output, task=args.task, image=args.image, overwrite=args.overwrite))


def add_demo_parser(sub) -> None:
    p = sub.add_parser(
        "demo", help="degrade a real bundled photo, restore it with the bundled model, save a side-by-side PNG",
        description=_wrap("The main job on a bundled default: a real photo shipped with scikit-image is degraded "
                          "with the task (seed 0), restored with the bundled weights, and saved as degraded | "
                          "restored | original, with the PSNR of each printed."))
    p.add_argument("-o", "--output", default="serpentir_demo.png", help="the side-by-side PNG (default %(default)s)")
    p.add_argument("--task", default=None, help="a task with bundled weights (default general)")
    p.add_argument("--image", help="a clean photo of your own instead of the bundled one")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.set_defaults(func=_cmd_demo)


# --- degrade ----------------------------------------------------------------------------------------

def _cmd_degrade(args: argparse.Namespace) -> None:
    import yaml

    from .engine import degrade_folder

    params = {}
    for item in args.param or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"bad --param {item!r}: expected name=value, e.g. sigma=2.0")
        params[key] = yaml.safe_load(value)
    written = degrade_folder(args.input_dir, args.output, task=args.task, params=params, seed=args.seed,
                             channels=args.channels, overwrite=args.overwrite)
    print(f"degraded {len(written)} images with {args.task} (seed {args.seed}) -> {args.output}")


def add_degrade_parser(sub) -> None:
    p = sub.add_parser(
        "degrade", help="write a degraded copy of an image folder (benchmark inputs)",
        description=_wrap("Degrade every image of a folder with a task; image i (sorted names) is seeded by --seed and "
                    "its index, exactly as `serpentir eval --data` degrades on the fly. Outputs are PNG; "
                    "inpainting masks go to OUT_DIR/masks/."),
        epilog="example:\n  serpentir degrade photos/ -o photos_blurred/ --task gaussian_deblur --seed 0",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input_dir", metavar="IN_DIR", help="folder of clean images")
    p.add_argument("-o", "--output", required=True, metavar="OUT_DIR", help="folder for the degraded copies")
    p.add_argument("--task", required=True, help="task name (see `serpentir tasks`)")
    p.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    p.add_argument("--param", action="append", metavar="NAME=VALUE", help="task parameter, e.g. sigma=2.0; repeatable")
    p.add_argument("--channels", type=int, choices=(1, 3), default=3, help="1 for greyscale, 3 for RGB (default)")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.set_defaults(func=_cmd_degrade)


# --- serve ------------------------------------------------------------------------------------------

def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _cmd_serve(args: argparse.Namespace) -> None:
    from .serve import Limits, serve  # the web extra's modules are imported only here

    limits = Limits(max_upload_bytes=int(args.max_upload_mb * 1024 * 1024), max_pixels=args.max_pixels,
                    queue_size=args.queue_size, workers=args.workers)
    serve(args.host, args.port, limits=limits, device=args.device, tile=args.tile)


def add_serve_parser(sub) -> None:
    defaults = {"max_upload_mb": 25, "max_pixels": 4_000_000, "queue_size": 4, "workers": 1}
    p = sub.add_parser(
        "serve", help="a web page (and HTTP API) to restore photos with the bundled models",
        description=_wrap("Serve a page where a photo is uploaded, restored with a bundled model and compared before "
                          "and after, plus an HTTP API for scripts. Needs the web extra: "
                          'pip install "serpentir[web]". Listens on this machine only unless --host says otherwise.'),
        epilog="examples:\n"
               "  serpentir serve                                    # then open http://127.0.0.1:7860/\n"
               "  curl --data-binary @blurry.png -o sharp.png http://127.0.0.1:7860/api/restore\n"
               "  curl --data-binary @noisy.png -o clean.png 'http://127.0.0.1:7860/api/restore?task=denoise'",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=_non_negative_int, default=7860, help="port (default 7860; 0 picks a free one)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="default: a GPU if there is one")
    p.add_argument("--tile", type=_positive_int, metavar="N", help="restore in N x N tiles to bound memory")
    p.add_argument("--max-upload-mb", type=_positive_float, default=defaults["max_upload_mb"], metavar="MB",
                   help="largest upload accepted (default %(default)s)")
    p.add_argument("--max-pixels", type=_positive_int, default=defaults["max_pixels"], metavar="N",
                   help="largest image accepted, width x height (default %(default)s)")
    p.add_argument("--queue-size", type=_positive_int, default=defaults["queue_size"], metavar="N",
                   help="restorations that may wait; more get 503 with Retry-After (default %(default)s)")
    p.add_argument("--workers", type=_positive_int, default=defaults["workers"], metavar="N",
                   help="restorations run at once (default %(default)s; more only share the same cores)")
    p.set_defaults(func=_cmd_serve)


# --- export -----------------------------------------------------------------------------------------

def _cmd_export(args: argparse.Namespace) -> None:
    from .export.onnx import PARITY_TOLERANCE, export_onnx

    result = export_onnx(args.onnx, task=args.task, weights=args.weights, overwrite=args.overwrite)
    check = ("onnxruntime not installed: not checked" if result.max_abs_diff is None else
             f"max |onnxruntime - PyTorch| = {result.max_abs_diff:.1e} on a {result.check_size[1]}x"
             f"{result.check_size[0]} photo crop (limit {PARITY_TOLERANCE:g})")
    print(f"wrote {result.path} (task {result.task}, input (N, {result.channels}, H, W) float32 in [0, 1], "
          f"any N, H, W); {check}")


def add_export_parser(sub) -> None:
    p = sub.add_parser(
        "export", help="write a model as an ONNX graph (dynamic height and width) for onnxruntime",
        description=_wrap("Export a bundled task's model or a checkpoint to ONNX (needs pip install "
                          "'serpentir[onnx]'). The graph takes any batch, height and width, clamps its output to "
                          "[0, 1] like `restore`, and is checked against PyTorch with onnxruntime after writing."),
        epilog="examples:\n"
               "  serpentir export --onnx deblur.onnx --task gaussian_deblur\n"
               "  serpentir export --onnx mine.onnx --weights last.safetensors",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--onnx", required=True, metavar="FILE", help="the .onnx file to write")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--task", help="export the bundled weights of this task")
    source.add_argument("--weights", metavar="CKPT", help="export this checkpoint from `serpentir train`")
    p.add_argument("--overwrite", action="store_true", help="replace an existing FILE")
    p.set_defaults(func=_cmd_export)


# --- corpus -----------------------------------------------------------------------------------------

def _cmd_corpus_build(args: argparse.Namespace) -> None:
    from .corpus import build_corpus, read_manifest

    manifest = build_corpus(args.dir, max_side=args.max_side, overwrite=args.overwrite)
    rows = read_manifest(args.dir)
    megapixels = sum(int(r["width"]) * int(r["height"]) for r in rows) / 1e6
    val = sum(r["split"] == "val" for r in rows)
    print(f"{len(rows)} photos ({megapixels:.1f} megapixels; {len(rows) - val} train, {val} val) -> {manifest}")


def add_corpus_parser(sub) -> None:
    p = sub.add_parser(
        "corpus", help="build a training corpus of the real photographs installed on this machine",
        description=_wrap("Gathers the photographs of the Debian packages mate-backgrounds and "
                          "plasma-workspace-wallpapers (apt-get install them first) and the photos that scikit-image, "
                          "scikit-learn and matplotlib ship, into DIR/train and DIR/val (whole photos held out) "
                          "with DIR/manifest.csv (package, source file, size, sha256, split)."),
        epilog="example:\n  serpentir corpus build ~/serpentir_corpus --max-side 1600",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    corpus_sub = p.add_subparsers(dest="corpus_command", required=True, metavar="ACTION")
    b = corpus_sub.add_parser("build", help="gather the installed photos into DIR")
    b.add_argument("dir", metavar="DIR", help="the corpus folder to write (new or empty)")
    b.add_argument("--max-side", type=_positive_int, default=None,
                   help="downscale photos whose long side is larger (default: keep full size)")
    b.add_argument("--overwrite", action="store_true", help="replace the corpus already in DIR")
    b.set_defaults(func=_cmd_corpus_build)


# --- the parser -------------------------------------------------------------------------------------

SUBCOMMANDS = [add_models_parser, add_tasks_parser, add_demo_parser, add_forward_parser, add_train_parser,
               add_eval_parser, add_restore_parser, add_degrade_parser, add_corpus_parser, add_bench_parser,
               add_compare_parser, add_ablate_parser, add_serve_parser, add_export_parser]


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(prog="serpentir", description="Image restoration with Serpent state-space networks.")
    verbose_help = "log which scan backend is used, etc. (before or after the command)"
    parser.add_argument("-v", "--verbose", action="store_true", help=verbose_help)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add_parser in SUBCOMMANDS:
        add_parser(sub)
    for command in sub.choices.values():  # -v after the command too; SUPPRESS keeps one given before it
        with contextlib.suppress(argparse.ArgumentError):  # a command that has its own -v keeps it
            command.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=verbose_help)
    return parser


def main(argv: list[str] | None = None) -> int:
    enable_huge_pages()  # before the first tensor: large CPU tensors take fewer page faults (huge_pages.py)
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    try:
        code = args.func(args)
    except UserError as e:
        print(f"serpentir: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # the disk or the file system said no (full, read-only, permission): not a bug
        print(f"serpentir: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("serpentir: interrupted", file=sys.stderr)
        return 130
    return code or 0


if __name__ == "__main__":
    sys.exit(main())
