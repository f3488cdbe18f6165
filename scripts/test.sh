#!/usr/bin/env bash
# The README's test command: set up (with test tools) and run the default test tiers.
# Extra arguments go to pytest, e.g. `scripts/test.sh -m slow`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev
# transformers imports a pip package named `kernels`; with the repo root on sys.path (what `python -m` does) our own
# kernels/ folder would shadow it. Safe-path mode keeps the cwd off sys.path here and in every subprocess.
export PYTHONSAFEPATH=1
# pytest exits 5 when it collects nothing; `set -e` turns that into a failure, as it should.
exec .venv/bin/python -m pytest "$@"
