#!/usr/bin/env bash
# Install every test dependency (Python from pyproject, Node clients from the lockfile)
# and run the whole suite. Redis/Postgres come from SYNCD_TEST_REDIS_URL /
# SYNCD_TEST_DATABASE_URL when set, else the tests start throwaway servers.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'
npm ci --prefix tests/node --no-audit --no-fund --loglevel=error
.venv/bin/ruff check syncd tests bench
.venv/bin/mypy syncd
.venv/bin/python -m pytest "$@"
