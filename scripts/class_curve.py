"""Per-strength learning curves of a blind run, scored as its model card scores it (issue 18's floors).

    OMP_NUM_THREADS=1 python scripts/class_curve.py /work/runs/general6 --corpus /work/runs/corpus1600 \
        --out docs/campaign/general_round6_curve --every 500

Writes class_curve.md (each strength's gain at the first and last step, its slope over the last 1000
steps, its floor and whether it is met, flat below it or still moving), class_curve.csv and
class_curve.png into --out. Scores are cached there per checkpoint, so a run trained further is
extended by scoring only its new checkpoints.
"""

import argparse
import shlex
import sys
from pathlib import Path

from serpentir.checkpoint import read_metadata
from serpentir.errors import UserError
from serpentir_lab.release.class_curve import checkpoints_every, class_curve, write_curve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path, help="a training run folder (its checkpoints/step_*.safetensors)")
    parser.add_argument("--corpus", type=Path, required=True, help="the corpus whose val/ photos the card scores")
    parser.add_argument("--out", type=Path, required=True, help="folder for class_curve.{md,csv,png} and the cache")
    parser.add_argument("--every", type=int, default=500, help="score every N-th step's checkpoint (500)")
    parser.add_argument("--max-side", type=int, default=768, help="cap the photos' long side, as the card does (768)")
    args = parser.parse_args()
    if args.every < 1:
        raise UserError(f"--every must be a positive number of steps, not {args.every}")
    if not (args.corpus / "val").is_dir():
        raise UserError(f"{args.corpus}: no val/ folder of held-out photos (build it with serpentir corpus build)")
    task = read_metadata(checkpoints_every(args.run_dir, args.every)[0][1])["task"]["name"]
    rows = class_curve(args.run_dir, args.corpus, args.out, every=args.every, max_side=args.max_side)
    command = shlex.join(["python", "scripts/class_curve.py", *sys.argv[1:]])
    card = write_curve(rows, task, args.out, title=f"{task}: gain per strength along {args.run_dir.name}", command=command)
    print(card.read_text())


if __name__ == "__main__":
    try:
        main()
    except UserError as e:
        sys.exit(f"class_curve: error: {e}")
