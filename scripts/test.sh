#!/usr/bin/env bash
# The README's test command: set up (with test tools) and run the default test tiers.
# Extra arguments go to pytest, e.g. `scripts/test.sh -m slow`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev
# pytest exits 5 when it collects nothing; `set -e` turns that into a failure, as it should.
exec .venv/bin/python -m pytest "$@"
