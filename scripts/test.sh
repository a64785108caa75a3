#!/usr/bin/env bash
# Runs every test (unit, golden, Azurite integration). Installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
SPLITFN_WITH_BROWSER=1 scripts/setup.sh

mkdir -p artifacts/test
log=artifacts/test/dotnet-test.log
set +e
dotnet test SplitFunctions.sln -c Release --no-build -nologo \
  --logger "console;verbosity=normal" --results-directory artifacts/test 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e

# One closing line for every runner: "tests: N passed, N failed, N skipped".
summary=$(grep -E '(Passed|Failed)!\s+-\s+Failed:' "$log" | sed -E 's/.*Failed:\s*([0-9]+), Passed:\s*([0-9]+), Skipped:\s*([0-9]+).*/\1 \2 \3/' |
  awk '{f+=$1; p+=$2; s+=$3} END {printf "%d passed, %d failed, %d skipped", p, f, s}')
echo "tests: ${summary:-0 passed, 0 failed, 0 skipped}"
exit "$rc"
