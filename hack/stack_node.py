"""The stack's node (`hack/stack up --node`): what containerd, the kubelet and CNI read, and how the host is left.

containerd 1.6 (Debian's package) and the kubelet run together in one private
mount namespace (`unshare -m --propagation private`), started by the script
`start_script` writes. Inside it, and only there:

- the kernel tunables the kubelet insists on setting (vm.overcommit_memory,
  kernel.panic, ...) are covered by plain files, so the host keeps its values;
- /run, /var/lib and /var/log are folders of the node's own, because containerd
  1.6 puts its shims' sockets in /run/containerd whatever its settings say, CNI
  keeps its cache in /var/lib/cni and the kubelet makes /var/log/containers.

Everything else is configured to live under the node's folder in the stack's
state folder. What cannot live there, and `clean_host` removes on every stop:
the containers' processes and their shims (containerd does not stop them when it
stops), the cgroups under /sys/fs/cgroup/*/CGROUP_ROOT, and the CNI bridge. The
mounts end with the namespace, once its last process is gone.

The settings below are what this machine was found to need (see
docs/local-stack.md): Kubernetes 1.37 refuses cgroup v1 unless failCgroupV1 is
false, runc's systemd cgroup driver has no systemd to talk to, and without
restrict_oom_score_adj every sandbox fails ("can't get final child's PID from pipe").
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import shlex
import signal
import subprocess
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

NODE_NAME = "infometis-node"
# One cgroup of ours in every hierarchy, so the node's cgroups can be removed as one tree.
CGROUP_ROOT = "infometis-node"
CGROUPS = Path("/sys/fs/cgroup")
BRIDGE = "infometis0"
# Pods without hostNetwork get an address on BRIDGE. No gateway and no masquerading:
# either would change the host (ip_forward, iptables); such Pods reach each other only.
POD_SUBNET = "10.244.0.0/24"
SANDBOX_IMAGE = "localhost/infometis/pause:1.0"
CNI_PLUGINS = Path("/usr/lib/cni")  # Debian's containernetworking-plugins
# What the kubelet sets at start (pkg/kubelet/cm, setupKernelTunables); covered inside the namespace.
KERNEL_TUNABLES = (
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
)
# Host folders given a folder of the node's own inside the namespace (see the module's docstring).
PRIVATE_FOLDERS = ("/run", "/var/lib", "/var/log")

PAUSE_SOURCE = r"""
/* The Pod sandbox's process: holds the Pod's namespaces, reaps orphans, stops on SIGINT/SIGTERM. */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static void stop(int sig) { (void)sig; _exit(0); }
static void reap(int sig) { (void)sig; while (waitpid(-1, 0, WNOHANG) > 0) {} }

int main(void) {
    signal(SIGINT, stop);
    signal(SIGTERM, stop);
    signal(SIGCHLD, reap);
    for (;;) pause();
}
"""


@dataclass(frozen=True)
class NodeLayout:
    """Where the node keeps everything, under `home` (STATE/node)."""

    home: Path

    @property
    def containerd(self) -> Path:
        return self.home / "containerd"

    @property
    def containerd_socket(self) -> Path:
        return self.containerd / "containerd.sock"

    @property
    def containerd_config(self) -> Path:
        return self.home / "containerd.toml"

    @property
    def kubelet(self) -> Path:
        return self.home / "kubelet"

    @property
    def kubelet_config(self) -> Path:
        return self.home / "kubelet.yaml"

    @property
    def kubelet_kubeconfig(self) -> Path:
        return self.home / "kubelet.kubeconfig"

    @property
    def cni_conf(self) -> Path:
        return self.home / "cni" / "net.d"

    @property
    def pod_logs(self) -> Path:
        return self.home / "pod-logs"

    @property
    def tunables(self) -> Path:
        return self.home / "kernel-tunables"

    @property
    def script(self) -> Path:
        return self.home / "start.sh"

    def private_folder(self, host_folder: str) -> Path:
        return self.home / "private" / host_folder.strip("/").replace("/", "-")


def containerd_config(layout: NodeLayout) -> str:
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    return f"""version = 2
root = "{layout.containerd / "root"}"
state = "{layout.containerd / "state"}"

[grpc]
  address = "{layout.containerd_socket}"

[plugins."io.containerd.internal.v1.opt"]
  path = "{layout.containerd / "opt"}"

[{cri}]
  sandbox_image = "{SANDBOX_IMAGE}"
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

[{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[{cri}.containerd.runtimes.runc.options]
  BinaryName = "runc"
  SystemdCgroup = false

[{cri}.cni]
  bin_dir = "{CNI_PLUGINS}"
  conf_dir = "{layout.cni_conf}"
"""


def cni_config(layout: NodeLayout) -> str:
    """The bridge network; containerd adds the loopback interface itself (with the loopback plugin)."""
    bridge = {
        "type": "bridge",
        "bridge": BRIDGE,
        "isGateway": False,
        "ipMasq": False,
        "ipam": {
            "type": "host-local",
            "ranges": [[{"subnet": POD_SUBNET}]],
            "dataDir": str(layout.home / "cni" / "ipam"),
        },
    }
    return json.dumps({"cniVersion": "1.0.0", "name": "infometis", "plugins": [bridge]}, indent=2) + "\n"


@dataclass(frozen=True)
class KubeletPorts:
    api: int
    healthz: int


def kubelet_config(layout: NodeLayout, node_ip: str, ports: KubeletPorts, ca_file: Path) -> str:
    return f"""apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# cgroup v1 is what this machine has; 1.37 refuses it unless told not to.
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /{CGROUP_ROOT}
# Otherwise the kubelet adds iptables rules that drop some loopback traffic.
makeIPTablesUtilChains: false
containerRuntimeEndpoint: unix://{layout.containerd_socket}
# Its API (logs, exec) on the node's address only, where the API server reaches it.
address: {node_ip}
port: {ports.api}
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: {ports.healthz}
authentication:
  anonymous: {{enabled: false}}
  webhook: {{enabled: true}}
  x509: {{clientCAFile: {ca_file}}}
authorization:
  mode: Webhook
podLogsDir: {layout.pod_logs}
resolvConf: /etc/resolv.conf
failSwapOn: false
# A shared developer machine: neither images nor Pods are removed for its disk or memory use.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: "1Mi"
  nodefs.available: "1%"
  nodefs.inodesFree: "1%"
  imagefs.available: "1%"
# Renewed every few seconds, so a stopped node shows NotReady within seconds, not minutes.
nodeLeaseDurationSeconds: 12
nodeStatusUpdateFrequency: 4s
"""


def start_script(layout: NodeLayout, kubelet_argv: list[str], pause_archive: Path, containerd_log: Path) -> str:
    """The script run in the private mount namespace: covers, containerd, the sandbox image, then the kubelet."""
    q = shlex.quote
    covers = "\n".join(
        f"cat /proc/sys/{t} > {q(str(layout.tunables / t.replace('/', '.')))}\n"
        f"mount --bind {q(str(layout.tunables / t.replace('/', '.')))} /proc/sys/{t}"
        for t in KERNEL_TUNABLES
    )
    folders = "\n".join(f"mount --bind {q(str(layout.private_folder(f)))} {f}" for f in PRIVATE_FOLDERS)
    ctr = f"ctr --address {q(str(layout.containerd_socket))}"
    return f"""#!/bin/sh
# Written by hack/stack (hack/stack_node.py); run by `unshare -m --propagation private`.
set -eu
# The kubelet sets these at start: here it sets plain files, not the host's values.
{covers}
{folders}
containerd --config {q(str(layout.containerd_config))} >> {q(str(containerd_log))} 2>&1 &
tries=0
until {ctr} version >/dev/null 2>&1; do
  tries=$((tries + 1))
  [ "$tries" -lt 150 ] || {{ echo "containerd did not answer; see {containerd_log}" >&2; exit 1; }}
  sleep 0.2
done
{ctr} -n k8s.io images import {q(str(pause_archive))} >/dev/null
exec {" ".join(q(a) for a in kubelet_argv)}
"""


def prepare_host(layout: NodeLayout) -> None:
    """Folders, and the node's cgroup in every hierarchy (the kubelet requires its cgroupRoot to exist)."""
    for folder in (layout.containerd, layout.kubelet, layout.cni_conf, layout.pod_logs, layout.tunables):
        folder.mkdir(parents=True, exist_ok=True)
    for host_folder in PRIVATE_FOLDERS:
        layout.private_folder(host_folder).mkdir(parents=True, exist_ok=True)
    for hierarchy in _hierarchies():
        ours = hierarchy / CGROUP_ROOT
        ours.mkdir(exist_ok=True)
        if (hierarchy / "cpuset.cpus").exists():
            # A new cpuset cgroup starts with no CPUs and no memory nodes; give it the parent's.
            for name in ("cpuset.cpus", "cpuset.mems"):
                if not (ours / name).read_text().strip():
                    (ours / name).write_text((hierarchy / name).read_text())


def clean_host(layout: NodeLayout) -> list[str]:
    """Remove what the node leaves on the host once containerd and the kubelet are stopped; what was removed.

    Shims and containers outlive containerd, so they are killed here: the
    shims by their command line (it names the node's containerd socket), the
    containers' processes by their cgroups. Then the cgroups and the bridge go.
    """
    removed = []
    shims = _processes_naming(str(layout.containerd_socket))
    container_pids = _pids_in_cgroups()
    for pid in shims | container_pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    if shims or container_pids:
        removed.append(f"{len(shims)} shim(s) and {len(container_pids)} container process(es)")
    deadline = time.monotonic() + 10
    while (_processes_naming(str(layout.containerd_socket)) or _pids_in_cgroups()) and time.monotonic() < deadline:
        time.sleep(0.1)
    cgroups = 0
    for hierarchy in _hierarchies():
        ours = hierarchy / CGROUP_ROOT
        if ours.exists():
            # Deepest first: a cgroup can only be removed once it has no children.
            for folder in sorted((p for p in ours.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
                folder.rmdir()
            ours.rmdir()
            cgroups += 1
    if cgroups:
        removed.append(f"cgroup {CGROUP_ROOT} in {cgroups} hierarchies")
    if Path(f"/sys/class/net/{BRIDGE}").exists():
        subprocess.run(["ip", "link", "delete", BRIDGE], check=True)
        removed.append(f"bridge {BRIDGE}")
    return removed


def _hierarchies() -> list[Path]:
    """Every mounted cgroup hierarchy (v1 controllers, name=systemd and the unified one)."""
    mounts = Path("/proc/self/mounts").read_text().splitlines()
    return sorted(Path(fields[1]) for fields in (m.split() for m in mounts) if fields[2] in ("cgroup", "cgroup2"))


def _pids_in_cgroups() -> set[int]:
    pids: set[int] = set()
    for hierarchy in _hierarchies():
        ours = hierarchy / CGROUP_ROOT
        if ours.exists():
            for procs in ours.rglob("cgroup.procs"):
                pids.update(int(line) for line in procs.read_text().split())
    return pids


def _processes_naming(text: str) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and entry.name != str(os.getpid()):
            try:
                if text.encode() in (entry / "cmdline").read_bytes():
                    found.add(int(entry.name))
            except OSError:
                continue
    return found


def node_ip() -> str:
    """The machine's address on its default route's interface (the kubelet refuses loopback)."""
    routes = json.loads(subprocess.run(["ip", "-j", "route", "show", "default"], capture_output=True, text=True,
                                       check=True).stdout or "[]")  # fmt: skip
    devices = [route["dev"] for route in routes if "dev" in route]
    command = ["ip", "-j", "-4", "addr", "show", "scope", "global", *(["dev", devices[0]] if devices else [])]
    interfaces = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
    for interface in interfaces:
        for address in interface.get("addr_info", []):
            return str(address["local"])
    raise SystemExit("the node needs a non-loopback IPv4 address, and this machine has none")


def ensure_pause_archive(cache: Path) -> Path:
    """The sandbox image as an OCI archive, built once from PAUSE_SOURCE (gcc -static) and cached."""
    digest = hashlib.sha256((PAUSE_SOURCE + SANDBOX_IMAGE).encode()).hexdigest()[:16]
    archive = cache / f"pause-{digest}.oci.tar"
    if archive.exists():
        return archive
    cache.mkdir(parents=True, exist_ok=True)
    source, binary = cache / "pause.c", cache / "pause"
    source.write_text(PAUSE_SOURCE)
    subprocess.run(["gcc", "-static", "-Os", "-s", "-o", str(binary), str(source)], check=True)
    partial = archive.with_suffix(".partial")
    partial.write_bytes(_oci_archive(binary.read_bytes(), SANDBOX_IMAGE))
    partial.rename(archive)
    return archive


def _oci_archive(pause: bytes, reference: str) -> bytes:
    """An OCI image layout (tar) of one layer holding /pause, named `reference`."""
    layer_tar = _tar({"pause": (pause, 0o755)})
    layer = gzip.compress(layer_tar, mtime=0)
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Entrypoint": ["/pause"], "User": "65535:65535"},
            "rootfs": {"type": "layers", "diff_ids": [f"sha256:{hashlib.sha256(layer_tar).hexdigest()}"]},
        }
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": _descriptor("application/vnd.oci.image.config.v1+json", config),
            "layers": [_descriptor("application/vnd.oci.image.layer.v1.tar+gzip", layer)],
        }
    ).encode()
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                **_descriptor("application/vnd.oci.image.manifest.v1+json", manifest),
                "annotations": {"io.containerd.image.name": reference, "org.opencontainers.image.ref.name": reference},
            }
        ],
    }
    files = {
        "oci-layout": (json.dumps({"imageLayoutVersion": "1.0.0"}).encode(), 0o644),
        "index.json": (json.dumps(index).encode(), 0o644),
        **{f"blobs/sha256/{hashlib.sha256(blob).hexdigest()}": (blob, 0o644) for blob in (config, manifest, layer)},
    }
    return _tar(files)


def _descriptor(media_type: str, blob: bytes) -> dict[str, object]:
    return {"mediaType": media_type, "digest": f"sha256:{hashlib.sha256(blob).hexdigest()}", "size": len(blob)}


def _tar(files: dict[str, tuple[bytes, int]]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, (data, mode) in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, 0
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()
