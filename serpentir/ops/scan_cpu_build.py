"""Build the compiled CPU scan on first use, into a folder that no other install shares, under a lock.

Used when the wheel's shipped binary cannot load (a source checkout, another torch or Python). The
folder is named by a digest of everything that makes the binary differ: the sources and headers,
the compile flags (instruction set included), torch's version and commit, the Python ABI and
platform, and where this package is installed. So two venvs or two checkouts never rebuild over
each other's library, and an upgrade beside a running process builds its own. An exclusive lock
(fcntl.flock) on a file beside the folder makes concurrent first uses wait for one build; the
others then load its library without running ninja or a compiler. Each build appends a line to
`builds.log` in its folder. setup.py loads this file by path for the flags, so it has no relative
imports; nothing here runs at `import serpentir`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import sysconfig
import time
from pathlib import Path
from typing import Iterator

import torch

DISABLE_ENV = "SERPENTIR_DISABLE_CPU_KERNEL"
CACHE_ENV = "SERPENTIR_KERNEL_CACHE"  # root of the first-use builds; default ~/.cache/serpentir/scan_kernel
CSRC = Path(__file__).with_name("csrc")
SOURCES = [CSRC / "selective_scan_cpu.cpp", CSRC / "scan_2d_cpu.cpp"]
HEADERS = [CSRC / "simd_pack.h", CSRC / "block_params.h", CSRC / "scan_steps.h"]
VARIANTS = ("avx2", "generic")  # AVX2+FMA packs, or plain loops the compiler may vectorise
LINK_FLAGS = ("-fopenmp",)  # a tuple: torch appends its -L/-l flags to the list it is given


def kernel_disabled() -> bool:
    """SERPENTIR_DISABLE_CPU_KERNEL=1 (or true/yes/on) skips loading and building the kernel."""
    return os.environ.get(DISABLE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def cpu_has_avx2() -> bool:
    """Whether this CPU runs the AVX2+FMA build (an AVX2 binary would crash on one without)."""
    try:
        flags = Path("/proc/cpuinfo").read_text().replace("\n", " ")
    except OSError:
        return torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512")
    return " avx2 " in flags and " fma " in flags


def variant_for_this_cpu() -> str:
    return "avx2" if cpu_has_avx2() else "generic"


def compile_flags(variant: str) -> list[str]:
    """The C++ flags of one variant; the wheel's build and the first-use build share them."""
    return ["-O3", "-fopenmp"] + (["-mavx2", "-mfma"] if variant == "avx2" else [])


def sources_digest() -> str:
    """Digest of every source and header: a changed kernel never loads a stale binary."""
    return hashlib.sha256(b"".join(p.read_bytes() for p in SOURCES + HEADERS)).hexdigest()[:16]


def python_tag() -> str:
    """The interpreter's ABI and platform, e.g. cpython-311/linux-x86_64."""
    return f"{sys.implementation.cache_tag}/{sysconfig.get_platform()}"


def build_key(variant: str) -> str:
    """Digest of everything that makes a first-use build differ (see the module docstring)."""
    parts = [sources_digest(), " ".join(compile_flags(variant) + list(LINK_FLAGS)), torch.__version__,
             str(torch.version.git_version), python_tag(), str(Path(__file__).resolve().parent)]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def cache_root() -> Path:
    """SERPENTIR_KERNEL_CACHE, else $XDG_CACHE_HOME/serpentir/scan_kernel (~/.cache by default)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "serpentir" / "scan_kernel"


@contextlib.contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive flock on `path` (waiting for it); where fcntl is missing, torch's own baton serialises."""
    try:
        import fcntl
    except ImportError:  # not POSIX
        yield
        return
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def build_and_load(root: Path | None = None) -> tuple[Path, bool]:
    """(the library, whether this call built it): build once per key under the lock, else just load it."""
    variant = variant_for_this_cpu()
    name = f"serpentir_scan_{variant}_{build_key(variant)}"
    root = root or cache_root()
    folder = root / name
    library, done = folder / f"{name}.so", folder / "built"
    folder.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(root / f"{name}.lock"):
        if not (done.exists() and library.exists()):
            _compile(name, variant, folder)
            with open(folder / "builds.log", "a") as log_file:
                log_file.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} pid {os.getpid()} built {library.name}\n")
            done.write_text(f"torch {torch.__version__}\npython {python_tag()}\npackage {CSRC.parent}\n")
            return library, True
    torch.ops.load_library(str(library))
    return library, False


def _compile(name: str, variant: str, folder: Path) -> None:
    """torch.utils.cpp_extension's build (ninja and a C++ compiler), which also loads the library."""
    from torch.utils import cpp_extension

    cpp_extension.load(name=name, sources=[str(s) for s in SOURCES], extra_cflags=compile_flags(variant),
                       extra_ldflags=list(LINK_FLAGS), extra_include_paths=[str(CSRC)], build_directory=str(folder),
                       is_python_module=False, verbose=os.environ.get("SERPENTIR_VERBOSE_BUILD") == "1")
