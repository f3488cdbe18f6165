"""The package works when run from a checkout, where the repository root (holding kernels/, app/, ...) is the cwd."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
