"""Which torch device a `--device` choice (auto, cpu, cuda) means: shared by training, inference and serving."""

from __future__ import annotations

import torch

from .errors import UserError


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """`auto` is the GPU when there is one; `cuda` without a GPU is a user error, not a crash later."""
    if name not in ("auto", "cpu", "cuda"):
        raise UserError(f"unknown device {name!r}; use cpu, cuda or auto")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("device cuda was asked for but no CUDA GPU is available (use --device cpu or auto)")
    if name == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", local_rank)


def native_cpu_bf16() -> bool:
    """Whether this CPU computes in bfloat16 natively (AVX-512 BF16 or AMX): only there does CPU autocast pay;
    elsewhere bfloat16 is emulated and a training step gets several times slower."""
    cpu = torch.cpu
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # private, hence the defaults
    return any(getattr(cpu, probe, lambda: False)() for probe in probes)
