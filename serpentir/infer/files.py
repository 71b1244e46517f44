"""Inference on files: a checkpoint applied to an image or a folder of images, written next to nothing it read.

Outputs are planned before any work is done, so that a run which would overwrite its own input or an
earlier result fails at once with a one-line message instead of after an hour of restoring. A batch
can go on past broken files (keep_going) and resume where an interrupted one stopped (skip_existing).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..errors import UserError
from ..image_io.files import MASK_FOLDER
from ..image_io.picture import Picture
from .catalogue import bundled_weights
from .inference import restore_picture

__all__ = ["RestoreJob", "RestoreReport", "plan_restore", "restore_path", "side_by_side"]


def side_by_side(*images: Tensor, gap: int = 8) -> Tensor:
    """(C, H, W) images of one height -> one image, left to right, white gaps between: for eyes."""
    channels = max(img.shape[0] for img in images)
    images = [img[:3].expand(channels, -1, -1) if img.shape[0] < channels else img[:channels] for img in images]
    spacer = torch.ones(channels, images[0].shape[1], gap)
    parts = [p for img in images for p in (img.clamp(0, 1), spacer)][:-1]
    return torch.cat(parts, dim=2)


@dataclass(frozen=True)
class RestoreJob:
    """One image to restore: where it is read, where its mask (if the task needs one) is, where it goes."""

    source: Path
    target: Path
    mask: Path | None = None


def plan_restore(input_path: str | Path, output_path: str | Path, *, overwrite: bool = False,
                 suffix: str | None = None, mask: str | Path | None = None, needs_mask: bool = False,
                 skip_existing: bool = False) -> list[RestoreJob]:
    """Pair every input image with its output path, refusing anything that would destroy data.

    A file in gives one file out (or a file inside OUTPUT if that is a folder); a folder in gives the
    same relative names under the OUTPUT folder. `suffix` (e.g. ".png") changes the output format.
    skip_existing=True accepts existing outputs (the caller skips those images: a batch resumed).
    """
    if overwrite and skip_existing:
        raise UserError("--overwrite and --skip-existing contradict each other; pass one")
    from ..image_io import list_images

    src, dst = Path(input_path), Path(output_path)
    if not src.exists():
        raise UserError(f"{src}: no such file or folder")
    if src.is_dir():
        if dst.exists() and not dst.is_dir():
            raise UserError(f"{dst}: is a file, but the input {src} is a folder; give an output folder")
        if _same(dst, src):
            raise UserError(f"output folder {dst} is the input folder; choose another so no input is overwritten")
        if _inside(dst, src):
            raise UserError(f"output folder {dst} is inside the input folder {src}; a later run would restore its own outputs")
        mask_dir = Path(mask) if mask else (src / MASK_FOLDER if needs_mask and (src / MASK_FOLDER).is_dir() else None)
        sources = [p for p in list_images(src) if mask_dir is None or not _inside(p, mask_dir)]
        if not sources:
            raise UserError(f"{src}: no images found")
        jobs = [RestoreJob(p, _with_suffix(dst / p.relative_to(src), suffix),
                           _find_mask(mask_dir, p.relative_to(src)) if needs_mask else None) for p in sources]
    else:
        target = dst / src.name if dst.is_dir() or str(output_path).endswith(("/", "\\")) else dst
        mask_file = None
        if mask:
            mask_file = Path(mask)
            if mask_file.is_dir():
                mask_file = _find_mask(mask_file, Path(src.name))
        elif needs_mask:
            mask_file = _find_mask(src.parent / MASK_FOLDER, Path(src.name))
        jobs = [RestoreJob(src, _with_suffix(target, suffix), mask_file)]
    if needs_mask and any(j.mask is None for j in jobs):
        raise UserError("this checkpoint's task needs a mask for each image: pass --mask FILE_OR_FOLDER "
                        f"(a {MASK_FOLDER!r} folder beside the input images is used automatically)")
    _check_outputs(jobs, overwrite or skip_existing)
    return jobs


@dataclass
class RestoreReport:
    """What a restore run did: files written, outputs that existed already (skipped), inputs that failed."""

    written: list[Path] = field(default_factory=list)
    skipped: int = 0
    failed: list[tuple[Path, str]] = field(default_factory=list)


def restore_path(input_path: str | Path, output_path: str | Path, *, weights: str | Path | None = None,
                 task: str | None = None, device: str = "auto", tile: int | None = None, overlap: int = 32,
                 overwrite: bool = False, suffix: str | None = None, mask: str | Path | None = None,
                 progress: bool = True, compare: bool = False, keep_going: bool = False,
                 skip_existing: bool = False, auto_tile: bool = True, quality: int = 95) -> RestoreReport:
    """Restore an image or a folder with a checkpoint, each output in the format of its name.

    Grey stays grey, 16-bit stays 16-bit (PNG, TIFF), alpha is copied bit-exact, ICC profile and EXIF
    are kept. compare=True writes input | restored side by side instead of the restored image alone.
    keep_going=True reports a failing image on one line and goes on with the rest; skip_existing=True
    restores only the images whose output does not exist yet. quality: JPEG and WebP outputs.
    """
    from tqdm import tqdm

    from ..checkpoint.format import load_checkpoint
    from ..device import resolve_device
    from ..image_io import load_image, read_picture, write_picture

    weights = Path(weights) if weights else bundled_weights(task)
    model, deg, _ = load_checkpoint(weights, device=resolve_device(device))
    if task and task != deg.name:
        raise UserError(f"{weights} was trained for task {deg.name!r}, not {task!r}")
    jobs = plan_restore(input_path, output_path, overwrite=overwrite, suffix=suffix, mask=mask,
                        needs_mask=deg.extra_channels > 0, skip_existing=skip_existing)
    todo = [j for j in jobs if not (skip_existing and j.target.exists())]
    report = RestoreReport(skipped=len(jobs) - len(todo))
    for job in tqdm(todo, desc="restore", unit="img", disable=None if progress and len(todo) > 1 else True):
        try:
            picture = read_picture(job.source)
            m = load_image(job.mask, channels=1) if job.mask is not None else None
            if m is not None and m.shape[-2:] != picture.colour.shape[-2:]:
                raise UserError(f"{job.mask}: mask is {tuple(m.shape[-2:])} but the image {job.source} is "
                                f"{tuple(picture.colour.shape[-2:])}")
            restored = restore_picture(model, picture, mask=m, tile=tile, overlap=overlap, auto_tile=auto_tile,
                                       progress=progress, name=str(job.source))
            if compare:
                restored = _side_by_side_picture(picture, restored)
            write_picture(restored, job.target, overwrite=overwrite, quality=quality)
        except (UserError, MemoryError) as e:
            if not keep_going:
                raise
            message = str(e) if isinstance(e, UserError) else f"{job.source}: out of memory (try --tile)"
            tqdm.write(f"serpentir: error: {message}", file=sys.stderr)
            report.failed.append((job.source, message))
            continue
        report.written.append(job.target)
    return report


def _side_by_side_picture(original: Picture, restored: Picture) -> Picture:
    """input | restored as one picture; alpha side by side too (opaque gap), depth and metadata kept."""
    colour = side_by_side(original.colour, restored.colour)
    alpha = original.alpha
    if alpha is not None:
        gap = np.full((alpha.shape[0], colour.shape[2] - 2 * alpha.shape[1]), np.iinfo(alpha.dtype).max, alpha.dtype)
        alpha = np.concatenate([alpha, gap, alpha], axis=1)
    return replace(restored, colour=colour, alpha=alpha)


def _check_outputs(jobs: list[RestoreJob], overwrite: bool) -> None:
    inputs = {j.source.resolve() for j in jobs} | {j.mask.resolve() for j in jobs if j.mask}
    for job in jobs:
        if job.target.resolve() in inputs:
            raise UserError(f"output {job.target} is an input file; refusing to overwrite an input")
    targets = [j.target for j in jobs]
    if len({t.resolve() for t in targets}) != len(targets):
        raise UserError("two inputs map to the same output name (same name, different extensions?); "
                        "drop --ext or rename them")
    existing = [t for t in targets if t.exists()]
    if existing and not overwrite:
        more = f" and {len(existing) - 1} more" if len(existing) > 1 else ""
        raise UserError(f"output {existing[0]}{more} already exist{'' if more else 's'}; pass --overwrite to replace")


def _find_mask(mask_dir: Path | None, rel: Path) -> Path | None:
    if mask_dir is None:
        return None
    from ..image_io import IMAGE_EXTENSIONS

    for ext in (rel.suffix, *IMAGE_EXTENSIONS):
        candidate = (mask_dir / rel).with_suffix(ext)
        if candidate.is_file():
            return candidate
    return None


def _with_suffix(path: Path, suffix: str | None) -> Path:
    if not suffix:
        return path
    return path.with_suffix(suffix if suffix.startswith(".") else "." + suffix)


def _same(a: Path, b: Path) -> bool:
    return a.resolve() == b.resolve()


def _inside(path: Path, folder: Path) -> bool:
    return folder.resolve() in path.resolve().parents
