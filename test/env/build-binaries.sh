#!/usr/bin/env bash
# Builds the test cluster's upstream binaries from pinned releases with Go through the module proxy,
# into a cache outside the repo keyed by version. A second run finds them and does nothing.
# Prints the cache's bin directory on stdout (everything else goes to stderr).
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.32.9}
ETCD_VERSION=${ETCD_VERSION:-v3.5.17}
# v1.32.9: the newest 1.32 patch whose staging modules the proxy serves in full (v1.32.13 lacks endpointslice).
# MinIO tags are not semver, so the proxy serves it only as a pseudo-version (a 2026-02 commit).
MINIO_VERSION=${MINIO_VERSION:-v0.0.0-20260212201848-7aac2a2c5b7c}
CACHE=${CAPTIONRUN_CACHE:-$HOME/.cache/captionrun}
BIN="$CACHE/bin/k8s-$K8S_VERSION-etcd-$ETCD_VERSION-minio-${MINIO_VERSION##*-}"
export GOFLAGS="-mod=mod -trimpath" CGO_ENABLED=0

log() { echo "build-binaries: $*" >&2; }

need() { for b in "$@"; do [ -x "$BIN/$b" ] || return 0; done; return 1; }

mkdir -p "$BIN"
start=$(date +%s)

if need kube-apiserver kube-controller-manager kube-scheduler; then
  log "building Kubernetes $K8S_VERSION (first time only; about 15-25 minutes on 2 cores)"
  work=$(mktemp -d)
  minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
  staging="v0.${K8S_VERSION#v1.}"
  {
    echo "module captionrun.dev/testcluster"
    echo "go 1.23"
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo "replace ("
    # Every staging module k8s.io/kubernetes replaces with a local path gets its published version instead.
    curl -fsS "$(go env GOPROXY | cut -d, -f1)/k8s.io/kubernetes/@v/$K8S_VERSION.mod" \
      | sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#\1#p' \
      | while read -r m; do echo "  $m => $m $staging"; done
    echo ")"
  } > "$work/go.mod"
  pkg=k8s.io/component-base/version
  ldflags="-s -w -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
  (cd "$work" && go build -ldflags "$ldflags" -o "$BIN/" \
      k8s.io/kubernetes/cmd/kube-apiserver \
      k8s.io/kubernetes/cmd/kube-controller-manager \
      k8s.io/kubernetes/cmd/kube-scheduler) >&2
  rm -rf "$work"
fi

if need etcd; then
  log "building etcd $ETCD_VERSION"
  work=$(mktemp -d)
  printf 'module captionrun.dev/etcd\ngo 1.23\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION" > "$work/go.mod"
  (cd "$work" && go build -ldflags "-s -w" -o "$BIN/etcd" go.etcd.io/etcd/server/v3) >&2
  rm -rf "$work"
fi

if need minio; then
  log "building MinIO $MINIO_VERSION"
  work=$(mktemp -d)
  printf 'module captionrun.dev/minio\ngo 1.24\nrequire github.com/minio/minio %s\n' "$MINIO_VERSION" > "$work/go.mod"
  (cd "$work" && go build -ldflags "-s -w" -o "$BIN/minio" github.com/minio/minio) >&2
  rm -rf "$work"
fi

log "binaries ready in $BIN ($(( $(date +%s) - start )) s)"
echo "$BIN"
