#!/usr/bin/env bash
# Code layout. `scripts/format.sh` formats: CSharpier wraps the C# at 160 columns, then `dotnet format` applies
# .editorconfig. `scripts/format.sh --check` (run by scripts/test.sh) changes nothing and fails on any difference or
# on a line over 160 columns (raw string literals, which hold data verbatim, are allowed to run longer).
set -euo pipefail
cd "$(dirname "$0")/.."

long_lines() {
  git ls-files '*.cs' | xargs awk 'length($0) > 160 && $0 !~ /"""/ { printf "%s:%d: %d columns\n", FILENAME, FNR, length($0) }'
}

if [ "${1:-}" = "--check" ]; then
  dotnet format SplitFunctions.sln --verify-no-changes --no-restore -v q \
    || { echo "format: the code differs from .editorconfig's conventions; run scripts/format.sh"; exit 1; }
  long=$(long_lines)
  if [ -n "$long" ]; then
    echo "$long"
    echo "format: $(echo "$long" | wc -l) line(s) over 160 columns; run scripts/format.sh and wrap what it leaves"
    exit 1
  fi
  echo "format: the code follows .editorconfig; no line over 160 columns"
  exit 0
fi

dotnet tool restore >/dev/null
dotnet csharpier format .
dotnet format SplitFunctions.sln -v q
long_lines || true
