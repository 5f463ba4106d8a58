#!/usr/bin/env bash
# Run the benchmarks (bench/): ratios against a baseline measured in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
ops/setup.sh --test
exec .venv/bin/python -m bench.citizen_api "$@"
