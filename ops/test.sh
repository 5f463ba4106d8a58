#!/usr/bin/env bash
# README command 2: install everything and run the whole suite (browser tests included).
set -euo pipefail
cd "$(dirname "$0")/.."
ops/setup.sh --test
export PATH="$PWD/.venv/bin:$PATH"
echo "== ruff"; ruff check .
echo "== mypy"; mypy gateway crypto ops
echo "== node --test"; node --test tests/js/
echo "== pytest"
# The suite starts `fristed` hundreds of times. Where the environment forbids writing
# bytecode (PYTHONDONTWRITEBYTECODE), each start would compile our sources again (~0.3 s).
python -m compileall -q gateway crypto ops > /dev/null
set +e
pytest "$@"
status=$?
set -e
# pytest exits 5 when it collected no tests: that is a failure here.
[ $status -eq 5 ] && echo "no tests collected" >&2
exit $status
