#!/usr/bin/env bash
# Install everything Fristed needs on a fresh Debian machine, idempotently:
# Debian packages (chromium, postgresql and nginx for the browser,
# multi-process and reverse-proxy tests; only with --test, and only these need root),
# a Python virtual environment in .venv, npm packages from the lock
# file, and libsodium copied into web/static/vendor (never committed).
# It says what it does, a line per step, and shows pip's and npm's own progress.
# Usage: ops/setup.sh [--test]   (--test adds the test-only packages)
set -euo pipefail
cd "$(dirname "$0")/.."
want_test=0
[ "${1:-}" = "--test" ] && want_test=1

log() { printf 'setup: %s\n' "$*" >&2; }

apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    log "Debian packages for the tests: all present ($*)"; return 0
  fi
  if [ "$(id -u)" -ne 0 ]; then
    log "missing Debian packages: ${missing[*]} (run as root, or install them)"; return 1
  fi
  log "installing Debian packages: ${missing[*]} (apt-get, about 30 s)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends "${missing[@]}" >&2 \
    || { apt-get update -q >&2 && apt-get install -y -q --no-install-recommends "${missing[@]}" >&2; }
}

if [ $want_test -eq 1 ]; then
  log "step 1/4: Debian packages (chromium, postgresql, nginx-light, openssl, fonts)"
  apt_install chromium postgresql nginx-light openssl fonts-noto-core
else
  log "step 1/4: Debian packages: none needed for the demo (no root needed)"
fi

PYTHON=${PYTHON:-python3}
log "step 2/4: Python virtual environment in .venv"
if [ ! -x .venv/bin/python ]; then
  log "creating .venv with $("$PYTHON" --version 2>&1)"
  "$PYTHON" -m venv .venv
fi
extras=""
[ $want_test -eq 1 ] && extras="[test]"
stamp=".venv/.installed$extras"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  log "installing Python packages into .venv (pip; about 20-60 s on a fresh machine)"
  # pip's own lines ("Collecting …", "Installing collected packages …") are the progress.
  .venv/bin/pip install --disable-pip-version-check --progress-bar on -e ".$extras" 2>&1 \
    | grep --line-buffered -v "is ignored" >&2 || true
  .venv/bin/python -c "import aiohttp, nacl, sqlalchemy, alembic" \
    || { log "Python packages failed to install"; exit 1; }
  touch "$stamp"
else
  log "Python packages: up to date"
fi

log "step 3/4: npm packages from package-lock.json"
if [ ! -d node_modules/libsodium-wrappers-sumo ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "installing npm packages (npm ci)"
  npm ci --no-audit --no-fund --loglevel=http >&2
else
  log "npm packages: up to date"
fi

# libsodium for the browser: the same build hook that puts it into the wheel
# (ops/packaging/fristed_build.py: versions checked against the lock, the bare
# import rewritten, checksums recorded in web/static/vendor/vendor.json).
log "step 4/4: libsodium into web/static/vendor"
.venv/bin/python ops/packaging/fristed_build.py || { log "copying libsodium failed"; exit 1; }
log "ready"
