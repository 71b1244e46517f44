"""Measure what spandrel's supports_half / supports_bfloat16 claim: every bundled model run in float16 and
bfloat16 against float32 on one real photo crop, on the CPU (and on CUDA when there is one).

    PYTHONPATH=. python scripts/spandrel_precision.py

Prints one line per model and precision: largest absolute difference from float32 (outputs in [0, 1]),
PSNR against float32, whether every output is finite, and the first module whose output is not.
"""

from __future__ import annotations

import math
import sys

import numpy as np
import torch
from skimage import data

import serpentir
from serpentir.integrations.spandrel import bundled_weight_files


def first_non_finite(model: torch.nn.Module, x: torch.Tensor) -> str:
    """The name of the first module (in call order) whose output holds inf or NaN, or '-'."""
    bad: list[str] = []
    hooks = [m.register_forward_hook(lambda mod, _i, out, name=name: bad.append(name)
                                     if isinstance(out, torch.Tensor) and not torch.isfinite(out).all() else None)
             for name, m in model.named_modules() if name]
    try:
        model(x)
    finally:
        for h in hooks:
            h.remove()
    return bad[0] if bad else "-"


@torch.no_grad()
def main() -> int:
    photo = torch.from_numpy(data.astronaut()[100:164, 150:230].copy()).permute(2, 0, 1).float()[None] / 255
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for path in bundled_weight_files():
        ref_model = serpentir.load_model(path)
        x = photo
        if ref_model.arch["kwargs"].get("in_channels", 3) == 4:  # inpainting: a hole and its mask
            mask = torch.zeros(1, 1, *x.shape[-2:])
            mask[..., 20:40, 30:50] = 1
            x = torch.cat([x * (1 - mask), mask], 1)
        for device in devices:
            ref = ref_model.to(device)(x.to(device)).float().clamp(0, 1)
            for dtype in (torch.float16, torch.bfloat16):
                model = serpentir.load_model(path).to(device, dtype)
                out = model(x.to(device, dtype)).float()
                finite = bool(torch.isfinite(out).all())
                err = (out.clamp(0, 1) - ref).abs().max().item() if finite else math.inf
                mse = ((out.clamp(0, 1) - ref) ** 2).mean().item() if finite else math.inf
                psnr = 10 * math.log10(1 / mse) if 0 < mse < math.inf else (math.inf if mse == 0 else -math.inf)
                where = "-" if finite else first_non_finite(model, x.to(device, dtype))
                print(f"{path.stem:16s} {device:4s} {str(dtype)[6:]:9s} max|diff| {err:8.4f}  PSNR {psnr:6.1f} dB  "
                      f"finite {finite!s:5s}  first non-finite: {where}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
