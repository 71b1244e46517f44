"""Pack a corpus small enough to travel to a lent GPU beside the working tree.

A call of the device tool carries at most 64 MiB: the working tree (about 40 MB: weights, LPIPS, docs)
plus the paths it is told to carry. `runs/corpus1600` (48 MB of PNG) does not fit beside it. This
writes the photos again as lossless WebP (the same pixels, about 0.77x the bytes), training photos
smallest first until the budget is spent (the most photos the budget allows), and the smallest
validation photos for the run's curve; the photos left out are listed. Training on such a subset is
its own round: back on the CPU, scripts/bundle_weights.py scores it on the whole held-out set.

    python benchmarks/gpu/carry_corpus.py --corpus /work/runs/corpus1600 --out runs/gpu_corpus
    python3 benchmarks/gpu/train_general.py --corpus runs/gpu_corpus --out "$OUT" --minutes 7   # on the device

The default budget is the device's 64 MiB less what the working tree already carries (git's tracked
and not-ignored files), less a 2 MB margin.
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CARRY_LIMIT = 64 * 2**20  # bytes the device tool carries per call, working tree included
MARGIN = 2 * 10**6


def tree_bytes(root: Path = ROOT) -> int:
    """Bytes of what a device call sends from this checkout: tracked files and untracked, not-ignored ones."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=root,
                            capture_output=True, check=True).stdout.decode().split("\0")
    paths = (root / name for name in listed if name)
    return sum(path.stat().st_size for path in paths if path.is_file())


def lossless_webp(path: Path) -> bytes:
    """The photo as lossless WebP, checked to decode to the same pixels."""
    from PIL import Image

    with Image.open(path) as image:
        image.load()
        rgb = image.convert("RGB")
    buffer = io.BytesIO()
    rgb.save(buffer, "WEBP", lossless=True, quality=100, method=4)
    data = buffer.getvalue()
    with Image.open(io.BytesIO(data)) as back:
        if back.convert("RGB").tobytes() != rgb.tobytes():
            raise SystemExit(f"{path}: lossless WebP did not give the same pixels back")
    return data


def pack(corpus: Path, out: Path, budget: int, val_photos: int = 2) -> dict:
    """Write out/{train,val}/*.webp within budget bytes; returns what was kept and left out."""
    from serpentir.image_io import list_images

    packed = {split: [(p, lossless_webp(p)) for p in list_images(corpus / split)] for split in ("train", "val")}
    if not packed["train"]:
        raise SystemExit(f"{corpus / 'train'}: no photos")
    val = sorted(packed["val"], key=lambda item: len(item[1]))[:val_photos]
    room = budget - sum(len(data) for _, data in val)
    train, left_out = [], []
    for path, data in sorted(packed["train"], key=lambda item: len(item[1])):
        if len(data) <= room:
            train.append((path, data))
            room -= len(data)
        else:
            left_out.append(path.stem)
    if not train:
        raise SystemExit(f"a budget of {budget / 1e6:.1f} MB holds no training photo of {corpus}")
    for split, items in (("train", train), ("val", val)):
        (out / split).mkdir(parents=True, exist_ok=True)
        for path, data in items:
            (out / split / f"{path.stem}.webp").write_bytes(data)
    report = {"train": [p.stem for p, _ in train], "val": [p.stem for p, _ in val], "left_out": left_out,
              "bytes": sum(len(d) for _, d in train + val)}
    (out / "left_out.txt").write_text("".join(f"{name}\n" for name in left_out))
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, required=True, help="a corpus from `serpentir corpus build`")
    parser.add_argument("--out", type=Path, required=True, help="a new folder inside the checkout, to carry")
    parser.add_argument("--budget-mb", type=float, default=None,
                        help="bytes to fill, in MB (default: 64 MiB less the working tree, less 2 MB)")
    parser.add_argument("--val-photos", type=int, default=2)
    args = parser.parse_args(argv)
    if args.out.exists() and any(args.out.iterdir()):
        raise SystemExit(f"{args.out}: not empty; give a new folder")
    budget = int(args.budget_mb * 1e6) if args.budget_mb else CARRY_LIMIT - tree_bytes() - MARGIN
    report = pack(args.corpus, args.out, budget, args.val_photos)
    print(f"{args.out}: {len(report['train'])} training photos and {len(report['val'])} validation photos, "
          f"{report['bytes'] / 1e6:.1f} of {budget / 1e6:.1f} MB; left out: {', '.join(report['left_out']) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
