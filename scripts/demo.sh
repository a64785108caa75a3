#!/usr/bin/env bash
# The main job: a local multi-hospital split-learning run on Azurite (see README). Installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec dotnet local-run/bin/Release/net10.0/splitfn-local.dll demo "$@"
