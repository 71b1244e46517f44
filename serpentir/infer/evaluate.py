"""Scoring a model: PSNR, SSIM and (optionally) LPIPS per image, for the restored output and, as the
reference to beat, for the degraded input; means over the set; CSV files and a printed table.

The same scoring serves validation during training (on crops) and `serpentir eval` (on whole
images), so the numbers in val_log.csv and in an eval summary mean the same thing.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from ..errors import UserError
from ..image_io.files import MASK_FOLDER
from .inference import restore_tensor

METRIC_NAMES = ("psnr", "ssim", "lpips")
LPIPS_MIN_SIZE = 32  # AlexNet's strides need at least 31 x 31 pixels; smaller images score NaN
CSV_COLUMNS = ("name", "psnr", "ssim", "lpips", "input_psnr", "input_ssim", "input_lpips")


def score(pred: Tensor, target: Tensor, *, with_lpips: bool, crop_border: int = 0, y_channel: bool = False) -> dict:
    """{psnr, ssim, lpips} of (N, C, H, W) images in [0, 1], each a list of N floats.

    LPIPS is NaN when switched off or when the images are too small for it (a table shows "-").
    """
    from .. import metrics

    out = {"psnr": metrics.psnr(pred, target, crop_border=crop_border, y_channel=y_channel).tolist(),
           "ssim": metrics.ssim(pred, target, crop_border=crop_border, y_channel=y_channel).tolist()}
    if with_lpips and min(pred.shape[-2:]) >= LPIPS_MIN_SIZE:
        rgb = (lambda t: t.expand(-1, 3, -1, -1)) if pred.shape[1] == 1 else (lambda t: t)
        out["lpips"] = metrics.lpips(rgb(pred), rgb(target)).tolist()
    else:
        out["lpips"] = [math.nan] * pred.shape[0]
    return out


@torch.no_grad()
def evaluate_model(model: nn.Module, pairs: Iterable[tuple[str, Tensor, Tensor]], *, with_lpips: bool = False,
                   crop_border: int = 0, y_channel: bool = False, tile: int | None = None, overlap: int = 32,
                   save_dir: str | Path | None = None, progress: bool = False,
                   source_dir: str | Path | None = None) -> list[dict]:
    """One row per image: the restored output's scores and the degraded input's, as CSV_COLUMNS.

    Images saved to save_dir take the kind of source_dir/NAME (the clean file) when given: grey stays
    grey, 16-bit stays 16-bit, its alpha, ICC profile and EXIF are carried over.
    """
    from tqdm import tqdm

    was_training = model.training
    model.eval()
    rows = []
    try:
        bar = tqdm(pairs, desc="eval", unit="img", disable=None if progress else True, leave=False)
        for name, degraded, target in bar:
            x, y = degraded[None].float(), target[None].float()
            pred = restore_tensor(model, x, tile=tile, overlap=overlap).to(y.device)
            restored = score(pred, y, with_lpips=with_lpips, crop_border=crop_border, y_channel=y_channel)
            reference = score(x[:, : y.shape[1]].clamp(0, 1), y, with_lpips=with_lpips, crop_border=crop_border,
                              y_channel=y_channel)
            row = {"name": name, **{k: v[0] for k, v in restored.items()},
                   **{f"input_{k}": v[0] for k, v in reference.items()}}
            rows.append(row)
            if save_dir is not None:
                source = Path(source_dir) / name if source_dir is not None else None
                save_restored(pred[0], Path(save_dir) / Path(name).with_suffix(".png"), like=source)
    finally:
        model.train(was_training)
    return rows


def save_restored(restored: Tensor, path: Path, *, like: Path | None = None) -> None:
    """Write a restored (C, H, W) image as a PNG of the same kind as the file `like` (when it exists and
    has the same size): grey or RGB, 8 or 16 bits, its alpha, ICC profile and EXIF."""
    from ..image_io import Picture, read_picture, write_picture
    from ..image_io.picture import to_grey

    picture = read_picture(like) if like is not None and like.is_file() else None
    if picture is None or tuple(picture.colour.shape[-2:]) != tuple(restored.shape[-2:]):
        picture = Picture(restored)
    colour = to_grey(restored) if picture.colour.shape[0] == 1 and restored.shape[0] == 3 else restored
    write_picture(picture.with_colour(colour.cpu()), path, overwrite=True)


def summarize(rows: list[dict]) -> dict:
    """Mean of every score column (NaN columns, e.g. LPIPS switched off, stay NaN)."""
    if not rows:
        return {k: math.nan for k in CSV_COLUMNS[1:]} | {"images": 0}
    means = {k: sum(r[k] for r in rows) / len(rows) for k in CSV_COLUMNS[1:]}
    return means | {"images": len(rows)}


def format_summary(summary: dict) -> str:
    """A small aligned table: the degraded input (reference) and the restored output."""
    def fmt(v: float, digits: int) -> str:
        return "-" if v is None or math.isnan(v) else f"{v:.{digits}f}"

    lines = [f"{'':<10}{'PSNR (dB)':>10}{'SSIM':>9}{'LPIPS':>9}"]
    for label, prefix in (("input", "input_"), ("restored", "")):
        lines.append(f"{label:<10}{fmt(summary[prefix + 'psnr'], 2):>10}{fmt(summary[prefix + 'ssim'], 4):>9}"
                     f"{fmt(summary[prefix + 'lpips'], 4):>9}")
    return "\n".join(lines)


def write_rows_csv(rows: list[dict], path: str | Path) -> None:
    """Per-image scores, one row per image, columns CSV_COLUMNS."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{v:.6f}" if isinstance(v, float) else v) for k, v in row.items()})


def evaluate_checkpoint(weights: str | Path, out_dir: str | Path, *, data_dir: str | Path | None = None,
                        input_dir: str | Path | None = None, target_dir: str | Path | None = None, seed: int = 0,
                        device: str = "auto", with_lpips: bool = True, crop_border: int = 0, y_channel: bool = False,
                        tile: int | None = None, overlap: int = 32, save_images: bool = False,
                        progress: bool = True) -> tuple[list[dict], dict]:
    """Score a checkpoint on a clean folder (degraded on the fly with its own task) or a paired folder.

    Writes out_dir/per_image.csv and out_dir/summary.csv (and out_dir/images/ when save_images);
    returns (rows, summary).
    """
    from ..checkpoint.format import load_checkpoint
    from ..device import resolve_device

    if (input_dir is None) != (target_dir is None):
        raise UserError("give both --input-dir and --target-dir for a paired folder, or neither")
    if input_dir is not None and data_dir is not None:
        raise UserError("give either --data (clean images, degraded on the fly) or --input-dir/--target-dir, not both")
    model, task, meta = load_checkpoint(weights, device=resolve_device(device))
    channels = meta["channels"]
    if input_dir is not None:
        pairs = list(paired_items(input_dir, target_dir, channels=channels, extra_channels=task.extra_channels))
    else:
        if data_dir is None:
            from ..data import sample_images_dir

            data_dir = sample_images_dir() / "val"
        pairs = degraded_items(data_dir, task, channels=channels, seed=seed)
    out_dir = Path(out_dir)
    rows = evaluate_model(model, pairs, with_lpips=with_lpips, crop_border=crop_border, y_channel=y_channel, tile=tile,
                          overlap=overlap, save_dir=out_dir / "images" if save_images else None, progress=progress,
                          source_dir=target_dir if target_dir is not None else data_dir)
    summary = summarize(rows)
    write_rows_csv(rows, out_dir / "per_image.csv")
    with open(out_dir / "summary.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["which", "psnr", "ssim", "lpips", "images"])
        for label, prefix in (("input", "input_"), ("restored", "")):
            writer.writerow([label] + [f"{summary[prefix + m]:.6f}" for m in METRIC_NAMES] + [summary["images"]])
    return rows, summary


def degraded_items(root: str | Path, task, *, channels: int, seed: int = 0) -> Sequence:
    """(name, degraded, clean) for every whole image under root, degraded on the fly as it is read.

    The validation form of ImageFolderDataset: image i (sorted names) seeded by (seed, i), the
    same seeding `serpentir degrade` uses, so on-the-fly and on-disk benchmarks agree.
    """
    from ..data import ImageFolderDataset

    dataset = ImageFolderDataset(root, task, crop_size=None, train=False, channels=channels, seed=seed)
    return _LazyItems(len(dataset), lambda i: _triple(dataset[i]))


def paired_items(input_dir: str | Path, target_dir: str | Path, *, channels: int,
                 extra_channels: int = 0) -> Sequence:
    """(name, input, target) from a folder of degraded images and one of clean images, matched by name;
    masks are appended from input_dir/masks/ when the task needs them."""
    from ..data import PairedFolderDataset
    from ..image_io import IMAGE_EXTENSIONS, load_image

    dataset = PairedFolderDataset(input_dir, target_dir, channels=channels)
    mask_dir = Path(input_dir) / MASK_FOLDER

    def item(i: int):
        name, x, target = _triple(dataset[i])
        if x.shape[0] < channels + extra_channels:
            stem = mask_dir / name
            found = [stem.with_suffix(ext) for ext in IMAGE_EXTENSIONS if stem.with_suffix(ext).is_file()]
            if not found:
                raise UserError(f"the task needs a mask for {name}: none found in {mask_dir}")
            x = torch.cat([x, load_image(found[0], channels=1)], dim=0)
        return name, x, target

    return _LazyItems(len(dataset), item)


class _LazyItems:
    """A sized sequence that loads item i only when asked: whole images are not all held in memory."""

    def __init__(self, length: int, load):
        self.length, self.load = length, load

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int):
        if not 0 <= i < self.length:
            raise IndexError(i)
        return self.load(i)


def _triple(item: dict) -> tuple[str, Tensor, Tensor]:
    return item["name"], item["input"], item["target"]
