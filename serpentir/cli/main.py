"""The `serpentir` command: parses arguments and calls the layers below; no logic of its own.

Every mistake a user can make ends in a one-line message and a non-zero exit code: the layers raise
UserError and `main` prints it; argparse's own errors are squeezed onto one line too.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys

from ..errors import UserError
from ..huge_pages import enable_huge_pages
from .info import add_forward_parser, add_models_parser, add_tasks_parser
from .restoring import add_demo_parser, add_restore_parser
from .serving import add_export_parser, add_serve_parser
from .training import add_degrade_parser, add_eval_parser, add_train_parser
from .workshop import add_ablate_parser, add_bench_parser, add_compare_parser, add_corpus_parser


class _OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (naming the subcommand and where help is), not a usage dump."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


SUBCOMMANDS = (add_models_parser, add_tasks_parser, add_demo_parser, add_forward_parser, add_train_parser,
               add_eval_parser, add_restore_parser, add_degrade_parser, add_corpus_parser, add_bench_parser,
               add_compare_parser, add_ablate_parser, add_serve_parser, add_export_parser)


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: every subcommand, each with -v accepted before or after it."""
    parser = _OneLineParser(prog="serpentir", description="Image restoration with Serpent state-space networks.")
    verbose_help = "log which scan backend is used, etc. (before or after the command)"
    parser.add_argument("-v", "--verbose", action="store_true", help=verbose_help)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add_parser in SUBCOMMANDS:
        add_parser(sub)
    for command in sub.choices.values():  # -v after the command too; SUPPRESS keeps one given before it
        with contextlib.suppress(argparse.ArgumentError):  # a command that has its own -v keeps it
            command.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=verbose_help)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; return its exit code (2 for a user's mistake, 1 for a refusal of the system)."""
    enable_huge_pages()  # before the first tensor: large CPU tensors take fewer page faults (huge_pages.py)
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    try:
        code = args.func(args)
    except UserError as e:
        print(f"serpentir: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # the disk or the file system said no (full, read-only, permission): not a bug
        print(f"serpentir: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("serpentir: interrupted", file=sys.stderr)
        return 130
    return code or 0

