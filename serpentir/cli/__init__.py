"""The `serpentir` command, one module per group of subcommands; `main` is the console script.

    main.py       the parser and main: one-line errors and exit codes
    args.py       argument types shared by the subcommands
    info.py       models, tasks, forward
    training.py   train, eval, degrade
    restoring.py  restore, demo
    serving.py    serve, export
    workshop.py   corpus, bench, compare, ablate: thin wrappers that import serpentir_lab when run
"""

from .main import build_parser, main

__all__ = ["build_parser", "main"]
