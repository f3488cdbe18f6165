"""longwatch: question answering over hour-long videos and live streams.

Importing the package is cheap; heavy modules (torch, transformers, faiss) load inside the functions that need them.
"""

import os as _os
import sys as _sys

__version__ = "0.1.0"


def _keep_checkout_root_off_sys_path() -> None:
    """Our subpackages live at the root of a checkout (kernels/, app/, memory/, ui/), and Python (`python -m`,
    `python -c`) and Ray workers put the current directory on sys.path. Run from a checkout, our `kernels/` then
    shadows the pip package `kernels` that transformers imports, and every model load fails; `python
    benchmarks/X.py` puts benchmarks/ first, where benchmarks/kernels.py does the same. Our modules are only ever
    imported as `longwatch.*`, so neither folder is ever needed on the path."""
    # realpath on both sides: the package may be reached through a symlink (a dev layout, a shared venv).
    root = _os.path.dirname(_os.path.realpath(__file__))
    shadowing = {root, _os.path.join(root, "benchmarks")}
    _sys.path[:] = [p for p in _sys.path if _os.path.realpath(p or _os.curdir) not in shadowing]


_keep_checkout_root_off_sys_path()
# OpenMP threads that spin while waiting for work (the default) fight the other lanes for a laptop's few cores:
# measured on a busy 2-core CPU, a SmolVLM2-256M prefill took 25 s spinning and 0.3 s passive, and an OCR frame
# 0.33 s against 0.15 s (benchmarks/ingest_speed.py). Set before torch loads; a user's own setting wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def __getattr__(name: str):
    """`from longwatch import LongWatch` (and the other names of longwatch.app), loaded on first use."""
    if name.startswith("__"):
        raise AttributeError(name)
    import longwatch.app as _app

    if name not in _app.__all__:
        raise AttributeError(f"module 'longwatch' has no attribute {name!r}")
    return getattr(_app, name)
