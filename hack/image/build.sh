#!/usr/bin/env bash
# make image: localhost/infometis-operator:<version> from the Containerfile, with
# buildah, on the debootstrap base; prints the image's size.
set -euo pipefail
cd "$(dirname "$0")/../.."
here=hack/image
# shellcheck source=hack/image/containers.sh
. "$here/containers.sh"
version=$(.venv/bin/python -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
image=localhost/infometis-operator:$version
"$here/base.sh"
"$here/wheels.sh"
printf '[image] building %s\n' "$image" >&2
# chroot isolation and the host's network: a RUN step otherwise sets up a CNI bridge and iptables chains.
buildah build --quiet --isolation chroot --network host --layers=false -f Containerfile -t "$image" . >/dev/null
size=$(podman image inspect --format '{{.Size}}' "$image")
printf '[image] built %s: %s MB\n' "$image" "$((size / 1000000))" >&2
echo "$image"
