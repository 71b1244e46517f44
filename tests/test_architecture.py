"""The shape of the code, checked: no import cycle, no module over 400 lines, and the library never
needs the workshop (serpentir_lab) to be imported.

Imports are read with `ast`, so the check costs no imports and sees the lazy ones (inside functions)
too: a cycle through a lazy import is still two modules that cannot be understood one without the other.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("serpentir", "serpentir_lab")
MAX_LINES = 400
KNOWN_CYCLES: frozenset = frozenset()  # none: every cycle found is a failure


def module_files() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the packages (a package is its __init__)."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def imported_modules(name: str, path: Path, known: set[str]) -> list[tuple[str, bool]]:
    """(module imported, whether at module level) for each import of a known module in the file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node, top in _imports(tree.body, top=True):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            # `from pkg import sub` imports the submodule when there is one, else a name of pkg
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        found += [(t, top) for t in targets if t in known and t != name]
    return found


def _imports(body: list[ast.stmt], top: bool):
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node, top
        inner = isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        for field in ("body", "orelse", "finalbody", "handlers"):
            children = getattr(node, field, None)
            if isinstance(children, list):
                yield from _imports([c for c in children if isinstance(c, (ast.stmt, ast.excepthandler))],
                                    top and not inner)


def import_graph() -> dict[str, set[str]]:
    modules = module_files()
    known = set(modules)
    return {name: {t for t, _ in imported_modules(name, path, known)} for name, path in modules.items()}


def strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's algorithm: every strongly connected component of more than one module (or a self-loop)."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph[v]:
                found.append(component)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_graph_sees_lazy_and_relative_imports():
    graph = import_graph()
    assert "serpentir.infer.catalogue" in graph["serpentir.infer.api"]  # relative, module level
    assert "serpentir.checkpoint.format" in graph["serpentir.infer.api"]  # relative, inside a function
    assert "serpentir_lab.bench.cost" in graph["serpentir.cli.workshop"]  # absolute, inside a function


def test_the_cycle_finder_finds_a_cycle():
    assert strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]


def test_no_import_cycle():
    cycles = [sorted(c) for c in strongly_connected(import_graph()) if frozenset(c) not in KNOWN_CYCLES]
    assert not cycles, f"import cycles: {cycles}"


def test_no_module_over_400_lines():
    long = {name: n for name, path in module_files().items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_the_library_never_imports_the_workshop_at_module_level():
    modules = module_files()
    known = set(modules)
    offenders = sorted((name, target) for name, path in modules.items() if name.split(".")[0] == "serpentir"
                       for target, top in imported_modules(name, path, known)
                       if top and target.split(".")[0] == "serpentir_lab")
    assert not offenders, f"serpentir modules importing serpentir_lab at import time: {offenders}"


def test_the_workshop_is_not_imported_by_the_library_api():
    import subprocess
    import sys

    code = ("import sys, serpentir, serpentir.train, serpentir.infer, serpentir.checkpoint; "
            "print(sorted(m for m in sys.modules if m.startswith('serpentir_lab')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
