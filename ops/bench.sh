#!/usr/bin/env bash
# The benchmark suite of issue 9, in one command: every budget of bench/budgets.toml measured
# side by side with two bare aiohttp baselines in one run, written to docs/benchmarks.md.
# Takes under 10 minutes on 2 cores. Options go to `python -m bench.suite` (see --help),
# e.g. `ops/bench.sh --only throughput --seconds 3`.
# Exit status: 0 every budget met, 1 a budget missed (the report marks it), 2 the suite broke.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'bench: %s\n' "$*"; }

# wrk (load generator) from Debian, as ops/setup.sh installs its packages: only when missing.
if ! command -v wrk >/dev/null 2>&1; then
    say "installing wrk (apt-get)"
    if [ "$(id -u)" -eq 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >/dev/null \
            || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >/dev/null; }
    else
        sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >/dev/null
    fi
fi

# The virtual environment, Chromium, PostgreSQL and libsodium come from the test set-up.
if [ ! -x .venv/bin/fristed ] || [ ! -x /usr/bin/chromium ] || [ ! -d web/static/vendor ]; then
    say "setting up (ops/setup.sh --test)"
    ops/setup.sh --test
fi

# Whatever happens (Ctrl-C, a kill, a crash), stop everything the suite started: it runs in its
# own process group, and it also stops its servers itself (bench/procs.py).
suite_pid=""
cleanup() {
    if [ -n "$suite_pid" ] && kill -0 "$suite_pid" 2>/dev/null; then
        kill -TERM -- "-$suite_pid" 2>/dev/null || true
        sleep 2
        kill -KILL -- "-$suite_pid" 2>/dev/null || true
    fi
}
trap cleanup EXIT INT TERM HUP

# setsid: the suite leads its own process group, so the trap can stop the whole group.
# timeout: a hard bound over the suite's own time budget (540 s by default).
setsid timeout --signal=TERM --kill-after=20 660 .venv/bin/python -m bench.suite "$@" &
suite_pid=$!
set +e
wait "$suite_pid"
status=$?
set -e
suite_pid=""
exit "$status"
