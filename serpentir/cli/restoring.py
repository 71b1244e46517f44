"""`serpentir restore` and `demo`: the bundled models (or a checkpoint) applied to a user's images."""

from __future__ import annotations

import argparse
import sys
import textwrap

from .args import DEFAULT_TILE_OVERLAP, non_negative_int, positive_int, quality, tile_overlap, wrap


def _cmd_restore(args: argparse.Namespace) -> int:
    from ..infer import FIXED_STRENGTH, expects, restore_path

    overlap = tile_overlap(args.tile, args.tile_overlap)
    if args.weights is None and args.task in FIXED_STRENGTH:  # such a model harms what it was not trained on
        print(f"serpentir: note: the bundled {args.task} model expects {expects(args.task)}", file=sys.stderr)
    report = restore_path(args.input, args.output, weights=args.weights, task=args.task, device=args.device,
                          tile=args.tile, overlap=overlap, overwrite=args.overwrite, suffix=args.ext,
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


def add_restore_parser(sub) -> None:
    from ..infer import FIXED_STRENGTH, bundled_tasks, expects

    fixed = "".join(textwrap.fill(f"{task:<16} expects {expects(task)}", width=100, initial_indent="  ",
                                  subsequent_indent=" " * 19) + "\n" for task in FIXED_STRENGTH if task in bundled_tasks())
    p = sub.add_parser(
        "restore", help="restore an image or a folder of images (bundled models, or a checkpoint)",
        description=wrap("Restore any size of image. Outputs are written atomically; the input is never overwritten "
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
               "  serpentir restore photos/ -o restored/ --weights last.safetensors --tile 256\n"
               + (f"\nfixed-strength bundled models (trained on one strength; others get worse, not better):\n{fixed}"
                  if fixed else ""),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", metavar="INPUT", help="an image file or a folder of images")
    p.add_argument("-o", "--output", required=True, metavar="OUTPUT",
                   help="output file, or folder for a folder input; one image given an existing folder (or a name "
                        "ending in /) is written inside it under its own name; missing parent folders are created")
    p.add_argument("--weights", metavar="CKPT", help="checkpoint from `serpentir train` (default: the bundled weights "
                                                     "for --task)")
    p.add_argument("--task", help="the task to restore: picks bundled weights (default general; bundled: "
                                  f"{', '.join(bundled_tasks()) or 'none'}), or is checked against --weights")
    p.add_argument("--side-by-side", action="store_true", help="write input | restored side by side, for comparing")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="default: a GPU if there is one")
    p.add_argument("--tile", type=positive_int, metavar="N", help="restore in N x N tiles to bound memory")
    p.add_argument("--tile-overlap", type=non_negative_int, default=None, metavar="PX",
                   help=f"overlap between tiles, blended so seams do not show (default {DEFAULT_TILE_OVERLAP}, "
                        "reduced to fit a small tile); with --tile N at most (N-1)/2, else an error")
    p.add_argument("--no-auto-tile", action="store_true",
                   help="refuse (with --tile advice) instead of tiling an image that would not fit in memory")
    p.add_argument("--mask", metavar="PATH", help="inpainting mask (file, or folder of masks named like the inputs)")
    p.add_argument("--ext", metavar="EXT", help="write outputs in this format (e.g. png) instead of the input's")
    p.add_argument("--quality", type=quality, default=95, help="JPEG / WebP output quality, 1-100 (default 95)")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--skip-existing", action="store_true",
                   help="leave images whose output exists (resume an interrupted batch)")
    p.add_argument("--keep-going", action="store_true",
                   help="report an image that fails on one line and restore the rest (exit 1 with the count)")
    p.set_defaults(func=_cmd_restore)


# --- demo -------------------------------------------------------------------------------------------

def _cmd_demo(args: argparse.Namespace) -> None:
    from ..infer.demo import run_demo

    print(run_demo(args.output, task=args.task, image=args.image, weights=args.weights, overwrite=args.overwrite))


def add_demo_parser(sub) -> None:
    p = sub.add_parser(
        "demo", help="degrade a real bundled photo, restore it with the bundled model, save a side-by-side PNG",
        description=wrap("The main job on a bundled default: a real photo shipped with scikit-image is degraded "
                          "with the task (seed 0), restored with the bundled weights (or --weights), and saved as "
                          "degraded | restored | original, with the PSNR of each printed."))
    p.add_argument("-o", "--output", default="serpentir_demo.png", help="the side-by-side PNG (default %(default)s)")
    p.add_argument("--task", default=None, help="a task with bundled weights (default general), or checked "
                                                "against --weights")
    p.add_argument("--weights", metavar="CKPT", help="a checkpoint from `serpentir train` instead of the bundled "
                                                     "weights (its own task degrades the photo)")
    p.add_argument("--image", help="a clean photo of your own instead of the bundled one")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.set_defaults(func=_cmd_demo)
