#!/usr/bin/env bash
# Installs what SplitFunctions needs on Debian/Ubuntu and builds it. Safe to run again:
# packages already present are skipped, npm ci runs only when the lock changed, builds are incremental.
#   SPLITFN_WITH_PYTORCH=1  also installs python3-torch (benchmarks, golden fixture regeneration)
#   SPLITFN_WITH_BROWSER=1  also installs chromium (the tests render the HTML reports in it)
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi

# The engine (TorchSharp with libtorch 2.10) comes from NuGet with the build: no ML library from apt.
need=()
# The report tests render the HTML reports in headless Chromium (scripts/test.sh sets this).
if [ "${SPLITFN_WITH_BROWSER:-0}" = "1" ]; then
  dpkg -s chromium >/dev/null 2>&1 || need+=(chromium)
fi
# DICOM images are decoded by GDCM's C# bindings (loaded at run time; without them the agent names this package).
dpkg -s libgdcm-cil >/dev/null 2>&1 || need+=(libgdcm-cil)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
if [ "${SPLITFN_WITH_PYTORCH:-0}" = "1" ]; then
  dpkg -s python3-torch >/dev/null 2>&1 || need+=(python3-torch)
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]} (apt)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# Azurite (the real storage emulator) from the committed lock file.
if [ -f package-lock.json ]; then
  stamp=node_modules/.splitfn-lock.sha256
  want=$(sha256sum package-lock.json | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "setup: npm ci (Azurite)"
    npm ci --no-audit --no-fund --loglevel=error
    echo "$want" > "$stamp"
  fi
fi

# The Bicep CLI (native, from NuGet) for scripts/bicep.sh and the deployment tests; no Azure CLI needed.
# (restored by build/bicep/BicepCli.csproj when missing, and given its run bit).
scripts/bicep.sh --print-cli >/dev/null

echo "setup: building (.NET, Release; the first build restores TorchSharp and libtorch, about 600 MB)"
dotnet build SplitFunctions.sln -c Release -nologo -clp:ErrorsOnly -v:q
