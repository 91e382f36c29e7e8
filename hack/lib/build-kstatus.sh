#!/usr/bin/env bash
# Usage: build-kstatus.sh OUT
# Builds hack/kstatus into OUT/kstatus: a checker that runs kstatus'
# status.Compute from sigs.k8s.io/cli-utils (CLI_UTILS_VERSION in
# versions.env), the rules Flux and kpt use to call an object Current,
# InProgress, Failed or Terminating. Only the Go module proxy is needed.
#
# A throwaway module requires cli-utils and nothing else, so the k8s.io
# modules come at the versions cli-utils' own go.mod pins (v0.30.1), not the
# stack's; `go build -mod=mod` then fetches only the 17 modules whose packages
# are compiled (`go mod tidy` would also fetch cli-utils' test-only modules).
# OUT/kstatus.digest records what the binary was built from; when it matches
# this checkout's sources the script returns at once, so callers (the tests)
# may run it every time and still get a rebuild after main.go changes.
set -euo pipefail
out=$1
here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=/dev/null
. "$here/versions.env"
src=$here/kstatus

say() { printf '[kstatus] %s\n' "$*" >&2; }

digest=$(cat "$src/main.go" "$here/lib/build-kstatus.sh" <(echo "$CLI_UTILS_VERSION") | sha256sum | cut -d' ' -f1)
up_to_date() { [ -x "$out/kstatus" ] && [ "$(cat "$out/kstatus.digest" 2>/dev/null)" = "$digest" ]; }
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
upstream_mod=$(go mod download -json "sigs.k8s.io/cli-utils@v$CLI_UTILS_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
{
  echo "module infometis.local/kstatus"
  echo "go $(sed -n 's/^go //p' "$upstream_mod")"
  echo "require sigs.k8s.io/cli-utils v$CLI_UTILS_VERSION"
} > go.mod
say "building the kstatus checker with sigs.k8s.io/cli-utils v$CLI_UTILS_VERSION"
go build -mod=mod -trimpath -ldflags "-s -w" -o "$out/kstatus.tmp" .
mv "$out/kstatus.tmp" "$out/kstatus"
echo "$digest" > "$out/kstatus.digest"
