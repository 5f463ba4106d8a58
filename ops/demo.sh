#!/usr/bin/env bash
# README command 1: install everything and serve a demo on http://127.0.0.1:8080/.
# The demo's data dir (.demo/, or $FRISTED_DEMO_DIR) is made anew on every start, with fresh
# credentials; PORT overrides 8080.
set -euo pipefail
cd "$(dirname "$0")/.."
demo_dir=${FRISTED_DEMO_DIR:-.demo}
ops/setup.sh
rm -rf "$demo_dir"
.venv/bin/fristed init --data-dir "$demo_dir" --demo
exec .venv/bin/fristed serve --data-dir "$demo_dir" --host 127.0.0.1 --port "${PORT:-8080}"
