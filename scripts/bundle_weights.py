"""Bundle a training run's checkpoint into serpentir/weights/ with its model card.

    python scripts/bundle_weights.py runs/bundled/gaussian_deblur/checkpoints/last.safetensors

The wall time is read from the run's own files: from its config.yaml (written at the start) to the
checkpoint. Pass --wall-time-min when the run was resumed or had earlier stages; a fine-tuned model
names its configs in order:

    python scripts/bundle_weights.py runs/finetuned/checkpoints/last.safetensors \
        --config configs/bundled/gaussian_deblur.yaml --config configs/my_finetune.yaml \
        --history "fine-tuned from stage 1: 6000 steps on 64-pixel crops" --wall-time-min 50

A blind model trained on the real-photo corpus is validated per degradation strength on the corpus'
held-out photos instead (whole photos, long side capped by --max-side), against the model it would
replace: it is refused unless no class gets worse and sharp photos stay >= 38 dB (--force overrides),
and the card's history table gains a row:

    OMP_NUM_THREADS=1 python scripts/bundle_weights.py /work/runs/general/checkpoints/last.safetensors \
        --corpus /work/runs/corpus1600 --wall-time-min 70 --notes-file notes.md
"""

import argparse
import shlex
import sys
from pathlib import Path

from serpentir.errors import UserError
from serpentir.train import CONFIG, run_dir_of
from serpentir_lab.release import bundle_blind_run, bundle_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--wall-time-min", type=float, help="training wall time, if not the files' span")
    parser.add_argument("--config", action="append", dest="configs", metavar="YAML",
                        help="a config to retrain it with, in order (repeat for staged training; "
                             "default configs/bundled/TASK.yaml)")
    parser.add_argument("--history", help="what came before this run, e.g. the stage it was fine-tuned from")
    parser.add_argument("--corpus", type=Path, help="a blind model: validate on this corpus' held-out photos")
    parser.add_argument("--max-side", type=int, default=768, help="with --corpus: cap the photos' long side (768)")
    parser.add_argument("--notes-file", type=Path, help="with --corpus: markdown appended to the card")
    parser.add_argument("--out-dir", type=Path, help="write the weights and card here (default: the bundled weights folder)")
    parser.add_argument("--force", action="store_true",
                        help="with --corpus: bundle even if worse than the bundled model in some class (said in the card)")
    args = parser.parse_args()
    run_dir = run_dir_of(args.checkpoint)
    ended = args.checkpoint.stat().st_mtime
    wall = args.wall_time_min * 60 if args.wall_time_min else ended - (run_dir / CONFIG).stat().st_mtime
    produced_by = shlex.join(["python", "scripts/bundle_weights.py", *sys.argv[1:]])
    if args.corpus:
        notes = "\n" + args.notes_file.read_text() if args.notes_file else ""
        weights, card = bundle_blind_run(args.checkpoint, args.corpus, train_started=ended - wall, train_ended=ended,
                                         wall_time_s=wall, max_side=args.max_side, configs=args.configs,
                                         history=args.history, notes=notes, produced_by=produced_by,
                                         force=args.force, **({"out_dir": args.out_dir} if args.out_dir else {}))
    else:
        weights, card = bundle_run(args.checkpoint, wall_time_s=wall, configs=args.configs, history=args.history,
                                   produced_by=produced_by)
    print(f"wrote {weights} and {card}")
    print(card.read_text())


if __name__ == "__main__":
    try:
        main()
    except UserError as e:
        sys.exit(f"bundle_weights: error: {e}")
