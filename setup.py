"""Builds the compiled scan into the wheel when torch is importable; metadata lives in pyproject.toml.

The build needs the torch that the binary will run with, so build without isolation, in an
environment that already has it (a bare `torch` requirement here would make pip fetch one, on an
ordinary Linux machine the multi-GB CUDA build):

    pip wheel . --no-build-isolation --no-deps -w dist

Both instruction-set variants (AVX2+FMA and generic) go into the wheel with `_scan_kernels.json`,
which pins them to this torch, Python and platform (serpentir/ops/scan_cpu_shipped.py checks it at
load). Where torch is not importable (pip's default isolated build) or SERPENTIR_BUILD_KERNEL=0, the
package is built without a binary and builds its kernel on first use, as a source checkout does.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

from setuptools import setup

HERE = Path(__file__).resolve().parent


def _kernel_build_module():
    """serpentir/ops/scan_cpu_build.py by path: the flags and sources the first-use build uses too."""
    spec = importlib.util.spec_from_file_location("_serpentir_scan_cpu_build", HERE / "serpentir/ops/scan_cpu_build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _with_kernel() -> dict:
    from torch.utils.cpp_extension import BuildExtension, CppExtension

    kb = _kernel_build_module()
    sources = [str(p.relative_to(HERE)) for p in kb.SOURCES]
    names = {v: f"serpentir.ops._scan_kernel_{v}" for v in kb.VARIANTS}
    flags = {v: kb.compile_flags(v) + ["-g0"] for v in kb.VARIANTS}  # -g0: Python's own -g made 10 MB libraries
    extensions = [CppExtension(names[v], sources, include_dirs=[str(kb.CSRC)], extra_compile_args={"cxx": flags[v]},
                               extra_link_args=list(kb.LINK_FLAGS)) for v in kb.VARIANTS]

    class BuildKernels(BuildExtension):
        """Each variant compiles in its own temp folder (same sources, other flags), then the manifest."""

        def build_extension(self, ext):
            temp = self.build_temp
            self.build_temp = os.path.join(temp, ext.name)
            try:
                super().build_extension(ext)
            finally:
                self.build_temp = temp

        def run(self):
            super().run()
            import torch

            libraries = {v: Path(self.get_ext_fullpath(names[v])).name for v in kb.VARIANTS}
            manifest = {"torch": torch.__version__, "torch_git": str(torch.version.git_version),
                        "python": kb.python_tag(), "sources": kb.sources_digest(),
                        "flags": {v: flags[v] + list(kb.LINK_FLAGS) for v in kb.VARIANTS},
                        "libraries": libraries}
            target = Path(self.get_ext_fullpath(names[kb.VARIANTS[0]])).parent / "_scan_kernels.json"
            target.write_text(json.dumps(manifest, indent=1) + "\n")

    return {"ext_modules": extensions, "cmdclass": {"build_ext": BuildKernels}}


def _options() -> dict:
    if os.environ.get("SERPENTIR_BUILD_KERNEL", "1") == "0":
        return {}
    try:
        import torch  # noqa: F401
    except ImportError:
        print("serpentir: torch is not importable in this build environment, so the package carries no compiled "
              "scan and builds it on first use; for a wheel with the kernel inside run "
              "`pip wheel . --no-build-isolation --no-deps` where torch is installed", file=sys.stderr)
        return {}
    return _with_kernel()


setup(**_options())
