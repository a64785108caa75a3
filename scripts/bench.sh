#!/usr/bin/env bash
# Runs benchmarks (not tests): prints figures and merges them into artifacts/bench/results.json.
#   scripts/bench.sh engine|protocol|split|all [options]
set -euo pipefail
cd "$(dirname "$0")/.."
SPLITFN_WITH_PYTORCH=1 scripts/setup.sh
exec dotnet bench/SplitFunctions.Bench/bin/Release/net10.0/splitfn-bench.dll "$@"
