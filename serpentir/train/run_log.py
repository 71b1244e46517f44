"""What a training run reports: CSV files (always) and TensorBoard (when it is installed).

CSV needs nothing and survives any environment; TensorBoard is imported lazily so that it stays an
optional dependency. On resume, rows past the resumed step (written after the checkpoint by the run
that was interrupted) are dropped so each step appears once.
"""

from __future__ import annotations

import csv
import math
import sys
from pathlib import Path

from .run_folder import TRAIN_LOG, VAL_LOG


class RunLog:
    """train_log.csv, val_log.csv and TensorBoard scalars in out_dir; a no-op when not enabled."""

    def __init__(self, out_dir: str | Path, *, enabled: bool = True, tensorboard: bool = True, resume_step: int = 0):
        self.out_dir = Path(out_dir)
        self.enabled = enabled
        self.writer = None
        if not enabled:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for name in (TRAIN_LOG, VAL_LOG):
            _truncate_after(self.out_dir / name, resume_step)
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                print("serpentir: tensorboard is not installed; logging to CSV only (pip install tensorboard)",
                      file=sys.stderr)
            else:
                self.writer = SummaryWriter(log_dir=str(self.out_dir / "tensorboard"), purge_step=resume_step or None)

    def train(self, step: int, values: dict) -> None:
        """One row of train_log.csv (loss, lr, images/s, ...)."""
        self._write(TRAIN_LOG, "train", step, values)

    def val(self, step: int, values: dict) -> None:
        """One row of val_log.csv (psnr, ssim, lpips and the degraded input's)."""
        self._write(VAL_LOG, "val", step, values)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

    def _write(self, filename: str, group: str, step: int, values: dict) -> None:
        if not self.enabled:
            return
        path = self.out_dir / filename
        row = {"step": step, **values}
        new = not path.exists() or path.stat().st_size == 0
        with open(path, "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
        if self.writer is not None:
            for key, value in values.items():
                if isinstance(value, (int, float)) and not (isinstance(value, float) and math.isnan(value)):
                    self.writer.add_scalar(f"{group}/{key}", value, step)
            self.writer.flush()


def _truncate_after(path: Path, step: int) -> None:
    """Keep the header and the rows with step <= `step` (all rows are dropped when starting afresh)."""
    if not path.exists():
        return
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return
    header, body = rows[0], rows[1:]
    kept = [r for r in body if r and r[0].isdigit() and int(r[0]) <= step]
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(kept)
