"""Score the straight line in weight space between two fine-tunes of one model (issue 18's campaign).

    python scripts/weight_path.py serpentir/weights/general.safetensors /work/runs/general5/checkpoints/last.safetensors \
        --alphas 0,0.25,0.5,0.75,1 --out /work/runs/path_g4_g5
    OMP_NUM_THREADS=1 python scripts/class_curve.py /work/runs/path_g4_g5 --corpus CORPUS --out OUT --every 250

Writes OUT/checkpoints/step_N.safetensors, the weights (1 - alpha) * A + alpha * B for each alpha
(N = 1000 * alpha: step 0 is A, step 1000 is B), so that class_curve scores the path per strength as
the model card does ("step" reads as the share of B, in thousandths).
"""

import argparse
import sys
from pathlib import Path

from serpentir.errors import UserError
from serpentir_lab.release.weight_path import write_weight_path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("a", type=Path, help="the checkpoint at alpha 0")
    parser.add_argument("b", type=Path, help="the checkpoint at alpha 1")
    parser.add_argument("--alphas", default="0,0.25,0.5,0.75,1", help="comma-separated shares of B (0..1)")
    parser.add_argument("--out", type=Path, required=True, help="a new run folder for the path's checkpoints")
    args = parser.parse_args()
    try:
        alphas = [float(x) for x in args.alphas.split(",") if x]
    except ValueError:
        print(f"weight_path: error: --alphas {args.alphas!r}: expected numbers, e.g. 0,0.5,1", file=sys.stderr)
        return 2
    try:
        for path in write_weight_path(args.a, args.b, alphas, args.out):
            print(path)
    except UserError as e:
        print(f"weight_path: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
