#!/usr/bin/env bash
# make deploy: the operator in Pods on the local stack's node (hack/stack up --node).
# Builds the image when the sources are newer than it (make image), loads it into
# the node's containerd as an oci-archive, applies config/kustomize/overlays/local
# and waits until every Deployment is Available.
set -euo pipefail
cd "$(dirname "$0")/../.."
say() { printf '[deploy] %s\n' "$*" >&2; }
# shellcheck source=hack/image/containers.sh
. hack/image/containers.sh
version=$(.venv/bin/python -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
image=localhost/infometis-operator:$version

created=$(podman image inspect --format '{{.Created.Unix}}' "$image" 2>/dev/null || echo 0)
newer=$(find controllers pyproject.toml Containerfile -newermt "@$created" -type f -print -quit)
if [ "$created" = 0 ] || [ -n "$newer" ]; then
  say "building $image (${newer:-no image yet} is newer)"
  hack/image/build.sh >/dev/null
fi
id=$(podman image inspect --format '{{.Id}}' "$image")

# The archive lives in the cache, beside the image store; the node imports it.
archive=$infometis_cache/images/infometis-operator-$version.oci.tar
mkdir -p "$(dirname "$archive")"
if [ ! -f "$archive.id" ] || [ "$(cat "$archive.id")" != "$id" ]; then
  say "writing $image as $archive"
  rm -f "$archive"
  buildah push --quiet "$image" "oci-archive:$archive:$image" >/dev/null
  echo "$id" > "$archive.id"
fi
say "loading $image into the node"
hack/stack load-image "$archive"

say "applying config/kustomize/overlays/local"
kubectl apply -k config/kustomize/overlays/local >/dev/null
# The tag stays while the image changes: the image id in the Pods' template rolls them onto a new build.
for deployment in $(kubectl get deployments -n infometis-system -l app.kubernetes.io/name=infometis-operator -o name); do
  kubectl patch -n infometis-system "$deployment" --type merge >/dev/null \
    -p "{\"spec\":{\"template\":{\"metadata\":{\"annotations\":{\"infometis.io/image-id\":\"$id\"}}}}}"
done
say "waiting until every Deployment has rolled out and is Available"
for deployment in $(kubectl get deployments -n infometis-system -l app.kubernetes.io/name=infometis-operator -o name); do
  kubectl rollout status -n infometis-system "$deployment" --timeout="${DEPLOY_TIMEOUT:-180s}" >&2
done
kubectl wait -n infometis-system --for=condition=Available deployment \
  -l app.kubernetes.io/name=infometis-operator --timeout="${DEPLOY_TIMEOUT:-180s}" >&2
kubectl get pods -n infometis-system -l app.kubernetes.io/name=infometis-operator -o wide >&2
