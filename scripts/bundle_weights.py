"""Bundle a training run's checkpoint into serpentir/weights/ with its model card.

    python scripts/bundle_weights.py runs/bundled/gaussian_deblur/checkpoints/last.safetensors

The wall time is read from the run's own files: from its config.yaml (written at the start) to the
checkpoint. Pass --wall-time-min when the run was resumed.
"""

import argparse
from pathlib import Path

from serpentir.engine.bundle import bundle_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--wall-time-min", type=float, help="training wall time, if not the files' span")
    args = parser.parse_args()
    run_dir = args.checkpoint.parent.parent
    wall = args.wall_time_min * 60 if args.wall_time_min else \
        args.checkpoint.stat().st_mtime - (run_dir / "config.yaml").stat().st_mtime
    weights, card = bundle_run(args.checkpoint, wall_time_s=wall)
    print(f"wrote {weights} and {card}")
    print(card.read_text())


if __name__ == "__main__":
    main()
