#!/usr/bin/env bash
# GPU readiness check (issue 15): compiled Triton kernel tests, Triton vs torch at real model shapes, faiss-gpu,
# sized SmolVLM2 ingest and ask; one JSON and one markdown table in --out. Installs and downloads nothing.
# Usage: benchmarks/gpu_check.sh --out DIR [--quick] [--skip tests,kernels,faiss,models] [--budget-seconds 480]
# Setup once (outside the budget): scripts/setup.sh --dev && .venv/bin/pip install -e '.[gpu]'
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${LONGWATCH_PYTHON:-${LONGWATCH_VENV:-.venv}/bin/python}"
if [ ! -x "$PY" ]; then
  echo "gpu_check: no Python at $PY; run scripts/setup.sh --dev first (or set LONGWATCH_PYTHON)" >&2
  exit 2
fi
# transformers imports a pip package named `kernels`; keep the repo root (our kernels/) off sys.path.
export PYTHONSAFEPATH=1
exec "$PY" -m longwatch.benchmarks.gpu_check "$@"
