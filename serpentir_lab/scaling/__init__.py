"""Whole against tiled restoration at high resolution (the paper's open question 3): docs/scaling/.

    run.py       each case measured in a child process, results appended per photo
    report.py    means, whole minus tiled photo by photo with bootstrap intervals, the plot
    __main__.py  the command line: python -m serpentir_lab.scaling --model LABEL=RUN ... --out DIR
"""

from .report import COLUMNS, GAIN_COLUMNS
from .run import DEFAULT_SIZES, MODES, Photo, held_out_photos, parse_size, photo_of, run_scaling

__all__ = ["COLUMNS", "GAIN_COLUMNS", "DEFAULT_SIZES", "MODES", "Photo", "held_out_photos", "parse_size", "photo_of", "run_scaling"]
