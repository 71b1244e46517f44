"""Whole against tiled at high resolution: the paper's open question 3, measured.

Does a global receptive field pay off at 1024, 2048 and beyond? For one degradation with a long
reach and trained models of one task, every held-out photo is centre-cropped to each size, degraded
once (the same pixels for every model and mode), and restored
  - whole: one forward pass over the full image (the network's exact banded inference included),
  - tiled: in tiles of one or more sizes (512 px unless told) blended over their overlap (what a model
    without a global view must do),
each in a fresh child process that reports the wall time and the peak resident memory of the
restoration; the scores (PSNR, SSIM, LPIPS on the whole image) are computed after the peak is read.
Results are appended per photo as they finish, so an interrupted run resumes where it stopped; the
report (report.py) is written from those rows.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from serpentir.errors import UserError
from serpentir.train import checkpoint_of

from .report import write_report

PER_PHOTO_COLUMNS = ("model", "mode", "size", "photo", "held_out", "psnr", "ssim", "lpips", "seconds", "peak_mb")
MODES = ("whole", "tiled")
INPUT_LABEL = "degraded input"
DEFAULT_SIZES = ((512, 512), (1024, 1024), (1600, 1600), (2048, 1600), (2560, 1600))


@dataclass(frozen=True)
class Photo:
    """A clean photo to crop from; held_out is False for one seen in training (at a lower resolution)."""

    name: str
    path: Path
    width: int
    height: int
    held_out: bool = True


def parse_size(text: str) -> tuple[int, int]:
    """'2048x1600' -> (2048, 1600); '1024' -> (1024, 1024)."""
    try:
        parts = [int(p) for p in text.lower().split("x")]
    except ValueError:
        raise UserError(f"bad size {text!r}: expected WxH, e.g. 2048x1600") from None
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2 or min(parts) < 1:
        raise UserError(f"bad size {text!r}: expected WxH, e.g. 2048x1600")
    return parts[0], parts[1]


def size_label(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


def held_out_photos(manifest_dir: str | Path, splits: tuple[str, ...] = ("val",)) -> list[Photo]:
    """The corpus' held-out photos (those of `splits`, never cropped into training) at their full
    resolution: the originals its manifest names, or the corpus' own copy where that is the original's
    size (photos a Python package ships in code)."""
    from ..corpus import read_manifest

    if "train" in splits:
        raise UserError("the train split is not held out: choose from val and test")
    photos = []
    for row in read_manifest(manifest_dir):
        if row["split"] not in splits:
            continue
        source, copy = Path(row["source"]), Path(manifest_dir) / row["split"] / f"{row['name']}.png"
        if source.is_file():
            photos.append(Photo(row["name"], source, int(row["source_width"]), int(row["source_height"])))
        elif copy.is_file() and (row["width"], row["height"]) == (row["source_width"], row["source_height"]):
            photos.append(Photo(row["name"], copy, int(row["width"]), int(row["height"])))
        else:
            raise UserError(f"{source}: the original of {row['name']} is missing (reinstall its package)")
    return photos


def photo_of(path: str | Path, held_out: bool = False) -> Photo:
    from PIL import Image

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such photo")
    with Image.open(path) as im:
        return Photo(path.stem, path, im.width, im.height, held_out)


def check_models(models: dict[str, Path]) -> dict:
    """The task all checkpoints learnt (one-line error when they differ)."""
    from serpentir.checkpoint import read_metadata

    if not models:
        raise UserError("name at least one model: --model LABEL=CHECKPOINT_OR_RUN")
    tasks = {label: read_metadata(path)["task"] for label, path in models.items()}
    first, task = next(iter(tasks.items()))
    for label, other in tasks.items():
        if other != task:
            raise UserError(f"{label} learnt task {other}, but {first} learnt {task}: compare models of one task")
    return task


def measure_case(checkpoint: Path, photo: Photo, size: tuple[int, int], mode: str, *, task: dict, seed: int,
                 tile: int = 512, overlap: int = 32, threads: int = 1, timeout: float = 3600.0) -> dict:
    """One restoration in a fresh process: {psnr, ssim, lpips, seconds, peak_mb} (or {error})."""
    spec = {"checkpoint": str(checkpoint), "photo": str(photo.path), "size": list(size), "mode": mode, "task": task,
            "seed": seed, "tile": tile, "overlap": overlap, "threads": threads}
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    try:
        out = subprocess.run([sys.executable, "-m", "serpentir_lab.scaling.run", json.dumps(spec)], env=env,
                             capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timeout after {timeout:.0f} s"}
    if out.returncode:
        tail = (out.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": "out of memory" if out.returncode in (-9, 137) else tail[:200]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def centre_crop(path: str | Path, size: tuple[int, int]):
    """The (3, h, w) centre crop of a photo, size = (w, h): what both the restoration and its reference see."""
    from serpentir.image_io import load_image

    clean = load_image(path, channels=3)
    (w, h), (H, W) = size, clean.shape[-2:]
    top, left = (H - h) // 2, (W - w) // 2
    return clean[:, top:top + h, left:left + w].contiguous()


def degrade(task: dict, clean, seed: int):
    """The crop degraded by the models' task with the photo's seed (the same pixels for every model and mode)."""
    from serpentir.checkpoint import build_task

    return build_task(task["name"], task.get("params", {}))(clean, seed)


def _child(spec: dict) -> dict:
    """Runs in the child: crop, degrade, restore (timed, peak memory read), then score."""
    import torch

    from serpentir.checkpoint import load_checkpoint
    from serpentir.infer import process_status_bytes, reset_peak_rss, run_tiled, score

    torch.set_num_threads(spec["threads"])
    model, _, _ = load_checkpoint(spec["checkpoint"])
    size = tuple(spec["size"])
    clean = centre_crop(spec["photo"], size)
    degraded = degrade(spec["task"], clean, spec["seed"])[None]
    with torch.inference_mode():
        model(torch.rand(1, degraded.shape[1], 64, 64))  # kernel load, thread pools
        del clean
        reset_peak_rss()
        start = time.perf_counter()
        if spec["mode"] == "whole":
            restored = model(degraded)
        else:
            restored = run_tiled(model, degraded, spec["tile"], spec["overlap"])
        seconds = time.perf_counter() - start
        peak = process_status_bytes("VmHWM")
    restored = restored.float().clamp(0, 1)
    clean = centre_crop(spec["photo"], size)[None]  # read again: the restoration's peak did not hold it
    scores = {k: v[0] for k, v in score(restored, clean, with_lpips=True).items()}
    return {**scores, "seconds": seconds, "peak_mb": peak / 2 ** 20}


def input_scores(photo: Photo, size: tuple[int, int], task: dict, seed: int) -> dict:
    """PSNR/SSIM/LPIPS of the degraded crop itself: the line every restoration is read against."""
    from serpentir.infer import score

    clean = centre_crop(photo.path, size)
    degraded = degrade(task, clean, seed)[:3].clamp(0, 1)
    return {k: f"{v[0]:.6g}" for k, v in score(degraded[None], clean[None], with_lpips=True).items()}


def _read_rows(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _append_row(path: Path, row: dict) -> None:
    new = not path.is_file()
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=PER_PHOTO_COLUMNS)
        if new:
            writer.writeheader()
        writer.writerow(row)


def mode_label(mode: str, tile: int) -> str:
    """'whole', or 'tiled-256' for tiles of 256 px: the name a case has in the rows and the report."""
    return mode if mode == "whole" else f"{mode}-{tile}"


def run_scaling(models: dict[str, Path], photos: list[Photo], sizes: list[tuple[int, int]], out_dir: str | Path, *,
                modes: tuple[str, ...] = MODES, tiles: tuple[int, ...] = (512,), overlap: int = 32, threads: int = 1,
                seed: int = 0, command: str = "", progress: bool = True) -> list[dict]:
    """Measure every (model, mode, tile, size, photo) not yet in OUT/scaling_per_photo.csv; write the report."""
    from tqdm import tqdm

    models = {label: checkpoint_of(path) for label, path in models.items()}  # run folders -> their checkpoints
    task = check_models(models)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    per_photo = out / "scaling_per_photo.csv"
    done = {(r["model"], r["mode"], r["size"], r["photo"]) for r in _read_rows(per_photo)}
    variants = [(mode, tile) for mode in modes for tile in ((0,) if mode == "whole" else tiles)]
    cases, skipped, used = [], {}, []
    for size in sizes:
        fits = [p for p in photos if p.width >= size[0] and p.height >= size[1]]
        held_out_fits = any(p.held_out for p in fits)
        for i, photo in enumerate(photos):
            if photo not in fits:
                skipped.setdefault(size_label(size), []).append(photo.name)
                continue
            if held_out_fits and not photo.held_out:
                continue  # a photo seen in training only stands in where no held-out photo is large enough
            used.append((size, photo, seed + i))
            for label, checkpoint in models.items():
                for mode, tile in variants:
                    if (label, mode_label(mode, tile), size_label(size), photo.name) not in done:
                        cases.append((label, checkpoint, mode, tile, size, photo, seed + i))
    for label, checkpoint, mode, tile, size, photo, photo_seed in tqdm(cases, desc="scaling", unit="case",
                                                                       disable=not progress):
        result = measure_case(checkpoint, photo, size, mode, task=task, seed=photo_seed, tile=tile, overlap=overlap,
                              threads=threads)
        row = {"model": label, "mode": mode_label(mode, tile), "size": size_label(size), "photo": photo.name,
               "held_out": photo.held_out, **{k: "" for k in ("psnr", "ssim", "lpips", "seconds", "peak_mb")}}
        if "error" in result:
            row["psnr"] = result["error"]
        else:
            row.update({k: f"{result[k]:.6g}" for k in ("psnr", "ssim", "lpips", "seconds", "peak_mb")})
        _append_row(per_photo, row)
    for size, photo, photo_seed in used:  # the degraded crops themselves, for reference
        if (INPUT_LABEL, "input", size_label(size), photo.name) not in done:
            row = {"model": INPUT_LABEL, "mode": "input", "size": size_label(size), "photo": photo.name,
                   "held_out": photo.held_out, **input_scores(photo, size, task, photo_seed), "seconds": "",
                   "peak_mb": ""}
            _append_row(per_photo, row)
    return write_report(_read_rows(per_photo), out, task=task, skipped=skipped, threads=threads, tiles=tiles,
                        overlap=overlap, command=command)


if __name__ == "__main__":  # the child process of measure_case
    print(json.dumps(_child(json.loads(sys.argv[1]))))
