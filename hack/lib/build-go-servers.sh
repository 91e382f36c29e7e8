#!/usr/bin/env bash
# Usage: build-go-servers.sh kubernetes|etcd OUT [COMMAND...]
# Builds Kubernetes commands (default kube-apiserver, kube-controller-manager and
# kubectl; `hack/stack up --node` asks for kubelet and kube-scheduler too), or etcd,
# from the Go module proxy into OUT (a cache folder keyed by version).
#
# k8s.io/kubernetes cannot be `go install`ed: its go.mod replaces ~30 staging
# modules with ./staging paths. A throwaway wrapper module requires it and
# replaces each staging module with its published v0.N.P tag instead. etcd's
# server module has the same problem with its sibling modules.
set -euo pipefail
what=$1
out=$2
shift 2
commands=("$@")
[ ${#commands[@]} -gt 0 ] || commands=(kube-apiserver kube-controller-manager kubectl)
here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=/dev/null
. "$here/versions.env"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"
export CGO_ENABLED=0 GOFLAGS=-mod=mod

say() { printf '[stack] %s\n' "$*" >&2; }

# The go.mod file of a module version, from the module proxy.
upstream_go_mod() {
  (cd "$work" && go mod download -json "$1" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
}

build_kubernetes() {
  local minor=${KUBERNETES_VERSION#*.}; minor=${minor%%.*}
  local upstream_mod
  upstream_mod=$(upstream_go_mod "k8s.io/kubernetes@v$KUBERNETES_VERSION")
  mkdir -p "$work/kube" && cd "$work/kube"
  {
    echo "module infometis.local/kubebuild"
    echo "go $(sed -n 's/^go //p' "$upstream_mod")"
    echo "require k8s.io/kubernetes v$KUBERNETES_VERSION"
    sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#replace \1 => \1 v0.'"${KUBERNETES_VERSION#*.}"'#p' "$upstream_mod"
  } > go.mod
  say "resolving k8s.io/kubernetes v$KUBERNETES_VERSION ($(grep -c '^replace' go.mod) staging modules)"
  go get "k8s.io/kubernetes@v$KUBERNETES_VERSION" >/dev/null
  local pkg=k8s.io/component-base/version
  local ldflags="-s -w -X $pkg.gitVersion=v$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
  local cmd
  for cmd in "${commands[@]}"; do
    say "building $cmd v$KUBERNETES_VERSION (cold: a few minutes each on 2 cores)"
    go build -trimpath -ldflags "$ldflags" -o "$out/$cmd.tmp" "k8s.io/kubernetes/cmd/$cmd"
    mv "$out/$cmd.tmp" "$out/$cmd"
  done
}

build_etcd() {
  local upstream_mod m
  upstream_mod=$(upstream_go_mod "go.etcd.io/etcd/server/v3@v$ETCD_VERSION")
  mkdir -p "$work/etcd" && cd "$work/etcd"
  {
    echo "module infometis.local/etcdbuild"
    echo "go $(sed -n 's/^go //p' "$upstream_mod")"
    echo "require go.etcd.io/etcd/server/v3 v$ETCD_VERSION"
    for m in $(sed -n 's#^\s*go.etcd.io/etcd/\([a-z0-9/]*\) => \.\./.*#\1#p' "$upstream_mod"); do
      echo "replace go.etcd.io/etcd/$m => go.etcd.io/etcd/$m v$ETCD_VERSION"
    done
  } > go.mod
  say "building etcd v$ETCD_VERSION"
  go get "go.etcd.io/etcd/server/v3@v$ETCD_VERSION" >/dev/null
  go build -trimpath -ldflags "-s -w" -o "$out/etcd.tmp" go.etcd.io/etcd/server/v3
  mv "$out/etcd.tmp" "$out/etcd"
}

case $what in
  kubernetes) build_kubernetes ;;
  etcd) build_etcd ;;
  *) echo "usage: $0 kubernetes|etcd OUT [COMMAND...]" >&2; exit 2 ;;
esac
