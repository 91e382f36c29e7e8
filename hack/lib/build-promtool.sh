#!/usr/bin/env bash
# Usage: build-promtool.sh OUT
# Builds Prometheus' promtool (github.com/prometheus/prometheus/cmd/promtool at
# PROMETHEUS_MODULE_VERSION in versions.env) into OUT/promtool from the Go module
# proxy, for `promtool check rules` and `promtool test rules` on config/monitoring.
#
# Built with Prometheus' own `remove_all_sd` tag: rule checks and rule tests need
# no service discovery, and leaving out the ~30 discovery plugins (cloud SDKs,
# Kubernetes client) more than halves what is compiled. The build runs at the
# lowest priority on one core (nice -n 19, GOMAXPROCS=1) so it never competes with
# a benchmark or a test on the machine; it happens once per version.
# OUT/promtool.digest records what the binary was built from; when it matches, the
# script returns at once, so callers (the unit tests) may run it every time.
set -euo pipefail
out=$1
here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=/dev/null
. "$here/versions.env"

say() { printf '[promtool] %s\n' "$*" >&2; }

digest=$(cat "$here/lib/build-promtool.sh" <(echo "$PROMETHEUS_MODULE_VERSION") | sha256sum | cut -d' ' -f1)
up_to_date() { [ -x "$out/promtool" ] && [ "$(cat "$out/promtool.digest" 2>/dev/null)" = "$digest" ]; }
up_to_date && exit 0

mkdir -p "$out"
# Two test sessions may start at once: one builds, the other waits and reuses.
exec 9>"$out/.lock"
flock 9
up_to_date && exit 0

# Module v0.3MM.P is Prometheus 3.MM.P: the version `promtool --version` prints.
minor=${PROMETHEUS_MODULE_VERSION#0.}
release="$((${minor%%.*} / 100)).$((${minor%%.*} % 100)).${minor#*.}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export CGO_ENABLED=0 GOWORK=off GOBIN=$work GOMAXPROCS=1
say "building promtool $release (github.com/prometheus/prometheus v$PROMETHEUS_MODULE_VERSION) on one core at low priority; once per version"
nice -n 19 go install -tags remove_all_sd -trimpath \
  -ldflags "-s -w -X github.com/prometheus/common/version.Version=$release" \
  "github.com/prometheus/prometheus/cmd/promtool@v$PROMETHEUS_MODULE_VERSION"
mv "$work/promtool" "$out/promtool"
echo "$digest" > "$out/promtool.digest"
