"""Whole against tiled restoration at 1024, 2048 and beyond (the paper's open question 3): docs/scaling/.

    python -m serpentir_lab.scaling --model serpent-t=runs/compare128/serpent-t --model nafnet-t=runs/compare128/nafnet-t \
        --manifest runs/corpus --out docs/scaling/gaussian_deblur

Every held-out photo of the corpus (its full-resolution original; the `val` split unless --split
says otherwise) is centre-cropped to each size, degraded with the models' task, and restored whole
and in tiles (512 px, or each size of --tile 128,256), each case in a fresh process (time and peak
memory of the restoration, then PSNR/SSIM/LPIPS). Writes scaling.csv (model, mode, size, psnr, ssim,
lpips, seconds, peak_mb), scaling_whole_vs_tiled.csv (whole minus tiled per model, size and tile
size, photo by photo, with a 95% bootstrap interval), scaling_per_photo.csv, scaling.md and
scaling.png; finished cases are kept and skipped when the command is run again.
"""

import argparse
import shlex
import sys
from pathlib import Path

from serpentir.errors import UserError

from ..model_spec import labelled_checkpoint
from .run import DEFAULT_SIZES, MODES, held_out_photos, parse_size, photo_of, run_scaling


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m serpentir_lab.scaling", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", required=True, metavar="LABEL=RUN",
                        help="a trained run folder or checkpoint with the label it gets in the report, a bare path, "
                             "or a bundled task name (repeatable)")
    parser.add_argument("--manifest", type=Path, required=True, help="a corpus folder (serpentir corpus build)")
    parser.add_argument("--split", action="append", choices=("val", "test"), default=None,
                        help="the corpus' held-out split(s) to restore (repeatable; default: val)")
    parser.add_argument("--extra-photo", action="append", default=[], type=Path, metavar="PATH",
                        help="a photo that is not held out, for sizes no held-out photo reaches (reported as such)")
    parser.add_argument("--sizes", default=",".join(f"{w}x{h}" for w, h in DEFAULT_SIZES), help="WxH,WxH,...")
    parser.add_argument("--modes", default=",".join(MODES), help="whole,tiled")
    parser.add_argument("--tile", default="512", help="tile size(s) in px, comma-separated (default 512)")
    parser.add_argument("--overlap", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per restoration (default 1)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    try:
        models = dict(labelled_checkpoint(item) for item in args.model)
        modes = tuple(m for m in args.modes.split(",") if m)
        if not set(modes) <= set(MODES):
            raise UserError(f"--modes: choose from {', '.join(MODES)}")
        try:
            tiles = tuple(int(t) for t in args.tile.split(",") if t)
        except ValueError:
            raise UserError(f"--tile {args.tile!r}: expected sizes in px, e.g. 128,256") from None
        if not tiles or min(tiles) < 1:
            raise UserError(f"--tile {args.tile!r}: expected sizes in px, e.g. 128,256")
        splits = tuple(args.split or ("val",))
        photos = held_out_photos(args.manifest, splits) + [photo_of(p) for p in args.extra_photo]
        sizes = [parse_size(s) for s in args.sizes.split(",") if s]
        run_scaling(models, photos, sizes, args.out, modes=modes, tiles=tiles, overlap=args.overlap,
                    threads=args.threads, command=shlex.join(["python", "-m", "serpentir_lab.scaling", *sys.argv[1:]]))
    except UserError as e:
        print(f"scaling: error: {e}", file=sys.stderr)
        return 2
    print((args.out / "scaling.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
