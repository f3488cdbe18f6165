"""The layout DESIGN.md promises, read from the source: imports point one way, no cycles, modules stay small.

Every import is parsed with ast, function-level ones included (they run too); `if TYPE_CHECKING:` blocks never run.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("ui", "app", "pipeline", "kernels", "memory", "samples", "benchmarks")
MAX_LINES = 420

# Higher layers may import lower ones, never the reverse: ui → app → pipeline → {kernels, memory}.
LAYER = {"ui": 3, "app": 2, "pipeline": 1, "kernels": 0, "memory": 0}
SHARED = {"longwatch.errors", "longwatch.optional"}  # below every layer: anyone may import them
TOOLS = {"samples", "benchmarks"}  # sample generators and benchmark scripts may import anything
# The CLI's `samples` and `demo` commands write sample videos, so app may use samples (never the reverse matters:
# samples are tools). Entry points of the package itself: `longwatch/__init__` re-exports app lazily, __main__ runs it.
MAY_ALSO_IMPORT = {"app": {"samples"}}
ENTRY = {"longwatch", "longwatch.__main__"}


def module_files() -> dict[str, Path]:
    files = {"longwatch": ROOT / "__init__.py", "longwatch.__main__": ROOT / "__main__.py",
             "longwatch.errors": ROOT / "errors.py", "longwatch.optional": ROOT / "optional.py"}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(("longwatch", *parts))
            files[name.removesuffix(".__init__")] = path
    return {name: path for name, path in files.items() if path.exists()}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_of(name: str, path: Path, modules: set[str]) -> set[str]:
    """The longwatch modules `name` imports anywhere in its file, resolved to modules that exist."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()

    def resolve(target: str) -> str | None:
        while target and target not in modules:  # `from longwatch.app.config import X`: X is a name, not a module
            target = target.rpartition(".")[0]
        return target or None

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{alias.name}" for alias in node.names]
        else:
            targets = []
        for target in targets:
            if target.split(".")[0] == "longwatch" and (module := resolve(target)) and module != name:
                found.add(module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
    return found


def import_graph() -> dict[str, set[str]]:
    files = module_files()
    return {name: imports_of(name, path, set(files)) for name, path in files.items()}


def _folder(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in PACKAGES else None


def layer_violation(importer: str, imported: str) -> str | None:
    """Why `importer` may not import `imported`, or None when the layout allows it."""
    if imported in SHARED or importer in ENTRY or imported == "longwatch":
        return None
    src, dst = _folder(importer), _folder(imported)
    if src in TOOLS or src == dst:
        return None
    if importer in SHARED:
        return "errors/optional sit below every layer and import nothing of ours but each other"
    if dst in TOOLS:
        return None if dst in MAY_ALSO_IMPORT.get(src, ()) else f"{src}/ must not depend on {dst}/"
    if src in LAYER and dst in LAYER and LAYER[dst] < LAYER[src]:
        return None
    return f"{src}/ may not import {dst}/ (allowed: ui → app → pipeline → {{kernels, memory}})"


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative over a small graph)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def strongconnect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    return found


def test_imports_point_down_the_layers():
    graph = import_graph()
    bad = sorted(f"{a} imports {b}: {why}" for a, deps in graph.items() for b in deps
                 if (why := layer_violation(a, b)) is not None)
    assert not bad, "upward or sideways imports:\n" + "\n".join(bad)


def test_ui_sees_only_the_app_package():
    graph = import_graph()
    bad = sorted(f"{a} imports {b}" for a, deps in graph.items() if _folder(a) == "ui" for b in deps
                 if _folder(b) != "ui" and b not in ("longwatch.app", *SHARED))
    assert not bad, "ui/ must import only `longwatch.app` (its lazy re-exports):\n" + "\n".join(bad)


def test_no_import_cycles():
    found = cycles(import_graph())
    assert not found, "import cycles:\n" + "\n".join(" ↔ ".join(c) for c in found)


def test_modules_stay_small():
    too_long = sorted((n, name) for name, path in module_files().items()
                      if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES)
    assert not too_long, f"modules over {MAX_LINES} lines:\n" + "\n".join(f"{name}: {n}" for n, name in too_long)


def test_the_checker_sees_what_it_must(tmp_path):
    """The rules above bite: an upward import, a function-level import and a cycle are all found."""
    assert layer_violation("longwatch.memory.bank", "longwatch.pipeline.core")
    assert layer_violation("longwatch.pipeline.core", "longwatch.app.api")
    assert layer_violation("longwatch.kernels.pooling", "longwatch.memory.bank")
    assert layer_violation("longwatch.errors", "longwatch.app.api")
    assert layer_violation("longwatch.pipeline.core", "longwatch.samples.videos")
    assert layer_violation("longwatch.ui.app", "longwatch.app.api") is None
    assert layer_violation("longwatch.samples.mcq", "longwatch.app.mcq") is None
    path = tmp_path / "m.py"
    path.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import longwatch.app.api\n"
                    "def f():\n    from longwatch.pipeline.config import PipelineConfig\n"
                    "    from . import sibling\n")
    modules = {"longwatch.app.api", "longwatch.pipeline.config", "longwatch.memory.sibling", "longwatch.memory.m"}
    assert imports_of("longwatch.memory.m", path, modules) == {"longwatch.pipeline.config", "longwatch.memory.sibling"}
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
