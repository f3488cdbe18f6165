"""benchmarks/gpu_check.sh on a machine without a GPU: its arguments, the no-GPU refusal, and the JSON and table
it writes on the CPU plumbing path, where a part that did not run never carries a number.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import sys
from pathlib import Path

import pytest
import torch

from longwatch.benchmarks import gpu_check

SCRIPT = Path(gpu_check.__file__).with_name("gpu_check.sh")


def _script(*args: str, python: str = sys.executable) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "LONGWATCH_PYTHON": python})


def _numbers(value) -> list:
    """Every int or float inside a JSON value (bools are not numbers here)."""
    if isinstance(value, dict):
        return [n for v in value.values() for n in _numbers(v)]
    if isinstance(value, list):
        return [n for v in value for n in _numbers(v)]
    return [value] if isinstance(value, (int, float)) and not isinstance(value, bool) else []


def test_help_names_every_part_and_the_exit_codes():
    run = _script("--help")
    assert run.returncode == 0, run.stderr
    for word in (*gpu_check.PARTS, "--out", "--quick", "--skip", "--budget-seconds", "--allow-cpu",
                 f"{gpu_check.NO_CUDA_EXIT} no CUDA device"):
        assert word in run.stdout


def test_missing_python_is_named():
    run = _script("--help", python="/nonexistent/python")
    assert run.returncode == 2 and "scripts/setup.sh" in run.stderr


@pytest.mark.parametrize("argv, message", [
    (["--out", "x", "--frobnicate"], "unrecognized arguments: --frobnicate"),
    (["--out", "x", "--skip", "kernels,gpus"], "unknown part(s) gpus"),
    (["--out", "x", "--budget-seconds", "0"], "--budget-seconds must be > 0"),
    (["--quick"], "--out"),
])
def test_bad_arguments_exit_2_with_the_reason(argv, message, capsys):
    with pytest.raises(SystemExit) as stop:
        gpu_check.main(argv)
    assert stop.value.code == 2 and message in capsys.readouterr().err


def test_without_cuda_it_refuses_before_any_work(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = tmp_path / "out"
    assert gpu_check.main(["--out", str(out)]) == gpu_check.NO_CUDA_EXIT
    err = capsys.readouterr().err
    assert "no CUDA device" in err and "--allow-cpu" in err
    assert not out.exists()


def test_a_spent_budget_records_every_part_as_not_run_without_numbers(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_check.main(["--out", str(tmp_path), "--allow-cpu", "--budget-seconds", "1", "--skip", "faiss"]) == 0
    parts = json.loads((tmp_path / "gpu_check.json").read_text())["parts"]
    assert parts["faiss"] == {"status": "skipped", "reason": "--skip"}
    for name in ("tests", "kernels", "models"):
        assert parts[name]["status"] == "not_run" and "budget" in parts[name]["reason"]
    assert _numbers(parts) == []


def test_cpu_plumbing_writes_the_json_and_table_and_marks_skipped_parts(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code = gpu_check.main(["--out", str(tmp_path), "--allow-cpu", "--quick", "--skip", "models,faiss",
                           "--budget-seconds", "240"])
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert code == 0, report
    assert {"started", "quick", "budget_seconds", "environment", "parts", "elapsed_seconds"} <= set(report)
    assert report["quick"] is True and list(report["parts"]) == list(gpu_check.PARTS)
    parts = report["parts"]
    for name in ("models", "faiss"):
        assert parts[name] == {"status": "skipped", "reason": "--skip"}
    tests = parts["tests"]
    if not torch.cuda.device_count():  # the children see the real machine
        # The compiled-kernel tests ran and skipped: recorded as unverified, not as passed.
        assert tests["status"] == "unavailable" and tests["passed"] == 0 and tests["skipped"] >= 1, tests
    kernels = parts["kernels"]
    assert kernels["status"] == "ok" and len(kernels["rows"]) == 6
    for row in kernels["rows"]:
        assert row["torch_ms"] > 0
        # No Triton number without a GPU: neither a time nor a difference from the torch path.
        assert (row["triton_ms"] is None) == (row["max_abs_diff"] is None) == (kernels["device"] == "cpu")
    table = (tmp_path / "gpu_check.md").read_text()
    assert "| models | skipped | --skip |" in table and "| faiss | skipped | --skip |" in table
    assert "pool_spatial" in table and "cross_attention" in table and "--quick shapes" in table


def test_models_part_runs_its_plumbing_on_cpu(tmp_path, monkeypatch):
    # The models part drives benchmarks/query.py's helpers; --quick runs them with the tiny preset, so an API change
    # there fails here and not first on a lent GPU.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    result = gpu_check.part_models(quick=True, deadline=time.time() + 300, out=tmp_path)
    assert result["device"] == "cpu" and result["not_run"] == [], result
    (row,) = result["rows"]
    assert row["model"] == "tiny" and row["clips"] > 0
    assert row["x_real_time"] > 0 and row["ask_s"] > 0 and row["ask_prefill"] > 0


def test_faiss_part_runs_its_plumbing_on_cpu(tmp_path):
    # --quick searches 1e4 keys on the CPU when faiss sees no GPU: the same calls the GPU run makes, exact recall.
    result = gpu_check.part_faiss(quick=True, deadline=time.time() + 120, out=tmp_path)
    assert result["status"] == "ok" and result["keys"] == 10_000, result
    assert result["recall_at_10"] == 1.0 and result["p50_ms"] > 0 and result["cpu_p50_ms"] > 0
