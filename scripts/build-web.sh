#!/usr/bin/env bash
# Build the web app (web/) from its lockfile into syncd/webapp/static, which the Python
# package ships: `syncd serve` then serves it with no Node at run time.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v npm >/dev/null 2>&1; then
  echo "build-web: npm (Node 20) is needed to build the web app; the API runs without it" >&2
  exit 1
fi
npm ci --prefix web --no-audit --no-fund --loglevel=error
npm run --prefix web --silent build
echo "build-web: built syncd/webapp/static ($(gzip -9c syncd/webapp/static/assets/app.js | wc -c) bytes of JS gzipped)"
