#!/usr/bin/env bash
# Compiles and lints the Azure templates with the real Bicep compiler, restored from NuGet by build/bicep/BicepCli.csproj.
#   bicep build        infra-bicep/main.bicep (with every module)  -> artifacts/bicep/main.json
#   bicep build-params infra-bicep/main.bicepparam                 -> artifacts/bicep/main.parameters.json
#   bicep lint         every .bicep file, rules from infra-bicep/bicepconfig.json
# Any warning fails, as an error does: the script stops at the first step that prints one, with a one-line reason
# (the compiler's own lines are in artifacts/bicep/<step>.log and printed above it).
# Prints the CLI's path with --print-cli (the deployment tests find it the same way).
set -euo pipefail
cd "$(dirname "$0")/.."

version=0.49.2   # the PackageDownload version in build/bicep/BicepCli.csproj
fail() { echo "bicep: FAILED: $*" >&2; exit 1; }

grep -q "Version=\"\[$version\]\"" build/bicep/BicepCli.csproj \
  || fail "build/bicep/BicepCli.csproj does not download Bicep $version (keep the two in step)"

# NuGet's global packages folder: NUGET_PACKAGES if set, otherwise what NuGet itself reports.
packages=${NUGET_PACKAGES:-}
if [ -z "$packages" ]; then
  packages=$(dotnet nuget locals global-packages --list | sed -n 's/^global-packages: *//p')
fi
[ -n "$packages" ] || fail "could not find NuGet's global packages folder (dotnet nuget locals global-packages --list)"
cli="${packages%/}/azure.bicep.commandline.linux-x64/$version/tools/bicep"

if [ ! -f "$cli" ]; then
  echo "bicep: restoring the Bicep CLI $version (build/bicep/BicepCli.csproj)"
  dotnet restore build/bicep/BicepCli.csproj -nologo -v:q >/dev/null || fail "dotnet restore build/bicep/BicepCli.csproj failed"
  [ -f "$cli" ] || fail "the restore did not produce $cli"
fi
[ -x "$cli" ] || chmod +x "$cli"   # NuGet extracts files without their run bit

if [ "${1:-}" = "--print-cli" ]; then echo "$cli"; exit 0; fi

out=artifacts/bicep
mkdir -p "$out"
# The parameter file reads these at compile time; the checked build uses the file's defaults.
unset SPLITFN_NAME_PREFIX SPLITFN_DEPLOY_SERVER SPLITFN_IMAGE_TAG

# run <step> <command...>: runs the CLI, keeps its diagnostics in $out/<step>.log, fails on any error or warning.
run() {
  local step=$1; shift
  local rc=0
  "$cli" "$@" >"$out/$step.out" 2>"$out/$step.log" || rc=$?
  cat "$out/$step.log" >&2
  local warnings errors
  warnings=$(grep -c ' : Warning ' "$out/$step.log" || true)
  errors=$(grep -c ' : Error ' "$out/$step.log" || true)
  if [ "$rc" != 0 ] || [ "$warnings" != 0 ] || [ "$errors" != 0 ]; then
    fail "bicep $step: exit code $rc, $errors error(s), $warnings warning(s) (first: $(grep -m1 -E ' : (Warning|Error) ' "$out/$step.log" | sed 's#^.*/infra-bicep/#infra-bicep/#'))"
  fi
}

run build build infra-bicep/main.bicep --outfile "$out/main.json"
run build-params build-params infra-bicep/main.bicepparam --outfile "$out/main.parameters.json"
run lint lint --pattern 'infra-bicep/**/*.bicep'
rm -f "$out"/*.out
echo "bicep: $("$cli" --version | head -1): main.bicep, every module and main.bicepparam compile and lint without warnings ($out/)"
