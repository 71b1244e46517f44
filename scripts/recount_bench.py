"""Count a finished `serpentir bench` report's FLOPs and MACs again under the current rule, keeping its measurements.

    python scripts/recount_bench.py docs/bench_cpu docs/bench_cpu_512
"""

from __future__ import annotations

import argparse
import sys

from serpentir.errors import UserError
from serpentir_lab.bench.recount import recount_report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", help="report folders holding bench.csv and bench.md")
    args = parser.parse_args(argv)
    try:
        for folder in args.folders:
            print(recount_report(folder))
    except UserError as e:
        print(f"recount_bench: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
