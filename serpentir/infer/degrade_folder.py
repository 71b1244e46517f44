"""A degraded copy of an image folder, for benchmarks that need the inputs on disk.

Degraded images are PNG (lossless, so the saved input is the degradation up to 8-bit rounding) with
the same relative names; an inpainting mask goes to masks/ under the output folder, where `eval
--input-dir` and `restore` look for it. degrade.json records how the folder was made.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..checkpoint.build import build_task
from ..errors import UserError
from ..image_io.files import MASK_FOLDER
from .evaluate import degraded_items


def degrade_folder(in_dir: str | Path, out_dir: str | Path, *, task: str, params: dict | None = None, seed: int = 0,
                   channels: int = 3, overwrite: bool = False, progress: bool = True) -> list[Path]:
    """Write task(image, seed_i) for every image under in_dir to out_dir; returns the degraded files."""
    from tqdm import tqdm

    from ..image_io import list_images, save_image

    src, dst = Path(in_dir), Path(out_dir)
    if dst.exists() and not dst.is_dir():
        raise UserError(f"{dst}: is a file; give an output folder")
    if dst.resolve() == src.resolve() or src.resolve() in dst.resolve().parents:
        raise UserError(f"output folder {dst} must not be the input folder {src} or inside it")
    deg = build_task(task, params)
    names = [p.relative_to(src) for p in list_images(src)]
    if not names:
        raise UserError(f"{src}: no images found")
    outputs = [dst / rel.with_suffix(".png") for rel in names]
    masks = [dst / MASK_FOLDER / rel.with_suffix(".png") for rel in names] if deg.extra_channels else []
    if len(set(outputs)) != len(outputs):
        raise UserError(f"{src}: two images differ only in their extension; their PNG copies would collide")
    existing = [p for p in outputs + masks if p.exists()]
    if existing and not overwrite:
        more = f" and {len(existing) - 1} more" if len(existing) > 1 else ""
        raise UserError(f"output {existing[0]}{more} already exist{'' if more else 's'}; pass --overwrite to replace")
    written = []
    bar = tqdm(degraded_items(src, deg, channels=channels, seed=seed), desc="degrade", unit="img",
               disable=None if progress and len(names) > 1 else True)
    for name, degraded, _ in bar:
        out = dst / Path(name).with_suffix(".png")
        save_image(degraded[:channels], out, overwrite=overwrite)
        if deg.extra_channels:
            save_image(degraded[channels:], dst / MASK_FOLDER / Path(name).with_suffix(".png"), overwrite=overwrite)
        written.append(out)
    recipe = {"task": deg.name, "params": dict(deg.params), "seed": seed, "channels": channels,
              "source": str(src.resolve()), "images": len(written),
              "seeding": "as serpentir.data.ImageFolderDataset(train=False): image i (sorted names) uses seed * 100003 + i"}
    (dst / "degrade.json").write_text(json.dumps(recipe, indent=2, default=list) + "\n")
    return written
