#!/usr/bin/env bash
# Install syncd into .venv and start it on the embedded default (SQLite, one process).
# The web app is built from web/package-lock.json first when its assets are missing; if it
# cannot be built (no Node), the server still starts and `/` says how to build it.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -f syncd/webapp/static/index.html ]; then
  bash scripts/build-web.sh || echo "serve: the web app was not built; starting the API only" >&2
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet .
exec .venv/bin/syncd serve "$@"
