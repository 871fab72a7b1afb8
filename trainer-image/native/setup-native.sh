#!/usr/bin/env bash
# Builds @tensorflow/tfjs-node's native binding against TensorFlow's own library, taken from a TensorFlow wheel
# on PyPI, because tfjs-node's install step downloads libtensorflow and a prebuilt addon from a host these
# machines cannot reach. Everything heavy lands in a cache outside the repo, keyed by version; this checkout
# only gets a small link (node_modules/.cache/captionrun/tfjs-node) whose `require('@tensorflow/tfjs')`
# resolves to the checkout's own copy, so one tfjs engine serves both.
# The trainer of this checkout then prefers it to wasm (see native/tfjs-node.ts); CAPTIONRUN_BACKEND=wasm opts out.
#
# Why TensorFlow 2.21.0: the newest release on PyPI, and the one the GPU trainer image links (its CUDA 12 wheel
# has kernels for Hopper), so CPU and GPU runs execute the same TensorFlow; tfjs-node 4.22.0 was written against
# libtensorflow 2.9.1, but the C API it calls is stable and every function it needs is still exported
# (checked below), and the numerics test passes on it (trainer-image/native/README.md).
#
# Usage: bash trainer-image/native/setup-native.sh   (re-running reuses the cache; FORCE=1 rebuilds)
# CAPTIONRUN_CACHE moves the cache; CAPTIONRUN_TFJS_NODE_PATH=<the path it prints last> uses the build from
# another checkout.
# TF_PACKAGE=tensorflow takes the CUDA 12 build of the same version (with the CUDA libraries its `and-cuda`
# extra names) instead of tensorflow-cpu. TFJS_NODE_DIR=<an installed tfjs-node or tfjs-node-gpu package>
# builds the addon inside that package, with a copy of the libraries beside it, instead of in the cache
# and linking it here: what the GPU trainer image does (trainer-image/Dockerfile).
set -euo pipefail

TFJS_NODE_VERSION=4.22.0
TF_VERSION=2.21.0
TF_PACKAGE=${TF_PACKAGE:-tensorflow-cpu}
# The cp311 wheels: the libraries are the same for every Python version and are never imported.
case "$TF_PACKAGE" in
  tensorflow-cpu)
    WHEEL=tensorflow_cpu-2.21.0-cp311-cp311-manylinux_2_27_x86_64.whl
    WHEEL_SHA256=2b847d217b02ee7731ed91431daf3250daa0196c3c94614d23be27232e6e5b6c
    CUDA_WHEELS=() ;;
  tensorflow)
    WHEEL=tensorflow-2.21.0-cp311-cp311-manylinux_2_27_x86_64.whl
    WHEEL_SHA256=9056fbc9ba04235810b71ae6cbd958a196e8804fb53bbcffbf3e23b56155f124
    # The lowest versions tensorflow[and-cuda]==2.21.0 accepts (its METADATA): CUDA 12.5 and cuDNN 9.3, the
    # configuration TensorFlow builds and tests with. Not nvidia-cuda-nvcc-cu12: only XLA uses its ptxas, and
    # tfjs runs eager ops.
    CUDA_WHEELS=(
      "nvidia-cublas-cu12==12.5.3.2 --hash=sha256:ca070ad70e9fa6654084575d01bd001f30cc4665e33d4bb9fc8e0f321caa034b"
      "nvidia-cuda-cupti-cu12==12.5.82 --hash=sha256:bde77a5feb66752ec61db2adfe47f56b941842825b4c7e2068aff27c9d107953"
      "nvidia-cuda-nvrtc-cu12==12.5.82 --hash=sha256:3dbd97b0104b4bfbc3c4f8c79cd2496307c89c43c29a9f83125f1d76296ff3fd"
      "nvidia-cuda-runtime-cu12==12.5.82 --hash=sha256:3e79a060e126df40fd3a068f3f787eb000fa51b251ec6cd97d09579632687115"
      "nvidia-cudnn-cu12==9.3.0.75 --hash=sha256:9ad9c6929ebb5295eb4a1728024666d1c88283373e265a0c5c883e6f9d5cd76d"
      "nvidia-cufft-cu12==11.2.3.61 --hash=sha256:9a6e8df162585750f61983a638104a48c756aa13f9f48e19ab079b38e3c828b8"
      "nvidia-curand-cu12==10.3.6.82 --hash=sha256:2823fb27de4e44dbb22394a6adf53aa6e1b013aca0f8c22867d1cfae58405536"
      "nvidia-cusolver-cu12==11.6.3.83 --hash=sha256:93cfafacde4428b71778eeb092ec615a02a3d05404da1bcf91c53e3fa1bce42b"
      "nvidia-cusparse-cu12==12.5.1.3 --hash=sha256:016df8e993c437e8301e62739f01775cba988fd5253cd4c64173f8e8d2f8e752"
      "nvidia-nccl-cu12==2.27.7 --hash=sha256:de5ba5562f08029a19cb1cd659404b18411ed0d6c90ac5f52f30bf99ad5809aa"
      "nvidia-nvjitlink-cu12==12.5.82 --hash=sha256:f9b37bc5c8cf7509665cb6ada5aaa0ce65618f2332b7d3e78e9790511f111212"
    ) ;;
  *) echo "setup-native: TF_PACKAGE must be tensorflow-cpu or tensorflow, not $TF_PACKAGE" >&2; exit 2 ;;
esac
# tfjs-node and tfjs-node-gpu are the same sources under two names; the trainer asks for the GPU one by name.
TFJS_PACKAGE=@tensorflow/tfjs-node$([ "$TF_PACKAGE" = tensorflow ] && echo -gpu || true)
NAPI_VERSION=8

repo=$(cd "$(dirname "$0")/../.." && pwd)
say() { echo "setup-native: $*" >&2; }
die() { say "error: $*"; exit 1; }

[ "$(uname -s)-$(uname -m)" = Linux-x86_64 ] || die "only linux x86_64 is supported (the wheels are manylinux x86_64)"
for tool in node npm python3 gcc g++ make nm tar; do
  command -v "$tool" >/dev/null || die "$tool is required (apt-get install build-essential python3-pip; Node 24: hack/install-node.sh)"
done
nodedir=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")
# node-gyp would otherwise download Node's headers, which fails offline.
[ -f "$nodedir/include/node/node_api.h" ] || die "Node headers not found under $nodedir/include/node"
node_gyp=${npm_config_node_gyp:-$(dirname "$(readlink -f "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js}
[ -f "$node_gyp" ] || die "node-gyp not found (looked for npm's bundled copy at $node_gyp)"
# The addon is built against this Node's headers, so its build is cached per ABI: a Node 20 build is never
# reused under Node 24.
node_abi=$(node -p process.versions.modules)

cache=${CAPTIONRUN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/captionrun}/tfjs-node-$TFJS_NODE_VERSION
tf="$cache/$TF_PACKAGE-$TF_VERSION"
if [ -n "${TFJS_NODE_DIR:-}" ]; then
  pkg=$(cd "$TFJS_NODE_DIR" && pwd)
  [ "$(node -p "require('$pkg/package.json').name + '@' + require('$pkg/package.json').version")" = "$TFJS_PACKAGE@$TFJS_NODE_VERSION" ] ||
    die "TFJS_NODE_DIR=$TFJS_NODE_DIR is not $TFJS_PACKAGE@$TFJS_NODE_VERSION"
  link=$pkg
else
  pkg="$cache/node-abi$node_abi-$TF_PACKAGE-$TF_VERSION/node_modules/$TFJS_PACKAGE"
  link="$repo/node_modules/.cache/captionrun/tfjs-node"
  repo_tfjs=$(node -p "require('$repo/node_modules/@tensorflow/tfjs/package.json').version" 2>/dev/null) ||
    die "run npm ci in $repo first: the link resolves @tensorflow/tfjs from this checkout"
  [ "$repo_tfjs" = "$TFJS_NODE_VERSION" ] ||
    die "this checkout has @tensorflow/tfjs $repo_tfjs but tfjs-node $TFJS_NODE_VERSION needs $TFJS_NODE_VERSION"
fi
addon="$pkg/lib/napi-v$NAPI_VERSION/tfjs_binding.node"

# FORCE=1 rebuilds everything but keeps the downloaded wheels.
if [ "${FORCE:-0}" = 1 ] && [ -d "$cache" ]; then find "$cache" -mindepth 1 -maxdepth 1 ! -name wheels -exec rm -rf {} +; fi
mkdir -p "$cache"

# 1. TensorFlow's libraries and C API headers from the pinned wheel (pip verifies the hash), and for the CUDA
# build the CUDA libraries, laid out as pip would install them (nvidia/<name>/lib beside lib/): the wheel's
# libraries find them there through their own RUNPATH ($ORIGIN/../nvidia/...), without LD_LIBRARY_PATH.
if [ ! -f "$tf/.complete" ]; then
  wheels="$cache/wheels"
  mkdir -p "$wheels"
  printf '%s\n' "$TF_PACKAGE==$TF_VERSION --hash=sha256:$WHEEL_SHA256" "${CUDA_WHEELS[@]}" >"$tf.requirements.txt"
  say "downloading $WHEEL$([ ${#CUDA_WHEELS[@]} -gt 0 ] && echo " and ${#CUDA_WHEELS[@]} CUDA wheels" || true) (pip keeps what it has)"
  python3 -m pip download --quiet --disable-pip-version-check --no-deps --require-hashes --only-binary=:all: \
    --python-version 3.11 --platform manylinux_2_27_x86_64 --platform manylinux2014_x86_64 -r "$tf.requirements.txt" -d "$wheels"
  say "extracting the libraries"
  rm -rf "$tf" && mkdir -p "$tf/lib" "$tf/include"
  python3 - "$wheels" "$tf" "$wheels/$WHEEL" "${CUDA_WHEELS[@]%% *}" <<'PY'
import glob, os, shutil, sys, zipfile
wheels, out, tf_wheel, cuda = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
libs = {"tensorflow/libtensorflow_framework.so.2", "tensorflow/libtensorflow_cc.so.2"}
headers = ("tensorflow/c/", "tensorflow/core/platform/", "tsl/platform/", "xla/tsl/c/")
def extract(z, name, dest):
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    with z.open(name) as src, open(dest, "wb") as dst:
        shutil.copyfileobj(src, dst)
with zipfile.ZipFile(tf_wheel) as z:
    for name in z.namelist():
        if name.endswith("/"):
            continue
        if name in libs:
            extract(z, name, f"{out}/lib/{name.rsplit('/', 1)[1]}")
        elif name.startswith("tensorflow/include/") and name[len("tensorflow/include/"):].startswith(headers):
            extract(z, name, f"{out}/include/{name[len('tensorflow/include/'):]}")
for requirement in cuda:
    project, version = requirement.split("==")
    (path,) = glob.glob(f"{wheels}/{project.replace('-', '_')}-{version}-*.whl")
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            if name.startswith("nvidia/") and "/lib/" in name and ".so" in name:
                extract(z, name, f"{out}/{name}")
PY
  find "$tf" -name '*.so*' -exec chmod 755 {} +
  # binding.gyp links -ltensorflow -ltensorflow_framework; the C API lives in libtensorflow_cc.so.2 (its soname
  # is what the addon records).
  ln -sf libtensorflow_cc.so.2 "$tf/lib/libtensorflow.so"
  ln -sf libtensorflow_framework.so.2 "$tf/lib/libtensorflow_framework.so"

  say "checking that the library exports every TF_/TFE_ function the binding calls"
  npm pack --silent "@tensorflow/tfjs-node@$TFJS_NODE_VERSION" --pack-destination "$cache" >/dev/null
  rm -rf "$cache/src" && mkdir -p "$cache/src" && tar -xzf "$cache/tensorflow-tfjs-node-$TFJS_NODE_VERSION.tgz" -C "$cache/src"
  # TF_TString_* are inline functions in the headers, not library exports.
  grep -ohE '\bTFE?_[A-Za-z0-9_]+\(' "$cache"/src/package/binding/*.cc "$cache"/src/package/binding/*.h |
    tr -d '(' | grep -vE '^(TF_AutoStatus|TF_AutoTensor|TFE_AutoOp|TF_TString_)' | sort -u >"$cache/needed-symbols.txt"
  nm -D --defined-only "$tf"/lib/libtensorflow_cc.so.2 "$tf"/lib/libtensorflow_framework.so.2 |
    awk '{print $3}' | sed 's/@.*//' | sort -u >"$tf.exported-symbols.txt"
  missing=$(comm -23 "$cache/needed-symbols.txt" "$tf.exported-symbols.txt")
  [ -z "$missing" ] || die "TensorFlow $TF_VERSION does not export: $missing"
  touch "$tf/.complete"
fi

# 2. tfjs-node's JavaScript and its runtime dependencies, without its install script (the download).
if [ ! -f "$pkg/package.json" ]; then
  say "installing $TFJS_PACKAGE@$TFJS_NODE_VERSION into ${pkg%/node_modules/*} (--ignore-scripts)"
  mkdir -p "${pkg%/node_modules/*}"
  echo '{"private": true}' >"${pkg%/node_modules/*}/package.json"
  npm install --prefix "${pkg%/node_modules/*}" --ignore-scripts --no-audit --no-fund --save-exact "$TFJS_PACKAGE@$TFJS_NODE_VERSION" >&2
fi

# tfjs-node 4.22.0 calls util.isNullOrUndefined and util.isArray, which Node 23 removed; the fix
# (tensorflow/tfjs#8425) is merged but in no release, so its replacements are applied here (idempotent).
sed -i -e 's/(0, util_1\.isNullOrUndefined)(/((value) => value == null)(/g' -e 's/(0, util_1\.isArray)(/Array.isArray(/g' \
  "$pkg/dist/nodejs_kernel_backend.js" "$pkg/dist/kernels/TopK.js"
! grep -rlE 'util_1\.is[A-Z]' "$pkg/dist" --include='*.js' --exclude='*_test.js' || die "tfjs-node still calls a removed util.is* function"

# 3. The addon, from the sources in the npm package, against the wheel's library (binding.gyp reads deps/, and
# the addon finds its libraries at run time through an rpath to deps/lib). In the cache deps/ is a link to the
# libraries; inside an installed package (TFJS_NODE_DIR) it is a copy, so that the package stands alone.
if [ ! -f "$addon" ]; then
  say "building tfjs_binding.node for Node ABI $node_abi (node-gyp, one job)"
  rm -rf "$pkg/deps" "$pkg/build" "$pkg/lib"
  if [ -n "${TFJS_NODE_DIR:-}" ]; then cp -a "$tf" "$pkg/deps"; else ln -s "$tf" "$pkg/deps"; fi
  (cd "$pkg" && JOBS=1 node "$node_gyp" rebuild --nodedir="$nodedir" --jobs=1 --module_name=tfjs_binding \
    --module_path="$pkg/lib/napi-v$NAPI_VERSION" --napi_build_version="$NAPI_VERSION" >"$cache/node-gyp.log" 2>&1) ||
    die "node-gyp failed; see $cache/node-gyp.log"
  rm -rf "$pkg/build"
fi

# 4. The link into this checkout: a real copy of the package's JavaScript (so that its realpath, from which
# Node resolves @tensorflow/tfjs, lies inside this checkout's node_modules) and symlinks for the rest.
if [ -z "${TFJS_NODE_DIR:-}" ]; then
  say "linking the build into $link"
  rm -rf "$link" && mkdir -p "$link/node_modules"
  cp -r "$pkg/package.json" "$pkg/dist" "$link/"
  ln -s "$pkg/lib" "$link/lib"
  ln -s "$pkg/deps" "$link/deps"
  for dep in "${pkg%/@tensorflow/*}"/*; do
    case "$(basename "$dep")" in @tensorflow | .bin | .package-lock.json) continue ;; esac
    ln -s "$dep" "$link/node_modules/$(basename "$dep")"
  done
fi

say "smoke test"
TF_CPP_MIN_LOG_LEVEL=2 node -e "
  const tf = require('$link');
  const version = tf.backend().binding.TF_Version;
  const sum = tf.matMul(tf.ones([64, 64]), tf.ones([64, 64])).sum().dataSync()[0];
  if (tf.getBackend() !== 'tensorflow' || sum !== 64 * 64 * 64) throw new Error('native backend gave ' + sum);
  if (version !== '$TF_VERSION') throw new Error('the addon runs on TensorFlow ' + version + ', not $TF_VERSION');
  if (!'${TFJS_NODE_DIR:-}' && require.resolve('@tensorflow/tfjs', { paths: ['$link/dist'] }) !== require.resolve('$repo/node_modules/@tensorflow/tfjs'))
    throw new Error('the link does not share this checkout\'s @tensorflow/tfjs');
  console.error('setup-native: ok: $TFJS_PACKAGE ' + tf.version['tfjs-node'] + ' on TensorFlow ' + version + ', Node ' + process.version);
"
say "the build is at $link"
echo "$link"
