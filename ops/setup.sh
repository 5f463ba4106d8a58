#!/usr/bin/env bash
# Install everything Fristed needs on a fresh Debian machine, idempotently:
# Debian packages (chromium, postgresql and nginx for the browser,
# multi-process and reverse-proxy tests), a Python virtual environment in .venv, npm packages from the lock
# file, and libsodium copied into web/static/vendor (never committed).
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
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    log "missing Debian packages: ${missing[*]} (run as root, or install them)"; return 1
  fi
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null \
    || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; }
}

if [ $want_test -eq 1 ]; then
  apt_install chromium postgresql nginx-light openssl fonts-noto-core
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  log "creating .venv"
  "$PYTHON" -m venv .venv
fi
extras=""
[ $want_test -eq 1 ] && extras="[test]"
stamp=".venv/.installed$extras"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  log "installing Python packages"
  .venv/bin/pip install -q --disable-pip-version-check -e ".$extras" 2>&1 | grep -v "is ignored" >&2 || true
  .venv/bin/python -c "import aiohttp, nacl, sqlalchemy, alembic" \
    || { log "Python packages failed to install"; exit 1; }
  touch "$stamp"
fi

if [ ! -d node_modules/libsodium-wrappers-sumo ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "installing npm packages (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
fi

# libsodium for the browser: the ES modules, served from our own origin. The
# wrapper imports the bare name "libsodium-sumo"; point it at the file beside it.
vendor=web/static/vendor
mkdir -p "$vendor"
cp node_modules/libsodium-sumo/dist/modules-sumo-esm/libsodium-sumo.mjs "$vendor/libsodium-sumo.mjs"
sed 's|import e from"libsodium-sumo"|import e from"./libsodium-sumo.mjs"|' \
  node_modules/libsodium-wrappers-sumo/dist/modules-sumo-esm/libsodium-wrappers.mjs > "$vendor/libsodium-wrappers.mjs"
if grep -q 'from"libsodium-sumo"' "$vendor/libsodium-wrappers.mjs" || ! grep -q 'from"./libsodium-sumo.mjs"' "$vendor/libsodium-wrappers.mjs"; then
  log "the libsodium import rewrite did not apply (did the package layout change?)"; exit 1
fi
log "ready"
