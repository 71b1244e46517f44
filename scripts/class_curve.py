"""Per-strength learning curves of a blind run, scored as its model card scores it (issue 18's floors).

    OMP_NUM_THREADS=1 python scripts/class_curve.py /work/runs/general6 --corpus /work/runs/corpus1600 \
        --out docs/campaign/general_round6_curve --every 500

Writes class_curve.md (each strength's gain at the first and last step, its slope over the last 1000
steps, a line's slope over the last --fit-span steps, its floor and whether it is met, flat below it or
still moving), class_curve.csv and class_curve.png into --out. Scores are cached there per checkpoint,
so a run trained further is extended by scoring only its new checkpoints. With --after EARLIER_OUT, a
round that continued an earlier one (its weights, the same rate) is drawn as one curve with it, its
steps counted on from the earlier round's last.
"""

import argparse
import shlex
import sys
from pathlib import Path

from serpentir.checkpoint import read_metadata
from serpentir.errors import UserError
from serpentir_lab.release.class_curve import (cached_rows, checkpoints_every, class_curve, continued, scoring_key,
                                                 write_curve)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path, help="a training run folder (its checkpoints/step_*.safetensors)")
    parser.add_argument("--corpus", type=Path, required=True, help="the corpus whose val/ photos the card scores")
    parser.add_argument("--out", type=Path, required=True, help="folder for class_curve.{md,csv,png} and the cache")
    parser.add_argument("--every", type=int, default=500, help="score every N-th step's checkpoint (500)")
    parser.add_argument("--max-side", type=int, default=768, help="cap the photos' long side, as the card does (768)")
    parser.add_argument("--after", type=Path, default=None,
                        help="the --out folder of the round this run continued from: one curve of both, steps counted on")
    parser.add_argument("--fit-span", type=int, default=3000, help="steps the fitted slope spans, back from the last (3000)")
    args = parser.parse_args()
    if args.every < 1 or args.fit_span < 1:
        raise UserError(f"--every and --fit-span must be positive numbers of steps, not {args.every} and {args.fit_span}")
    if not (args.corpus / "val").is_dir():
        raise UserError(f"{args.corpus}: no val/ folder of held-out photos (build it with serpentir corpus build)")
    task = read_metadata(checkpoints_every(args.run_dir, args.every)[0][1])["task"]["name"]
    rows = class_curve(args.run_dir, args.corpus, args.out, every=args.every, max_side=args.max_side)
    title = f"{task}: gain per strength along {args.run_dir.name}"
    if args.after is not None:
        key, earlier = cached_rows(args.after)
        if key != scoring_key(args.corpus, args.max_side):
            raise UserError(f"{args.after}: scored on other photos ({key}); score both rounds on the same corpus and size")
        rows = continued(earlier, rows)
        title += f", after {args.after.name} (steps counted on from its last)"
    command = shlex.join(["python", "scripts/class_curve.py", *sys.argv[1:]])
    card = write_curve(rows, task, args.out, title=title, command=command, fit_span=args.fit_span)
    print(card.read_text())


if __name__ == "__main__":
    try:
        main()
    except UserError as e:
        sys.exit(f"class_curve: error: {e}")
