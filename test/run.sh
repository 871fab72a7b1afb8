#!/usr/bin/env bash
# Runs one tier of tests (unit, integration, e2e) or all of them with node's built-in runner.
# Integration and e2e tests start the real test cluster themselves (test/env); they need its binaries,
# which test/env/build-binaries.sh builds once into a cache outside the repo.
set -euo pipefail
cd "$(dirname "$0")/.."
tier=${1:-all}
case "$tier" in
  unit) dirs=(test/unit) ;;
  integration) dirs=(test/integration) ;;
  e2e) dirs=(test/e2e) ;;
  all) dirs=(test/unit test/integration test/e2e) ;;
  *) echo "usage: test/run.sh unit|integration|e2e|all" >&2; exit 2 ;;
esac
# The pinned kubectl, helm and friends come first, so tests drive the cluster with the release they test.
PATH="$(bash test/env/build-binaries.sh):$PATH"
export PATH
shopt -s nullglob globstar
files=()
for d in "${dirs[@]}"; do files+=("$d"/**/*.test.ts); done
if [ ${#files[@]} -eq 0 ]; then echo "no test files in ${dirs[*]}" >&2; exit 1; fi
if [ "$tier" = all ] || [ "$tier" = unit ]; then
  # Static checks first: a type error or a drifted CRD fails fast, before any cluster starts.
  npx tsc -p tsconfig.json --noEmit
  npx eslint .
  npx tsx hack/generate.ts --check
fi
# One file at a time: the integration files share one machine's ports and CPUs.
exec node --import tsx --test --test-concurrency=1 --test-reporter=spec "${files[@]}"
