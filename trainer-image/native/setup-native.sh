#!/usr/bin/env bash
# Builds @tensorflow/tfjs-node's native binding against TensorFlow's own CPU library, taken from the
# tensorflow-cpu wheel on PyPI, because tfjs-node's install step downloads libtensorflow and a prebuilt addon
# from a host these machines cannot reach. Everything heavy lands in a cache outside the repo, keyed by
# version; this checkout only gets a small link (node_modules/.cache/captionrun/tfjs-node) whose
# `require('@tensorflow/tfjs')` resolves to the checkout's own copy, so one tfjs engine serves both.
# The trainer of this checkout then prefers it to wasm (see native/tfjs-node.ts); CAPTIONRUN_BACKEND=wasm opts out.
#
# Why TensorFlow 2.9.1: it is the libtensorflow that tfjs-node 4.22.0 was written and tested against.
# Its wheel (cp310 only; we never import it in Python) exports the C and eager C APIs from
# _pywrap_tensorflow_internal.so, which also references the Python C API; a generated stub library
# supplies those symbols so the library loads in Node, where nothing calls them.
#
# Usage: bash trainer-image/native/setup-native.sh   (re-running reuses the cache; FORCE=1 rebuilds)
# CAPTIONRUN_CACHE moves the cache; CAPTIONRUN_TFJS_NODE_PATH=<the path it prints last> uses the build from
# another checkout.
set -euo pipefail

TFJS_NODE_VERSION=4.22.0
TF_VERSION=2.9.1
WHEEL=tensorflow_cpu-2.9.1-cp310-cp310-manylinux_2_17_x86_64.manylinux2014_x86_64.whl
WHEEL_SHA256=6666ddeae45e1f41da788cb4bdea3435aba16edb0bc17b7ac00631c7c9eb052e
NAPI_VERSION=8

repo=$(cd "$(dirname "$0")/../.." && pwd)
cache=${CAPTIONRUN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/captionrun}/tfjs-node-$TFJS_NODE_VERSION
tf="$cache/tensorflow-$TF_VERSION"
pkg="$cache/npm/node_modules/@tensorflow/tfjs-node"
addon="$pkg/lib/napi-v$NAPI_VERSION/tfjs_binding.node"
link="$repo/node_modules/.cache/captionrun/tfjs-node"
say() { echo "setup-native: $*" >&2; }
die() { say "error: $*"; exit 1; }

[ "$(uname -s)-$(uname -m)" = Linux-x86_64 ] || die "only linux x86_64 is supported (the wheel is manylinux2014_x86_64)"
for tool in node npm python3 gcc g++ make readelf nm tar; do
  command -v "$tool" >/dev/null || die "$tool is required (apt-get install build-essential python3-pip nodejs npm)"
done
nodedir=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")
# node-gyp would otherwise download Node's headers, which fails offline.
[ -f "$nodedir/include/node/node_api.h" ] || die "Node headers not found under $nodedir/include/node"
node_gyp=${npm_config_node_gyp:-$(dirname "$(readlink -f "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js}
[ -f "$node_gyp" ] || die "node-gyp not found (looked for npm's bundled copy at $node_gyp)"
repo_tfjs=$(node -p "require('$repo/node_modules/@tensorflow/tfjs/package.json').version" 2>/dev/null) ||
  die "run npm ci in $repo first: the link resolves @tensorflow/tfjs from this checkout"
[ "$repo_tfjs" = "$TFJS_NODE_VERSION" ] ||
  die "this checkout has @tensorflow/tfjs $repo_tfjs but tfjs-node $TFJS_NODE_VERSION needs $TFJS_NODE_VERSION"

# FORCE=1 rebuilds everything but keeps the downloaded wheel.
if [ "${FORCE:-0}" = 1 ] && [ -d "$cache" ]; then find "$cache" -mindepth 1 -maxdepth 1 ! -name wheel -exec rm -rf {} +; fi
mkdir -p "$cache"

# 1. TensorFlow's libraries and C API headers, from the pinned wheel (pip verifies the hash).
if [ ! -f "$tf/lib/.complete" ]; then
  if [ ! -f "$cache/wheel/$WHEEL" ]; then
    say "downloading $WHEEL (about 210 MB)"
    echo "tensorflow-cpu==$TF_VERSION --hash=sha256:$WHEEL_SHA256" >"$cache/wheel.txt"
    python3 -m pip download --quiet --no-deps --require-hashes --only-binary=:all: \
      --python-version 3.10 --platform manylinux2014_x86_64 -r "$cache/wheel.txt" -d "$cache/wheel"
  fi
  say "extracting libtensorflow from the wheel"
  rm -rf "$tf" && mkdir -p "$tf/lib" "$tf/include"
  python3 - "$cache/wheel/$WHEEL" "$tf" <<'PY'
import pathlib, shutil, sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
libs = {"tensorflow/libtensorflow_framework.so.2", "tensorflow/python/_pywrap_tensorflow_internal.so"}
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name.endswith("/"):
            continue
        if name in libs:
            dest = f"{out}/lib/{name.rsplit('/', 1)[1]}"
        elif name.startswith(("tensorflow/include/tensorflow/c/", "tensorflow/include/tensorflow/core/platform/")):
            dest = f"{out}/include/{name[len('tensorflow/include/'):]}"
        else:
            continue
        pathlib.Path(dest).parent.mkdir(parents=True, exist_ok=True)
        with z.open(name) as src, open(dest, "wb") as dst:
            shutil.copyfileobj(src, dst)
PY
  chmod 755 "$tf"/lib/*.so*
  # The binding links -ltensorflow -ltensorflow_framework; the C API lives in _pywrap_tensorflow_internal.so
  # (its soname is what the addon records, so the file keeps its name).
  ln -sf _pywrap_tensorflow_internal.so "$tf/lib/libtensorflow.so"
  ln -sf libtensorflow_framework.so.2 "$tf/lib/libtensorflow_framework.so"

  say "generating the Python C API stub"
  # Data symbols (type objects, exception pointers, None/True/False) must resolve when the library loads;
  # functions are bound lazily and abort with their name if TensorFlow ever calls one outside Python.
  {
    echo '#include <stdio.h>'
    echo '#include <stdlib.h>'
    echo 'static void die(const char *name) {'
    echo '  fprintf(stderr, "captionrun: TensorFlow called the Python C API (%s) outside Python\n", name);'
    echo '  abort();'
    echo '}'
    readelf -rW "$tf/lib/_pywrap_tensorflow_internal.so" | awk '$5 ~ /^_?Py[A-Za-z0-9_]*$/ {print $3, $5}' |
      sort -u -k2,2 | while read -r type name; do
        if [ "$type" = R_X86_64_GLOB_DAT ] && [[ "$name" =~ ^PyExc_|_Type$|Struct$ ]]; then
          echo "__attribute__((aligned(64))) char $name[1024];"
        else
          echo "void $name(void) { die(\"$name\"); }"
        fi
      done
  } >"$tf/lib/captionrun_pystub.c"
  gcc -O2 -shared -fPIC -Wl,-soname,libcaptionrun_pystub.so -o "$tf/lib/libcaptionrun_pystub.so" "$tf/lib/captionrun_pystub.c"

  say "checking that the library exports every TF_/TFE_ function the binding calls"
  npm pack --silent "@tensorflow/tfjs-node@$TFJS_NODE_VERSION" --pack-destination "$cache" >/dev/null
  rm -rf "$cache/src" && mkdir -p "$cache/src" && tar -xzf "$cache/tensorflow-tfjs-node-$TFJS_NODE_VERSION.tgz" -C "$cache/src"
  # TF_TString_* are inline functions in the headers, not library exports.
  grep -ohE '\bTFE?_[A-Za-z0-9_]+\(' "$cache"/src/package/binding/*.cc "$cache"/src/package/binding/*.h |
    tr -d '(' | grep -vE '^(TF_AutoStatus|TF_AutoTensor|TFE_AutoOp|TF_TString_)' | sort -u >"$cache/needed-symbols.txt"
  nm -D --defined-only "$tf"/lib/_pywrap_tensorflow_internal.so "$tf"/lib/libtensorflow_framework.so.2 |
    awk '{print $3}' | sed 's/@.*//' | sort -u >"$cache/exported-symbols.txt"
  missing=$(comm -23 "$cache/needed-symbols.txt" "$cache/exported-symbols.txt")
  [ -z "$missing" ] || die "TensorFlow $TF_VERSION does not export: $missing"
  touch "$tf/lib/.complete"
fi

# 2. tfjs-node's JavaScript and its runtime dependencies, without its install script (the download).
if [ ! -f "$pkg/package.json" ]; then
  say "installing @tensorflow/tfjs-node@$TFJS_NODE_VERSION into $cache/npm (--ignore-scripts)"
  mkdir -p "$cache/npm"
  echo '{"private": true}' >"$cache/npm/package.json"
  npm install --prefix "$cache/npm" --ignore-scripts --no-audit --no-fund --save-exact "@tensorflow/tfjs-node@$TFJS_NODE_VERSION" >&2
fi

# 3. The addon, from the sources in the npm package, against the wheel's library (binding.gyp reads deps/).
if [ ! -f "$addon" ]; then
  say "building tfjs_binding.node (node-gyp, one job)"
  rm -rf "$pkg/deps" "$pkg/build" "$pkg/lib"
  mkdir -p "$pkg/deps"
  ln -s "$tf/lib" "$pkg/deps/lib"
  ln -s "$tf/include" "$pkg/deps/include"
  # --no-as-needed keeps the stub first among the addon's needed libraries although the addon itself
  # uses none of its symbols.
  (cd "$pkg" && LDFLAGS="-Wl,--no-as-needed -L$tf/lib -lcaptionrun_pystub" JOBS=1 \
    node "$node_gyp" rebuild --nodedir="$nodedir" --jobs=1 --module_name=tfjs_binding \
    --module_path="$pkg/lib/napi-v$NAPI_VERSION" --napi_build_version="$NAPI_VERSION" >"$cache/node-gyp.log" 2>&1) ||
    die "node-gyp failed; see $cache/node-gyp.log"
fi

# 4. The link into this checkout: a real copy of the package's JavaScript (so that its realpath, from which
# Node resolves @tensorflow/tfjs, lies inside this checkout's node_modules) and symlinks for the rest.
say "linking the build into $link"
rm -rf "$link" && mkdir -p "$link/node_modules"
cp -r "$pkg/package.json" "$pkg/dist" "$link/"
ln -s "$pkg/lib" "$link/lib"
ln -s "$pkg/deps" "$link/deps"
for dep in "$cache"/npm/node_modules/*; do
  case "$(basename "$dep")" in @tensorflow | .bin | .package-lock.json) continue ;; esac
  ln -s "$dep" "$link/node_modules/$(basename "$dep")"
done

say "smoke test"
TF_CPP_MIN_LOG_LEVEL=2 node -e "
  const tf = require('$link');
  const version = tf.backend().binding.TF_Version;
  const sum = tf.matMul(tf.ones([64, 64]), tf.ones([64, 64])).sum().dataSync()[0];
  if (tf.getBackend() !== 'tensorflow' || sum !== 64 * 64 * 64) throw new Error('native backend gave ' + sum);
  if (require.resolve('@tensorflow/tfjs', { paths: ['$link/dist'] }) !== require.resolve('$repo/node_modules/@tensorflow/tfjs'))
    throw new Error('the link does not share this checkout\'s @tensorflow/tfjs');
  console.error('setup-native: ok: tfjs-node ' + tf.version['tfjs-node'] + ' on TensorFlow ' + version);
"
say "this checkout now trains on it (CAPTIONRUN_BACKEND=wasm opts out); the build is at $link"
echo "$link"
