"""How far one pixel's change travels through trained restorers (issue 19, study 4's second half).

For each model (a bundled task name or a checkpoint path) and each held-out photo, degrade a centre
crop by the model's own task, perturb its centre pixel and measure the whole output's change
(serpentir_lab.receptive_field): the radial profile, the radii that hold 50/90/99% of the response,
and the share beyond `--far` pixels. Writes receptive_field.csv, receptive_field.md and receptive_field.png (mean response
against distance, log scale, one line per model, mean over photos) into --out.

    python benchmarks/receptive_field.py --models general deblur serpent-t=RUN/checkpoints/last.safetensors \
        --photos runs/corpus19/test --size 256 --out docs/receptive_field
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from serpentir.atomic_write import write_text_atomic
from serpentir.checkpoint import load_checkpoint
from serpentir.errors import UserError
from serpentir.image_io import list_images
from serpentir_lab.model_spec import labelled_checkpoint
from serpentir_lab.receptive_field import SHARES, radial_profile, response_map
from serpentir_lab.scaling.run import centre_crop as scaling_crop


def centre_crop(path: Path, size: int) -> torch.Tensor:
    """The scaling benchmark's (3, size, size) centre crop, refused when the photo is smaller."""
    with Image.open(path) as im:
        width, height = im.size
    if min(width, height) < size:
        raise SystemExit(f"{path}: {width}x{height} is smaller than the {size}-px crop")
    return scaling_crop(path, (size, size))


def measure(models: list[str], photos: list[Path], size: int, far: int) -> list[dict]:
    rows = []
    for spec in models:
        name, path = labelled_checkpoint(spec)
        model, task, _ = load_checkpoint(path)
        for i, photo in enumerate(photos):
            start = time.perf_counter()
            centre = (size // 2, size // 2)
            image = task.degrade(centre_crop(photo, size), i)  # the input the model is for (seed i)
            colours = image.shape[0] - task.extra_channels  # an inpainting mask is not bumped
            profile = radial_profile(response_map(model, image, centre, channels=colours), centre, far=far)
            rows.append({"model": name, "photo": photo.stem, "size": size, "profile": profile,
                         "seconds": time.perf_counter() - start})
            print(f"{name} {photo.stem}: r50 {profile.radius_at_share[0.5]}, r90 {profile.radius_at_share[0.9]}, "
                  f"r99 {profile.radius_at_share[0.99]}, beyond {far} px {profile.far_share:.2%}", file=sys.stderr)
    return rows


def write_outputs(rows: list[dict], out: Path, command: str, far: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    lines = ["model,photo,size," + ",".join(f"r{int(s * 100)}" for s in SHARES) + f",share_beyond_{far}px,seconds"]
    for r in rows:
        p = r["profile"]
        lines.append(",".join([r["model"], r["photo"], str(r["size"])] + [str(p.radius_at_share[s]) for s in SHARES]
                              + [f"{p.far_share:.6g}", f"{r['seconds']:.1f}"]))
    write_text_atomic(out / "receptive_field.csv", "\n".join(lines) + "\n")

    models = list(dict.fromkeys(r["model"] for r in rows))
    md = ["# How far one pixel's change travels", "", f"Command: `{command}`", "",
          "Per model, the centre crop of each photo is degraded by the model's own task (photo i with seed i), "
          "its centre pixel is perturbed (its colour channels, not a task's extra inputs such as an inpainting mask; "
          "eps 1e-4, float64) and the whole output's change is "
          "measured (`serpentir_lab/receptive_field.py`). "
          "rX: the smallest radius (pixels) holding X% of the summed |change|; medians over photos, "
          "with the range.", "",
          f"| model | photos | r50 | r90 | r99 | share beyond {far} px |", "|---|---:|---:|---:|---:|---:|"]
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for name in models:
        mine = [r["profile"] for r in rows if r["model"] == name]
        cells = []
        for s in SHARES:
            values = [p.radius_at_share[s] for p in mine]
            cells.append(f"{np.median(values):.0f} ({min(values)}-{max(values)})")
        far_shares = [p.far_share for p in mine]
        md.append(f"| {name} | {len(mine)} | " + " | ".join(cells)
                  + f" | {np.median(far_shares):.2%} ({min(far_shares):.2%}-{max(far_shares):.2%}) |")
        length = min(len(p.mean_response) for p in mine)
        mean = np.mean([p.mean_response[:length] for p in mine], axis=0)
        ax.semilogy(np.arange(length), np.maximum(mean, 1e-12), label=name)
    ax.set_xlabel("distance from the perturbed pixel (px)")
    ax.set_ylabel("mean |output change| / eps")
    ax.set_title("Response to one pixel, mean over photos")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "receptive_field.png", dpi=120)
    plt.close(fig)
    md += ["", "![mean response against distance](receptive_field.png)", ""]
    write_text_atomic(out / "receptive_field.md", "\n".join(md))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", required=True,
                        help="bundled task names, checkpoint paths, or LABEL=PATH")
    parser.add_argument("--photos", required=True, help="a folder of photos (or one photo)")
    parser.add_argument("--size", type=int, default=256, help="centre crop side (px)")
    parser.add_argument("--far", type=int, default=64, help="report the share of the response beyond this radius")
    parser.add_argument("--max-photos", type=int, default=None)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    source = Path(args.photos)
    photos = list_images(source) if source.is_dir() else [source]
    photos = photos[: args.max_photos] if args.max_photos else photos
    command = shlex.join(["python", "benchmarks/receptive_field.py"] + (argv if argv is not None else sys.argv[1:]))
    try:
        rows = measure(args.models, photos, args.size, args.far)
    except UserError as e:
        raise SystemExit(f"receptive_field: error: {e}") from None
    write_outputs(rows, Path(args.out), command, args.far)


if __name__ == "__main__":
    main()
