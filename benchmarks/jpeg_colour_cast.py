"""Where does the JPEG model's colour cast come from? Measures the mean shift per channel (8-bit levels).

For each photo: the JPEG input minus the clean photo (does the degradation shift colours?), the
model's output minus the clean photo and minus its input (does the model?), the model on the clean
photo and on flat grey (a constant offset needs no JPEG at all). Then the same input shift over the
photos the model was trained on (did the data teach a shift?).

    OMP_NUM_THREADS=1 python benchmarks/jpeg_colour_cast.py [--weights W] [--photos DIR ...] [--max-side 768]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F

from serpentir.checkpoint import load_checkpoint
from serpentir.data import sample_images_dir
from serpentir.image_io import list_images, load_image
from serpentir.infer import bundled_weights, restore_tensor


def shift(a: torch.Tensor, b: torch.Tensor) -> str:
    """Mean of a - b per channel, in 8-bit levels."""
    d = (a.clamp(0, 1) - b).mean(dim=(-2, -1)) * 255
    return " ".join(f"{v:+6.2f}" for v in d.tolist())


def capped(img: torch.Tensor, max_side: int) -> torch.Tensor:
    H, W = img.shape[-2:]
    if max(H, W) <= max_side:
        return img
    s = max_side / max(H, W)
    return F.interpolate(img[None], size=(round(H * s), round(W * s)), mode="area")[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=None, help="checkpoint (default: the bundled jpeg model)")
    parser.add_argument("--photos", nargs="*", default=None, help="folders of held-out photos (default: bundled val)")
    parser.add_argument("--max-side", type=int, default=768)
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    weights = Path(args.weights) if args.weights else bundled_weights("jpeg")
    model, task, _ = load_checkpoint(weights)
    print(f"{weights} on task {task.name} {task.params}; shifts are mean R G B in 8-bit levels\n")
    folders = [Path(p) for p in args.photos] if args.photos else [sample_images_dir() / "val"]
    print(f"{'photo':<28} {'input-clean':>21} {'output-clean':>21} {'output-input':>21} {'model(clean)-clean':>21}")
    totals = []
    for folder in folders:
        for path in list_images(folder):
            clean = capped(load_image(path, channels=3), args.max_side)
            degraded = task(clean, 0)
            out = restore_tensor(model, degraded[None])[0]
            on_clean = restore_tensor(model, clean[None])[0]
            totals.append((out.clamp(0, 1) - clean).mean(dim=(-2, -1)) * 255)
            print(f"{path.name:<28} {shift(degraded, clean):>21} {shift(out, clean):>21} {shift(out, degraded):>21} "
                  f"{shift(on_clean, clean):>21}")
    mean = torch.stack(totals).mean(0)
    print(f"{'mean output-clean':<28} {'':>21} {' '.join(f'{v:+6.2f}' for v in mean.tolist()):>21}")
    for level in (0.25, 0.5, 0.75):
        grey = torch.full((3, 128, 128), level)
        print(f"flat grey {level:.2f}: output-grey {shift(restore_tensor(model, grey[None])[0], grey)}, "
              f"on its JPEG {shift(restore_tensor(model, task(grey, 0)[None])[0], grey)}")
    train = sample_images_dir() / "train"
    print("\ntraining photos (bundled sample set): JPEG input - clean per photo")
    for path in list_images(train):
        clean = load_image(path, channels=3)
        print(f"  {path.name:<26} {shift(task(clean, 0), clean)}")


if __name__ == "__main__":
    main()
