"""The compiled scan that a wheel carries (built by setup.py), loaded only where it was built for.

The kernels use PyTorch's full C++ API (ATen tensors, AT_DISPATCH, at::get_num_threads, TORCH_LIBRARY
with unboxed functions), whose ABI changes between torch releases; so the binary is pinned to the
exact torch version (and commit), Python ABI, platform and kernel sources it was built from, as
recorded in `_scan_kernels.json` beside it. Any mismatch is reported, and the caller builds on first
use instead.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .scan_cpu_build import python_tag, sources_digest, variant_for_this_cpu

MANIFEST = Path(__file__).with_name("_scan_kernels.json")


def manifest_mismatch(manifest: dict) -> str | None:
    """Why a shipped binary described by `manifest` cannot serve this process, or None if it can."""
    checks = [("torch", torch.__version__), ("torch_git", str(torch.version.git_version)),
              ("python", python_tag()), ("sources", sources_digest())]
    for key, here in checks:
        if manifest.get(key) != here:
            return f"built for {key} {manifest.get(key)}, this is {here}"
    return None


def load_shipped() -> tuple[Path | None, str]:
    """(the loaded library, "") or (None, why not); loads at most the variant that suits this CPU."""
    if not MANIFEST.exists():
        return None, "none in this install: a source checkout, or a wheel built without torch"
    manifest = json.loads(MANIFEST.read_text())
    mismatch = manifest_mismatch(manifest)
    if mismatch:
        return None, mismatch
    variant = variant_for_this_cpu()
    name = manifest.get("libraries", {}).get(variant)
    if not name or not (MANIFEST.parent / name).exists():
        return None, f"no {variant} library in this install"
    library = MANIFEST.parent / name
    try:
        torch.ops.load_library(str(library))
    except OSError as exc:  # e.g. a missing libgomp on this machine
        return None, f"{library.name} did not load: {str(exc).strip().splitlines()[0][:200]}"
    return library, ""
