"""The bank's place in the layout: it imports only itself and longwatch.errors, and opening the package is cheap.

Dependencies point one way (ui -> app -> pipeline -> memory); an upward import would pull models into every reader.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import longwatch.memory

MEMORY = Path(longwatch.memory.__file__).parent


def _longwatch_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found.update(n for n in names if n.split(".")[0] == "longwatch")
    return found


def test_memory_imports_only_itself_and_errors():
    for path in sorted(MEMORY.glob("*.py")):
        for name in _longwatch_imports(path):
            assert name == "longwatch.errors" or name.startswith("longwatch.memory"), f"{path.name} imports {name}"


def test_memory_modules_stay_small():
    for path in MEMORY.glob("*.py"):
        assert len(path.read_text().splitlines()) <= 400, f"{path.name} has grown past 400 lines: split it by concern"


def test_importing_the_bank_loads_no_torch_faiss_or_pipeline():
    code = ("import sys, longwatch.memory; "
            "print(sorted(m for m in ('torch', 'faiss', 'longwatch.pipeline', 'longwatch.app') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
