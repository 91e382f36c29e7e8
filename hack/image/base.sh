#!/usr/bin/env bash
# The image's base, localhost/infometis-base:<suite>: Debian made by debootstrap
# (minbase, with python3, its venv module and the CA certificates), imported
# FROM scratch, since no image registry is reachable here. The root file
# system is cached as a tarball keyed by the suite; the image is made from it
# when the store lacks it. About 100 s once.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=/dev/null
. "$here/../versions.env"
# shellcheck source=hack/image/containers.sh
. "$here/containers.sh"
suite=$BASE_IMAGE_SUITE
image=localhost/infometis-base:$suite
tarball=$infometis_cache/base-$suite-python3.tar
if buildah inspect --type image "$image" >/dev/null 2>&1; then
  exit 0
fi
if [ ! -f "$tarball" ]; then
  printf '[image] debootstrap of Debian %s (minbase, python3): about 100 s, once\n' "$suite" >&2
  root=$(mktemp -d "$infometis_cache/debootstrap.XXXXXX")
  trap 'rm -rf "$root"' EXIT
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    "$suite" "$root" http://deb.debian.org/debian >/dev/null
  # What the image never needs: package lists and caches, documentation, locales.
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/cache/debconf/*-old \
    "$root"/usr/share/doc "$root"/usr/share/man "$root"/usr/share/info "$root"/usr/share/locale \
    "$root"/var/log/*
  tar --numeric-owner -C "$root" -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
fi
printf '[image] importing %s\n' "$image" >&2
container=$(buildah from scratch)
buildah add --quiet "$container" "$tarball" / >/dev/null
buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$container"
buildah commit --quiet --rm "$container" "$image" >/dev/null
