"""`python -m serpentir.cli` (what torchrun runs: `torchrun -m serpentir.cli train CONFIG`)."""

import sys

from .main import main

if __name__ == "__main__":
    sys.exit(main())
