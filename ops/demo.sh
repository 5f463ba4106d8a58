#!/usr/bin/env bash
# README command 1: install everything and serve a demo on http://127.0.0.1:8080/. Needs no root.
# The demo's data dir (.demo/, or $FRISTED_DEMO_DIR) is made anew on every start, with fresh
# credentials; PORT overrides 8080 (public_url, and so every printed link, follows it).
set -euo pipefail
cd "$(dirname "$0")/.."
demo_dir=${FRISTED_DEMO_DIR:-.demo}
port=${PORT:-8080}
ops/setup.sh
printf 'demo: making a fresh demo in %s (team demo, consultant demo on duty)\n' "$demo_dir" >&2
rm -rf "$demo_dir"
.venv/bin/fristed init --data-dir "$demo_dir" --demo --port "$port"
printf 'demo: starting the gateway on http://127.0.0.1:%s/ (Ctrl-C stops it)\n' "$port" >&2
.venv/bin/fristed serve --data-dir "$demo_dir" --host 127.0.0.1 --port "$port" &
server=$!
trap 'kill -TERM "$server" 2>/dev/null; wait "$server"; exit 0' INT TERM
# Last, once the gateway answers: where to go.
if .venv/bin/python - "$port" <<'PY'
import sys, time, urllib.request
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/healthz", timeout=2).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.2)
sys.exit(1)
PY
then
  printf 'log in at http://127.0.0.1:%s/staff/login as demo\n' "$port"
fi
wait "$server"
