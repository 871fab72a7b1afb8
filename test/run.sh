#!/usr/bin/env bash
# Runs one tier of tests (unit, integration, e2e, native) or all of them with node's built-in runner.
# Integration and e2e tests start the real test cluster themselves (test/env); they need its binaries,
# which test/env/build-binaries.sh builds once into a cache outside the repo.
# The model and trainer tests run on wasm, then once more on the native backend (tfjs-node built by
# trainer-image/native/setup-native.sh): the `native` tier. `all` skips that tier, saying so, when no native
# build exists, unless CAPTIONRUN_NATIVE_TESTS=required (as .ci/run sets it), which makes a missing build fail.
set -euo pipefail
cd "$(dirname "$0")/.."
tier=${1:-all}
case "$tier" in
  unit) dirs=(test/unit) ;;
  integration) dirs=(test/integration) ;;
  e2e) dirs=(test/e2e) ;;
  all) dirs=(test/unit test/integration test/e2e) ;;
  native) dirs=() ;;
  *) echo "usage: test/run.sh unit|integration|e2e|native|all" >&2; exit 2 ;;
esac
# The tests that run the TensorFlow.js model and trainer code: the ones worth repeating on each backend.
native_files=(
  test/unit/decoder-gradient-checkpointing.test.ts test/unit/decoder-search.test.ts test/unit/train-resume-state.test.ts
  test/unit/train-hyperparameters.test.ts test/unit/encoder-inception.test.ts test/unit/encoder-densenet.test.ts
  test/unit/encoder-efficientnet.test.ts
  test/integration/features-cache.test.ts test/integration/train-quality.test.ts test/integration/train-resume.test.ts
  test/integration/train-bad-input.test.ts test/unit/train-data-parallel.test.ts test/integration/train-data-parallel.test.ts
)
native_build=${CAPTIONRUN_TFJS_NODE_PATH:-$PWD/node_modules/.cache/captionrun/tfjs-node}
# The pinned kubectl, helm and friends come first, so tests drive the cluster with the release they test.
PATH="$(bash test/env/build-binaries.sh):$PATH"
export PATH
shopt -s nullglob globstar
files=()
for d in "${dirs[@]}"; do files+=("$d"/**/*.test.ts); done
if [ "$tier" != native ] && [ ${#files[@]} -eq 0 ]; then echo "no test files in ${dirs[*]}" >&2; exit 1; fi
if [ "$tier" = all ] || [ "$tier" = unit ]; then
  # Static checks first: a type error or a drifted CRD fails fast, before any cluster starts.
  npx tsc -p tsconfig.json --noEmit
  npx eslint .
  npx tsx hack/generate.ts --check
fi
# One file at a time: the integration files share one machine's ports and CPUs.
run_tests() { node --import tsx --test --test-concurrency=1 --test-reporter=spec "$@"; }
status=0
if [ ${#files[@]} -gt 0 ]; then
  # The first pass is on wasm, even where a native build would be picked first (trainers the tests start
  # inherit the choice; pods of the test cluster do not, so they take the fastest backend there is).
  CAPTIONRUN_BACKEND=wasm run_tests "${files[@]}" || status=$?
fi
if [ "$tier" = native ] || [ "$tier" = all ]; then
  if [ -f "$native_build/package.json" ]; then
    echo "native tier: the model and trainer tests again, on tfjs-node at $native_build"
    CAPTIONRUN_BACKEND=tensorflow CAPTIONRUN_TFJS_NODE_PATH=$native_build run_tests "${native_files[@]}" || status=$?
  elif [ "$tier" = native ] || [ "${CAPTIONRUN_NATIVE_TESTS:-}" = required ]; then
    echo "native tier: no native build at $native_build; build it with npm run setup:native" >&2
    status=1
  else
    echo "native tier skipped: no native build at $native_build (npm run setup:native builds one)"
  fi
fi
exit $status
