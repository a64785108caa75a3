#!/usr/bin/env bash
# Code layout. `scripts/format.sh` applies .editorconfig's conventions with `dotnet format` and lists the lines over
# 160 columns, which are wrapped by hand (at an argument or an operator, a long string split into a concatenation).
# `scripts/format.sh --check` (run by scripts/test.sh) changes nothing and fails on any difference from the conventions
# or on a line over 160 columns (raw string literals, which hold data verbatim, may run longer).
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
    echo "format: $(echo "$long" | wc -l) line(s) over 160 columns; wrap them"
    exit 1
  fi
  echo "format: the code follows .editorconfig; no line over 160 columns"
  exit 0
fi

dotnet format SplitFunctions.sln -v q
long_lines || true
