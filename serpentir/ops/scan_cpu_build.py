"""Build (once, cached by torch) and load the compiled CPU selective scan, or say clearly why not.

The C++ source lives in serpentir/ops/csrc/. torch.utils.cpp_extension compiles it on first use
(50-90 s with ninja and a C++ compiler) into torch's extension cache (TORCH_EXTENSIONS_DIR, by
default ~/.cache/torch_extensions) and later processes only load the cached library. Nothing here
runs at `import serpentir`: the first call of `cpu_kernel_ops()` does, at most once per process.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import torch

log = logging.getLogger("serpentir.scan")

DISABLE_ENV = "SERPENTIR_DISABLE_CPU_KERNEL"
CSRC = Path(__file__).with_name("csrc")
SOURCES = [CSRC / "selective_scan_cpu.cpp", CSRC / "scan_2d_cpu.cpp"]
HEADERS = [CSRC / "simd_pack.h", CSRC / "block_params.h", CSRC / "scan_steps.h"]

_attempt: dict[str, object] = {}  # "ops" -> the loaded op namespace, or "error" -> why it failed


def kernel_disabled() -> bool:
    """SERPENTIR_DISABLE_CPU_KERNEL=1 (or true/yes) skips building and loading the kernel."""
    return os.environ.get(DISABLE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def _cpu_has_avx2() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512")
    return " avx2 " in flags.replace("\n", " ") and " fma " in flags.replace("\n", " ")


def _build_and_load():
    """Compile (or load from torch's cache) the 1-D and 2-D scans; return torch.ops.serpentir_scan."""
    from torch.utils import cpp_extension

    avx2 = _cpu_has_avx2()
    # The instruction set and a digest of every source and header are part of the name: a cache
    # shared between machines never hands an AVX2 build to a CPU without it, and two versions of
    # serpentir (two checkouts, or an upgrade beside a running process) never rebuild over each
    # other's library; each version builds once.
    digest = hashlib.sha1(b"".join(p.read_bytes() for p in SOURCES + HEADERS)).hexdigest()[:12]
    name = f"serpentir_scan_cpu_{'avx2' if avx2 else 'generic'}_{digest}"
    flags = ["-O3", "-fopenmp"] + (["-mavx2", "-mfma"] if avx2 else [])
    cpp_extension.load(name=name, sources=[str(s) for s in SOURCES], extra_cflags=flags,
                       extra_ldflags=["-fopenmp"], extra_include_paths=[str(CSRC)], is_python_module=False,
                       verbose=os.environ.get("SERPENTIR_VERBOSE_BUILD") == "1")
    return torch.ops.serpentir_scan


def cpu_kernel_ops():
    """torch.ops.serpentir_scan when the compiled kernel is usable, else None (after one log line).

    Tries at most once per process; a disabled kernel (env var) is not a failure and is not cached,
    so a test can enable it later in the same session.
    """
    if kernel_disabled():
        if "disabled-logged" not in _attempt:
            _attempt["disabled-logged"] = True
            log.info("selective scan: compiled CPU kernel disabled by %s; using the 'chunked' backend", DISABLE_ENV)
        return None
    if "ops" in _attempt:
        return _attempt["ops"]
    if "error" in _attempt:
        return None
    try:
        ops = _build_and_load()
    except Exception as exc:  # no compiler, no ninja, a failed build: the pure-PyTorch path still works
        _attempt["error"] = f"{type(exc).__name__}: {exc}"
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        log.warning("selective scan: could not build the compiled CPU kernel (%s); falling back to the "
                    "'chunked' backend. Set %s=1 to skip the attempt.", first_line[:300], DISABLE_ENV)
        return None
    _attempt["ops"] = ops
    return ops


def cpu_kernel_error() -> str | None:
    """Why the last build attempt failed, if it did."""
    return _attempt.get("error")  # type: ignore[return-value]
