#!/usr/bin/env bash
# Runs every test: tests/SplitFunctions.Tests.Unit (no Azurite, no child processes: fast feedback) and
# tests/SplitFunctions.Tests.Integration (Azurite, the agent, function and operator as processes, end to end), after
# compiling and linting the Azure templates (scripts/bicep.sh) and checking the code layout (scripts/format.sh --check). Installs what it needs first, including Debian's python3-torch:
# the PyTorch interop and engine-benchmark smoke tests need it.
#   scripts/test.sh unit   only the unit tests (a developer's quick loop)
set -euo pipefail
cd "$(dirname "$0")/.."
SPLITFN_WITH_PYTORCH=1 SPLITFN_WITH_BROWSER=1 scripts/setup.sh
# The Azure templates, with the real Bicep compiler: any error or warning stops here, with its reason.
scripts/bicep.sh

scripts/format.sh --check

target=SplitFunctions.sln
if [ "${1:-}" = "unit" ]; then target=tests/SplitFunctions.Tests.Unit; fi

mkdir -p artifacts/test
log=artifacts/test/dotnet-test.log
set +e
dotnet test "$target" -c Release --no-build -nologo \
  --logger "console;verbosity=normal" --results-directory artifacts/test 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e

# One closing line for every runner: "tests: N passed, N failed, N skipped" (from the console logger's totals).
count() { grep -E "^\s+$1:\s+[0-9]+" "$log" | awk '{s+=$2} END {print s+0}' || true; }
# A failure scrolls far above the end of a long run: name each failed test and its first lines again here.
if grep -qE "^\s+Failed [A-Za-z]" "$log"; then
  echo "failed tests (details above and in $log):"
  grep -A 6 -E "^\s+Failed [A-Za-z]" "$log" | cut -c1-300 || true
fi
echo "tests: $(count Passed) passed, $(count Failed) failed, $(count Skipped) skipped (exit code $rc)"
exit "$rc"
