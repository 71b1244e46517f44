"""`serpentir train`, `eval` and `degrade`: training from a config, scoring a checkpoint, making test inputs."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import UserError
from .args import DEFAULT_TILE_OVERLAP, non_negative_int, positive_int, tile_overlap, wrap


def _cmd_train(args: argparse.Namespace) -> None:
    import yaml

    from ..train import config_to_dict, load_config, train

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
        description=wrap("Train any registered model on any task. Settings come from the YAML config (defaults for "
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
    p.add_argument("--stop-after", type=positive_int, metavar="STEP",
                   help="stop after this step with a checkpoint, as if interrupted (continue later with --resume)")
    p.add_argument("--print-config", action="store_true", help="print the resolved config as YAML and exit")
    p.set_defaults(func=_cmd_train)


# --- eval -------------------------------------------------------------------------------------------

def _cmd_eval(args: argparse.Namespace) -> None:
    from ..infer import evaluate_checkpoint, format_summary

    rows, summary = evaluate_checkpoint(
        args.weights, args.out, data_dir=args.data, input_dir=args.input_dir, target_dir=args.target_dir,
        seed=args.seed, device=args.device, with_lpips=not args.no_lpips, crop_border=args.crop_border,
        y_channel=args.y_channel, tile=args.tile, overlap=tile_overlap(args.tile, args.tile_overlap), save_images=args.save_images)
    print(f"{summary['images']} images, means (per-image scores in {Path(args.out) / 'per_image.csv'}):")
    print(format_summary(summary))


def add_eval_parser(sub) -> None:
    p = sub.add_parser(
        "eval", help="score a checkpoint (PSNR, SSIM, LPIPS) on a folder of images",
        description=wrap("Score a checkpoint against the degraded input as the reference to beat. With --data, clean "
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
    p.add_argument("--crop-border", type=non_negative_int, default=0, metavar="PX", help="pixels ignored at each border")
    p.add_argument("--y-channel", action="store_true", help="score the luma (BT.601 Y) channel, as SR papers do")
    p.add_argument("--tile", type=positive_int, metavar="N", help="restore in N x N tiles (bounded memory)")
    p.add_argument("--tile-overlap", type=non_negative_int, default=None, metavar="PX",
                   help=f"tile overlap (default {DEFAULT_TILE_OVERLAP}); with --tile N at most (N-1)/2, else an error")
    p.add_argument("--save-images", action="store_true", help="also write the restored images to OUT/images/")
    p.set_defaults(func=_cmd_eval)


def _cmd_degrade(args: argparse.Namespace) -> None:
    import yaml

    from ..infer import degrade_folder

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
        description=wrap("Degrade every image of a folder with a task; image i (sorted names) is seeded by --seed and "
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
