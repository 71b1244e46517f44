"""Where the compiled scan comes from: the shipped binary's pin, the first-use build's key and lock,
and the one-way imports of the scan core.

The concurrency test runs two real processes against an empty cache folder. By default their
"compiler" copies the library this process already loaded after a pause (the lock, the key and the
load are real; a build takes minutes); SERPENTIR_TEST_REAL_BUILD=1 makes them run the real build.
"""

import ast
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import serpentir.ops.scan_core as scan_core
import serpentir.ops.scan_cpu_build as scan_cpu_build
import serpentir.ops.scan_cpu_shipped as scan_cpu_shipped

ROOT = Path(__file__).resolve().parents[1]
REAL_BUILD = os.environ.get("SERPENTIR_TEST_REAL_BUILD") == "1"

CHILD = textwrap.dedent("""
    import json, logging, os, shutil, sys, time
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from pathlib import Path
    import torch
    import serpentir.ops.scan_cpu_build as b
    if os.environ.get("FAKE_LIBRARY"):
        def fake_compile(name, variant, folder):  # a slow "build" that yields the real library
            time.sleep(3)
            library = Path(folder) / f"{name}.so"
            shutil.copy(os.environ["FAKE_LIBRARY"], library)
            torch.ops.load_library(str(library))
        b._compile = fake_compile
    path, built = b.build_and_load()
    from serpentir.ops import selective_scan_ref
    from serpentir.ops.scan_cpu import selective_scan_cpu
    g = torch.Generator().manual_seed(0)
    u, delta = torch.randn(1, 4, 20, generator=g), torch.rand(1, 4, 20, generator=g)
    A, B, C = -torch.rand(4, 3, generator=g), torch.randn(1, 3, 20, generator=g), torch.randn(1, 3, 20, generator=g)
    err = (selective_scan_cpu(u, delta, A, B, C) - selective_scan_ref(u, delta, A, B, C)).abs().max().item()
    print(json.dumps({"path": str(path), "built": built, "err": err}))
""")


def test_build_key_changes_with_everything_that_changes_the_binary(monkeypatch):
    base = scan_cpu_build.build_key("avx2")
    assert scan_cpu_build.build_key("generic") != base  # flags
    with monkeypatch.context() as m:
        m.setattr(scan_cpu_build.torch, "__version__", "2.99.0")
        assert scan_cpu_build.build_key("avx2") != base
    with monkeypatch.context() as m:
        m.setattr(scan_cpu_build, "python_tag", lambda: "cpython-399/elsewhere")
        assert scan_cpu_build.build_key("avx2") != base
    with monkeypatch.context() as m:  # a second install of the same version (another venv or checkout)
        m.setattr(scan_cpu_build, "__file__", "/another/venv/serpentir/ops/scan_cpu_build.py")
        assert scan_cpu_build.build_key("avx2") != base
    with monkeypatch.context() as m:
        m.setattr(scan_cpu_build, "sources_digest", lambda: "0" * 16)
        assert scan_cpu_build.build_key("avx2") != base
    assert scan_cpu_build.build_key("avx2") == base


def test_cache_folder_can_be_overridden(monkeypatch, tmp_path):
    monkeypatch.setenv(scan_cpu_build.CACHE_ENV, str(tmp_path))
    assert scan_cpu_build.cache_root() == tmp_path


@pytest.mark.usefixtures("compiled_kernel")
def test_concurrent_first_uses_wait_for_one_build(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != scan_core.DISABLE_ENV}
    env.update(PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", **{scan_cpu_build.CACHE_ENV: str(tmp_path)})
    if not REAL_BUILD:
        env["FAKE_LIBRARY"] = str(scan_core.cpu_kernel_load().path)
    children = [subprocess.Popen([sys.executable, "-c", CHILD], env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [child.communicate(timeout=1800) for child in children]
    for child, (out, err) in zip(children, outputs):
        assert child.returncode == 0, err[:1000] + " ... " + err[-1000:]
    results = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    assert sorted(r["built"] for r in results) == [False, True]
    assert results[0]["path"] == results[1]["path"] and all(r["err"] < 1e-4 for r in results)
    log = Path(results[0]["path"]).parent / "builds.log"
    assert len(log.read_text().splitlines()) == 1


def test_shipped_binary_for_another_torch_is_refused(monkeypatch, tmp_path):
    manifest = {"torch": "2.0.0", "torch_git": "x", "python": scan_cpu_build.python_tag(),
                "sources": scan_cpu_build.sources_digest(), "libraries": {"avx2": "lib.so", "generic": "lib.so"}}
    (tmp_path / "_scan_kernels.json").write_text(json.dumps(manifest))
    (tmp_path / "lib.so").write_bytes(b"")
    monkeypatch.setattr(scan_cpu_shipped, "MANIFEST", tmp_path / "_scan_kernels.json")
    library, why = scan_cpu_shipped.load_shipped()
    assert library is None and "built for torch 2.0.0" in why


def test_shipped_binary_missing_in_a_checkout(monkeypatch, tmp_path):
    monkeypatch.setattr(scan_cpu_shipped, "MANIFEST", tmp_path / "_scan_kernels.json")
    assert scan_cpu_shipped.load_shipped() == (None, "none in this install: a source checkout, or a wheel built "
                                                      "without torch")


def _imports(path: Path, package: str) -> set[str]:
    """serpentir.ops modules that `path` imports anywhere (top level or inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            names = [node.module] if node.module else [a.name for a in node.names]
            found.update(f"{package}.{n.split('.')[0]}" for n in names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(package + "."):
            found.add(".".join(node.module.split(".")[:3]))
    return found


def test_ops_imports_have_no_cycle():
    ops = ROOT / "serpentir" / "ops"
    graph = {f"serpentir.ops.{p.stem}": _imports(p, "serpentir.ops") for p in ops.glob("*.py") if p.stem != "__init__"}
    done, stack = set(), []

    def visit(node):
        if node in stack:
            raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(node):] + [node]))
        if node in done or node not in graph:
            return
        stack.append(node)
        for dep in graph[node]:
            visit(dep)
        stack.pop()
        done.add(node)

    for module in graph:
        visit(module)
    assert "serpentir.ops.selective_scan" not in graph["serpentir.ops.scan_export"]
