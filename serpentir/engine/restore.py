"""Inference: a checkpoint applied to an image or a folder of images, written next to nothing it read.

Outputs are planned before any work is done, so that a run which would overwrite its own input or an
earlier result fails at once with a one-line message instead of after an hour of restoring.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from ..errors import UserError
from .tiling import run_tiled

MASK_FOLDER = "masks"  # a folder of masks beside degraded images, as `serpentir degrade` writes them
WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
DEFAULT_TASK = "general"  # blind: blur, noise and JPEG of any strength, or none (a sharp photo stays as it is)


def side_by_side(*images: Tensor, gap: int = 8) -> Tensor:
    """(C, H, W) images of one height -> one image, left to right, white gaps between: for eyes."""
    channels = max(img.shape[0] for img in images)
    images = [img[:3].expand(channels, -1, -1) if img.shape[0] < channels else img[:channels] for img in images]
    spacer = torch.ones(channels, images[0].shape[1], gap)
    parts = [p for img in images for p in (img.clamp(0, 1), spacer)][:-1]
    return torch.cat(parts, dim=2)


@torch.no_grad()
def restore_tensor(model: nn.Module, x: Tensor, *, tile: int | None = None, overlap: int = 32) -> Tensor:
    """The restored (N, C, H, W) image in [0, 1]; tiled when `tile` is set (a (C, H, W) input works too)."""
    single = x.dim() == 3
    if single:
        x = x[None]
    if tile:
        y = run_tiled(model, x, tile, overlap)
    else:
        device = next(model.parameters()).device
        y = model(x.to(device)).float().to(x.device)
    y = y.clamp(0, 1)
    return y[0] if single else y


@dataclass(frozen=True)
class RestoreJob:
    """One image to restore: where it is read, where its mask (if the task needs one) is, where it goes."""

    source: Path
    target: Path
    mask: Path | None = None


def plan_restore(input_path: str | Path, output_path: str | Path, *, overwrite: bool = False,
                 suffix: str | None = None, mask: str | Path | None = None, needs_mask: bool = False) -> list[RestoreJob]:
    """Pair every input image with its output path, refusing anything that would destroy data.

    A file in gives one file out (or a file inside OUTPUT if that is a folder); a folder in gives the
    same relative names under the OUTPUT folder. `suffix` (e.g. ".png") changes the output format.
    """
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
    _check_outputs(jobs, overwrite)
    return jobs


def restore_path(input_path: str | Path, output_path: str | Path, *, weights: str | Path | None = None,
                 task: str | None = None, device: str = "auto", tile: int | None = None, overlap: int = 32,
                 overwrite: bool = False, suffix: str | None = None, mask: str | Path | None = None,
                 progress: bool = True, compare: bool = False) -> list[Path]:
    """Restore an image or a folder with a checkpoint; returns the files written.

    compare=True writes input | restored side by side instead of the restored image alone.
    """
    from tqdm import tqdm

    from ..image_io import load_image, save_image
    from .checkpoint import load_checkpoint
    from .distributed import resolve_device

    weights = Path(weights) if weights else bundled_weights(task)
    dev = resolve_device(device)
    model, deg, meta = load_checkpoint(weights, device=dev)
    if task and task != deg.name:
        raise UserError(f"{weights} was trained for task {deg.name!r}, not {task!r}")
    jobs = plan_restore(input_path, output_path, overwrite=overwrite, suffix=suffix, mask=mask,
                        needs_mask=deg.extra_channels > 0)
    written = []
    for job in tqdm(jobs, desc="restore", unit="img", disable=None if progress and len(jobs) > 1 else True):
        x = load_image(job.source, channels=meta["channels"])
        if job.mask is not None:
            m = load_image(job.mask, channels=1)
            if m.shape[-2:] != x.shape[-2:]:
                raise UserError(f"{job.mask}: mask is {tuple(m.shape[-2:])} but the image {job.source} is {tuple(x.shape[-2:])}")
            x = torch.cat([x, m], dim=0)
        y = restore_tensor(model, x, tile=tile, overlap=overlap)
        save_image(side_by_side(x[: y.shape[0]], y) if compare else y, job.target, overwrite=overwrite)
        written.append(job.target)
    return written


def bundled_weights(task: str | None) -> Path:
    """The bundled checkpoint for a task (DEFAULT_TASK when None), or a one-line error saying there is none."""
    from .checkpoint import read_metadata

    task = task or DEFAULT_TASK
    by_task: dict[str, Path] = {}
    for path in sorted(WEIGHTS_DIR.glob("*.safetensors")) if WEIGHTS_DIR.is_dir() else []:
        try:
            by_task.setdefault(read_metadata(path)["task"]["name"], path)
        except UserError:
            continue
    if task in by_task:
        return by_task[task]
    bundled = f" (bundled: {', '.join(sorted(by_task))})" if by_task else ""
    raise UserError(f"no bundled weights for task {task!r}{bundled}; pass --weights CKPT "
                    "(a checkpoint written by `serpentir train`)")


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
