#!/usr/bin/env bash
# Install every test dependency (Python from pyproject, Node clients and the web app from
# their lockfiles) and run the whole suite, browser tests included. Redis/Postgres come
# from SYNCD_TEST_REDIS_URL / SYNCD_TEST_DATABASE_URL when set, else the tests start
# throwaway servers.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'
npm ci --prefix tests/node --no-audit --no-fund --loglevel=error
# the web app, for the browser tests (tests/browser, in Chromium: see .ci/run)
bash scripts/build-web.sh
.venv/bin/ruff check syncd tests bench
.venv/bin/mypy syncd
.venv/bin/python -m pytest "$@"
