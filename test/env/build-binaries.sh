#!/usr/bin/env bash
# Builds the test cluster's upstream binaries from pinned releases with Go through the module proxy, each into
# a cache directory outside the repo keyed by its own version; a second run finds them and builds nothing.
# Prints one directory holding links to all of them on stdout (everything else goes to stderr).
set -euo pipefail

# v1.32.9: the newest 1.32 patch whose staging modules the proxy serves in full (v1.32.13 lacks endpointslice);
# kubectl is built from the same release.
K8S_VERSION=${K8S_VERSION:-v1.32.9}
ETCD_VERSION=${ETCD_VERSION:-v3.5.17}
# MinIO tags are not semver, so the proxy serves it only as a pseudo-version (a 2026-02 commit).
MINIO_VERSION=${MINIO_VERSION:-v0.0.0-20260212201848-7aac2a2c5b7c}
# Helm 3.17 is the release line that supports Kubernetes 1.32.
HELM_VERSION=${HELM_VERSION:-v3.17.4}
# The Prometheus operator's CRDs (ServiceMonitor, PrometheusRule), so the chart's optional monitoring objects
# are checked by the apiserver against their real schemas; the module ships them as YAML.
PROMETHEUS_OPERATOR_VERSION=${PROMETHEUS_OPERATOR_VERSION:-v0.79.2}
CACHE=${CAPTIONRUN_CACHE:-$HOME/.cache/captionrun}
export GOFLAGS="-mod=mod -trimpath" CGO_ENABLED=0

log() { echo "build-binaries: $*" >&2; }

# build NAME VERSION MODULE_REQUIREMENT LDFLAGS PACKAGE... : go build into $CACHE/tools/NAME-VERSION unless there.
build() {
  local name=$1 version=$2 gomod=$3 ldflags=$4; shift 4
  local dir="$CACHE/tools/$name-$version"
  if [ -f "$dir/.complete" ]; then echo "$dir"; return; fi
  log "building $name $version (first time only)"
  local start work
  start=$(date +%s)
  work=$(mktemp -d)
  printf '%s\n' "$gomod" > "$work/go.mod"
  mkdir -p "$dir"
  # One package is named after the tool (go would name etcd's server "server"); several keep their own names.
  local out="$dir/"
  if [ $# -eq 1 ]; then out="$dir/$name"; fi
  (cd "$work" && go build -ldflags "$ldflags" -o "$out" "$@") >&2
  rm -rf "$work"
  touch "$dir/.complete"
  log "built $name $version in $(( $(date +%s) - start )) s"
  echo "$dir"
}

k8s_mod() {
  local staging="v0.${K8S_VERSION#v1.}"
  echo "module captionrun.dev/testcluster"
  echo "go 1.23"
  echo "require k8s.io/kubernetes $K8S_VERSION"
  echo "replace ("
  # Every staging module k8s.io/kubernetes replaces with a local path gets its published version instead.
  curl -fsS "$(go env GOPROXY | cut -d, -f1)/k8s.io/kubernetes/@v/$K8S_VERSION.mod" \
    | sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#\1#p' \
    | while read -r m; do echo "  $m => $m $staging"; done
  echo ")"
}

minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
kv=k8s.io/component-base/version
dirs=(
  "$(build kubernetes "$K8S_VERSION" "$(if [ -f "$CACHE/tools/kubernetes-$K8S_VERSION/.complete" ]; then echo; else k8s_mod; fi)" \
      "-s -w -X $kv.gitVersion=$K8S_VERSION -X $kv.gitMajor=1 -X $kv.gitMinor=$minor -X $kv.gitTreeState=clean" \
      k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler)"
  # kubectl from the same release: the one tests and users drive the cluster with, within skew by construction.
  "$(build kubectl "$K8S_VERSION" "$(if [ -f "$CACHE/tools/kubectl-$K8S_VERSION/.complete" ]; then echo; else k8s_mod; fi)" \
      "-s -w -X $kv.gitVersion=$K8S_VERSION -X $kv.gitMajor=1 -X $kv.gitMinor=$minor -X $kv.gitTreeState=clean -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION" \
      k8s.io/kubernetes/cmd/kubectl)"
  "$(build etcd "$ETCD_VERSION" "$(printf 'module captionrun.dev/etcd\ngo 1.23\nrequire go.etcd.io/etcd/server/v3 %s' "$ETCD_VERSION")" \
      "-s -w" go.etcd.io/etcd/server/v3)"
  "$(build minio "$MINIO_VERSION" "$(printf 'module captionrun.dev/minio\ngo 1.24\nrequire github.com/minio/minio %s' "$MINIO_VERSION")" \
      "-s -w" github.com/minio/minio)"
  "$(build helm "$HELM_VERSION" "$(printf 'module captionrun.dev/helm\ngo 1.23\nrequire helm.sh/helm/v3 %s' "$HELM_VERSION")" \
      "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" helm.sh/helm/v3/cmd/helm)"
)

monitoring_crds() {
  local dir="$CACHE/tools/prometheus-operator-crds-$PROMETHEUS_OPERATOR_VERSION" kind missing=
  local kinds=(servicemonitors podmonitors prometheusrules)
  for kind in "${kinds[@]}"; do
    [ -f "$dir/monitoring.coreos.com_$kind.yaml" ] || missing=yes
  done
  if [ -n "$missing" ]; then
    log "fetching the Prometheus operator CRDs $PROMETHEUS_OPERATOR_VERSION"
    local work src
    work=$(mktemp -d)
    printf 'module captionrun.dev/crds\ngo 1.23\n' > "$work/go.mod"
    src=$(cd "$work" && go mod download -json "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION" \
      | sed -n 's/^\s*"Dir": "\(.*\)",$/\1/p')
    rm -rf "$work"
    mkdir -p "$dir"
    for kind in "${kinds[@]}"; do cp "$src/example/prometheus-operator-crd/monitoring.coreos.com_$kind.yaml" "$dir/"; done
    chmod 644 "$dir"/*.yaml
  fi
  echo "$dir"
}
dirs+=("$(monitoring_crds)")

# One directory of links, named by every version in it, is what the harness puts first on PATH.
BIN="$CACHE/bin/k8s-$K8S_VERSION-etcd-$ETCD_VERSION-minio-${MINIO_VERSION##*-}-helm-$HELM_VERSION-promop-$PROMETHEUS_OPERATOR_VERSION"
mkdir -p "$BIN"
for d in "${dirs[@]}"; do
  for f in "$d"/*; do ln -sfn "$f" "$BIN/$(basename "$f")"; done
done
echo "$BIN"
