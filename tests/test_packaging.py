"""The package works when run from a checkout, where the repository root (holding kernels/, app/, ...) is the cwd."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import longwatch

ROOT = Path(longwatch.__file__).parent


def test_checkout_root_does_not_shadow_the_pip_kernels_package_transformers_imports():
    # `python -c` from the checkout puts the cwd first on sys.path, as Ray does for its workers.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONSAFEPATH"}
    code = ("import longwatch, kernels, transformers.integrations.hub_kernels; "
            "from transformers import AutoModelForCausalLM; print(kernels.__file__)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=240)
    assert out.returncode == 0, out.stderr[-2000:]
    assert Path(out.stdout.strip()).parent != ROOT / "kernels"
    assert "site-packages" in out.stdout


def test_a_benchmark_script_run_by_path_loads_transformers():
    # `python benchmarks/query.py` (the commands BENCHMARKS.md gives) puts benchmarks/ first on sys.path, where
    # benchmarks/kernels.py would stand in for the pip package `kernels`.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONSAFEPATH"}
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "query.py"), "--help"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import longwatch, kernels; "
            "import transformers.integrations.hub_kernels; print(kernels.__file__)")
    out = subprocess.run([sys.executable, "-c", code, str(ROOT / "benchmarks")], cwd="/", env=env,
                         capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "site-packages" in out.stdout


def test_a_missing_optional_package_names_the_extra_that_installs_it(monkeypatch):
    from longwatch import optional
    from longwatch.errors import LongwatchError, MissingDependency

    monkeypatch.setitem(sys.modules, "ray", None)  # as on a machine without ray: importing it fails
    try:
        optional.require("ray", "the Ray executor")
    except MissingDependency as exc:
        assert isinstance(exc, (LongwatchError, ImportError)) and exc.package == "ray"
        assert str(exc) == "the Ray executor needs ray, which is not installed: pip install 'longwatch[distributed]'"
    else:
        raise AssertionError("require() imported a package that cannot import")
    assert optional.install_hint("gradio") == "pip install 'longwatch[ui]'"
    assert optional.installed("pyarrow") in (True, False)
    with pytest.raises(KeyError, match="not a known optional package"):
        optional.installed("numpyy")


def test_the_package_root_and_app_export_the_api_lazily():
    code = ("import sys, longwatch, longwatch.app; assert 'torch' not in sys.modules; "
            "from longwatch import LongWatch, video_id_for; from longwatch.app import LongWatch as L; "
            "assert LongWatch is L and 'torch' not in sys.modules; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
