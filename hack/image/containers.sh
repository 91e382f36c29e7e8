# Sourced by the image scripts: the container tools from Debian's packages, and
# their settings in files of ours (no change to the host's /etc/containers).
#
# What this machine needs (../docs/image.md): runc (crun refuses cgroup v1 plus
# an empty cgroup2 mount), cgroupfs, events in a file, explicit ulimits (root
# here lacks CAP_SYS_RESOURCE), and images in a store under the cache.

infometis_cache=${INFOMETIS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/infometis}
containers_home=$infometis_cache/containers

ensure_container_tools() {
  local missing=()
  local tool
  for tool in buildah podman debootstrap runc; do
    command -v "$tool" >/dev/null || missing+=("$tool")
  done
  [ ${#missing[@]} -eq 0 ] && return
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    printf '[image] missing %s; install them (Debian: apt-get install buildah podman debootstrap runc)\n' \
      "${missing[*]}" >&2
    exit 1
  fi
  printf '[image] installing %s from Debian'"'"'s packages\n' "${missing[*]}" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    buildah podman debootstrap runc uidmap >/dev/null
}

write_container_settings() {
  mkdir -p "$containers_home"
  cat > "$containers_home/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$containers_home/events.log"
CONF
  cat > "$containers_home/storage.conf" <<CONF
[storage]
driver = "overlay"
graphroot = "$containers_home/storage"
runroot = "/run/infometis-containers"
CONF
  export CONTAINERS_CONF=$containers_home/containers.conf
  export CONTAINERS_STORAGE_CONF=$containers_home/storage.conf
}

ensure_container_tools
write_container_settings
