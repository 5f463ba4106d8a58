#!/usr/bin/env bash
# README command 1: install everything and serve a demo on http://127.0.0.1:8080/.
# The demo's data dir (.demo/) is made anew on every start, with fresh credentials.
set -euo pipefail
cd "$(dirname "$0")/.."
ops/setup.sh
rm -rf .demo
.venv/bin/fristed init --data-dir .demo --demo
exec .venv/bin/fristed serve --data-dir .demo --host 127.0.0.1 --port "${PORT:-8080}"
