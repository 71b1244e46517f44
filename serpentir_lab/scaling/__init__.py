"""Whole against tiled restoration at high resolution (the paper's open question 3): docs/scaling/.

    run.py       each case measured in a child process, results appended per photo, the report written
    __main__.py  the command line: python -m serpentir_lab.scaling --model LABEL=RUN ... --out DIR
"""

from .run import COLUMNS, DEFAULT_SIZES, MODES, Photo, held_out_photos, parse_size, photo_of, run_scaling

__all__ = ["COLUMNS", "DEFAULT_SIZES", "MODES", "Photo", "held_out_photos", "parse_size", "photo_of", "run_scaling"]
