#!/usr/bin/env bash
# Usage: build-flux.sh OUT
# Builds Flux's source-controller and kustomize-controller (versions in
# versions.env) from the Go module proxy into OUT, and copies each one's CRDs
# (config/crd/bases in its module) to OUT/crds.
#
# Neither can be `go install`ed: each go.mod replaces its own api module with
# ./api, a folder the published module does not hold (it is a module of its
# own). As for Kubernetes, a throwaway wrapper module requires the controller
# and repeats its other replace lines, so the api module comes from the proxy
# at the version the controller requires; the *_SUBSTITUTES of versions.env
# add replace lines for dependency versions the proxy does not serve. One
# wrapper per controller, so each is built with the dependency versions it was
# released with.
set -euo pipefail
out=$1
here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=/dev/null
. "$here/versions.env"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out/crds"
export CGO_ENABLED=0 GOFLAGS=-mod=mod GOWORK=off

say() { printf '[flux] %s\n' "$*" >&2; }

build_controller() {
  local name=$1 version=$2 substitutes=$3
  local module=github.com/fluxcd/$name
  local info upstream_mod module_dir pair
  mkdir -p "$work/$name" && cd "$work/$name"
  info=$(go mod download -json "$module@v$version")
  upstream_mod=$(sed -n 's/.*"GoMod": "\(.*\)".*/\1/p' <<<"$info")
  module_dir=$(sed -n 's/.*"Dir": "\(.*\)".*/\1/p' <<<"$info")
  {
    echo "module infometis.local/${name}build"
    echo "go $(sed -n 's/^go //p' "$upstream_mod")"
    echo "require $module v$version"
    # Every replace but the local ./api one, single-line and block form alike.
    sed -n '/^replace (/,/^)/{/=>/p};/^replace [^(]/p' "$upstream_mod" \
      | sed 's/^replace //; s/^\s*//' | grep -v '=> \./' | sed 's/^/replace /'
    for pair in $substitutes; do
      echo "replace ${pair%%=*} => ${pair%%=*} ${pair#*=}"
    done
  } > go.mod
  say "building $name v$version ($(grep -c '^replace' go.mod) replace lines; cold: minutes on 2 cores)"
  go get "$module@v$version" >/dev/null
  go build -trimpath -ldflags "-s -w" -o "$out/$name.tmp" "$module"
  mv "$out/$name.tmp" "$out/$name"
  cp "$module_dir"/config/crd/bases/*.yaml "$out/crds/"
  chmod u+w "$out"/crds/*.yaml
}

build_controller source-controller "$FLUX_SOURCE_CONTROLLER_VERSION" "$FLUX_SOURCE_CONTROLLER_SUBSTITUTES"
build_controller kustomize-controller "$FLUX_KUSTOMIZE_CONTROLLER_VERSION" "$FLUX_KUSTOMIZE_CONTROLLER_SUBSTITUTES"
