#!/usr/bin/env bash
# Usage: build-argocd-health.sh OUT
# Builds hack/argocd into OUT/argocd-health: runs an Argo CD health script on
# objects the way Argo CD's controller does (hack/argocd/main.go says how).
# Only the Go module proxy is needed.
#
# The Lua interpreter is the one Argo CD ships: the versions of
# github.com/yuin/gopher-lua, layeh.com/gopher-json and k8s.io/apimachinery
# are read from the go.mod of Argo CD ARGOCD_VERSION (versions.env), fetched
# alone from the proxy (`go list -m` downloads the .mod, not the 55 MB
# module), and the build fails if the build would select any other version.
# Argo CD's util/lua itself cannot be imported at reasonable cost: it pulls in
# Argo CD's API client and gitops-engine's kube utilities (hundreds of
# modules, k8s.io/kubernetes among them), and Argo CD requires gitops-engine
# at a version the proxy does not serve (only Argo CD's own replace to
# ./gitops-engine resolves it), so an importer would have to redo that too.
#
# OUT/argocd-health.digest records what the binary was built from; when it
# matches this checkout's sources the script returns at once.
set -euo pipefail
out=$1
here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=/dev/null
. "$here/versions.env"
src=$here/argocd

say() { printf '[argocd-health] %s\n' "$*" >&2; }

digest=$(cat "$src/main.go" "$here/lib/build-argocd-health.sh" <(echo "$ARGOCD_VERSION") | sha256sum | cut -d' ' -f1)
up_to_date() { [ -x "$out/argocd-health" ] && [ "$(cat "$out/argocd-health.digest" 2>/dev/null)" = "$digest" ]; }
up_to_date && exit 0

mkdir -p "$out"
# Two test sessions may start at once: one builds, the other waits and reuses.
exec 9>"$out/.lock"
flock 9
up_to_date && exit 0

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export CGO_ENABLED=0 GOWORK=off
cd "$work"
cp "$src/main.go" .
argocd_mod=$(go list -m -json "github.com/argoproj/argo-cd/v3@v$ARGOCD_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
# The version Argo CD requires (its replace directives name the same versions where present).
pinned() { awk -v m="$1" '$1 == m && $2 ~ /^v/ { print $2; exit }' "$argocd_mod"; }
modules=(github.com/yuin/gopher-lua layeh.com/gopher-json k8s.io/apimachinery)
{
  echo "module infometis.local/argocd-health"
  echo "go $(sed -n 's/^go //p' "$argocd_mod")"
  for module in "${modules[@]}"; do
    version=$(pinned "$module")
    [ -n "$version" ] || { say "Argo CD v$ARGOCD_VERSION's go.mod does not require $module"; exit 1; }
    echo "require $module $version"
  done
} > go.mod
say "building with Argo CD v$ARGOCD_VERSION's $(grep -c '^require' go.mod) pinned modules: $(sed -n 's/^require //p' go.mod | tr '\n' ' ')"
go build -mod=mod -trimpath -ldflags "-s -w" -o "$out/argocd-health.tmp" .
for module in "${modules[@]}"; do
  selected=$(go list -m -f '{{.Version}}' "$module")
  [ "$selected" = "$(pinned "$module")" ] || { say "$module resolved to $selected, Argo CD uses $(pinned "$module")"; exit 1; }
done
mv "$out/argocd-health.tmp" "$out/argocd-health"
echo "$digest" > "$out/argocd-health.digest"
