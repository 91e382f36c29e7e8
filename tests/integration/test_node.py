"""The stack's node (`hack/stack up --node`): a real kubelet with containerd and runc runs Pods.

The Pods here are what the operator's own Deployments are on this stack: the
operator image, loaded with `hack/stack load-image`, on the host's network,
reaching the API server on loopback with their ServiceAccount's token.
"""

from __future__ import annotations

import subprocess
import textwrap
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests.integration.helpers import REPO, kubectl, node_status_row, require_node, run_stack, wait_for

NODE_NAME = "infometis-node"
PAUSE_IMAGE = "localhost/infometis/pause:1.0"
IMAGE_SCRIPTS = REPO / "hack" / "image"

# Reads a ConfigMap through the in-cluster configuration (the mounted token and CA), says who it
# is, tries what its role does not allow, then waits; SIGTERM ends it (Python as PID 1 ignores it otherwise).
IN_CLUSTER_SCRIPT = textwrap.dedent(
    """
    import signal, sys, time
    from kubernetes import client, config
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    config.load_incluster_config()
    namespace = open("/var/run/secrets/kubernetes.io/serviceaccount/namespace").read()
    core = client.CoreV1Api()
    print("read:", core.read_namespaced_config_map("greeting", namespace).data["message"], flush=True)
    review = client.AuthenticationV1Api().create_self_subject_review(client.V1SelfSubjectReview())
    print("user:", review.status.user_info.username, flush=True)
    try:
        core.list_namespaced_secret(namespace)
    except client.ApiException as error:
        print("secrets:", error.status, flush=True)
    time.sleep(3600)
    """
)


def node_ready_status() -> str:
    node = client.CoreV1Api().read_node(NODE_NAME)
    return next(c.status for c in node.status.conditions if c.type == "Ready")


@pytest.fixture(scope="module", autouse=True)
def node_up() -> None:
    require_node()


@pytest.fixture(scope="module")
def operator_image(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The operator image (`make image`, built if the project's store lacks it), loaded into the node."""
    version = subprocess.run(
        [str(REPO / ".venv" / "bin" / "python"), "-c",
         'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])'],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    image = f"localhost/infometis-operator:{version}"
    if subprocess.run([str(IMAGE_SCRIPTS / "podman"), "image", "exists", image]).returncode != 0:
        built = subprocess.run([str(IMAGE_SCRIPTS / "build.sh")], cwd=REPO, capture_output=True, text=True)
        assert built.returncode == 0, f"hack/image/build.sh failed:\n{built.stderr}"
    archive = tmp_path_factory.mktemp("image") / "operator.tar"
    saved = subprocess.run(
        [str(IMAGE_SCRIPTS / "podman"), "save", "--format", "oci-archive", "-o", str(archive), image],
        capture_output=True,
        text=True,
    )
    assert saved.returncode == 0, saved.stderr
    run_stack("load-image", str(archive))
    return image


def apply(namespace: str, *manifests: dict[str, Any]) -> None:
    kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump_all(manifests))


def api_server_port() -> str:
    host = client.Configuration.get_default_copy().host
    return str(urllib.parse.urlsplit(host).port)


def reader_deployment(name: str, image: str) -> dict[str, Any]:
    container = {
        "name": "reader",
        "image": image,
        "imagePullPolicy": "Never",
        "command": ["python3", "-c", IN_CLUSTER_SCRIPT],
        # As the local overlay's Deployments: the API server on the host's loopback.
        "env": [
            {"name": "KUBERNETES_SERVICE_HOST", "value": "127.0.0.1"},
            {"name": "KUBERNETES_SERVICE_PORT", "value": api_server_port()},
        ],
        "securityContext": {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False},
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"serviceAccountName": "reader", "hostNetwork": True, "containers": [container]},
            },
        },
    }


def reader_permissions() -> list[dict[str, Any]]:
    """A ServiceAccount that may read the ConfigMap `greeting` and nothing else."""
    rbac = "rbac.authorization.k8s.io"
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "reader"}},
        {
            "apiVersion": f"{rbac}/v1",
            "kind": "Role",
            "metadata": {"name": "reader"},
            "rules": [
                {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["greeting"], "verbs": ["get"]}
            ],
        },
        {
            "apiVersion": f"{rbac}/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "reader"},
            "roleRef": {"apiGroup": rbac, "kind": "Role", "name": "reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "reader"}],
        },
    ]


def pods_of(namespace: str, app: str) -> list[client.V1Pod]:
    pods: list[client.V1Pod] = client.CoreV1Api().list_namespaced_pod(namespace, label_selector=f"app={app}").items
    return pods


def running_pod(namespace: str, app: str, other_than: str = "") -> str:
    """The name of the app's Pod that runs, once there is one (and it is not `other_than`)."""

    def running() -> str:
        names = [
            p.metadata.name
            for p in pods_of(namespace, app)
            if p.status.phase == "Running" and p.metadata.deletion_timestamp is None and p.metadata.name != other_than
        ]
        return names[0] if names else ""

    return wait_for(running, timeout=120, interval=1, what=f"a running Pod of {app}")


def logs(namespace: str, pod: str) -> str:
    return kubectl("logs", "-n", namespace, pod, check=False).stdout


def test_the_node_is_registered_ready_with_the_stacks_kubelet_and_containerd() -> None:
    node = client.CoreV1Api().read_node(NODE_NAME)
    assert node_ready_status() == "True"
    assert node.status.node_info.kubelet_version == client.VersionApi().get_code().git_version
    assert node.status.node_info.container_runtime_version.startswith("containerd://1.")
    addresses = {a.type: a.address for a in node.status.addresses}
    assert not addresses["InternalIP"].startswith("127."), addresses


def test_a_deployments_pod_reads_with_its_service_account_token_shows_its_logs_and_is_deleted(
    namespace: str, operator_image: str
) -> None:
    message = f"hello from {namespace}"
    apply(
        namespace,
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "greeting"}, "data": {"message": message}},
        *reader_permissions(),
        reader_deployment("reader", operator_image),
    )
    kubectl("wait", "-n", namespace, "--for=condition=Available", "deployment/reader", "--timeout=120s")
    pod = running_pod(namespace, "reader")

    def all_logged() -> str:
        text = logs(namespace, pod)
        return text if "secrets:" in text else ""

    shown = wait_for(all_logged, timeout=60, what="the Pod's logs")
    assert f"read: {message}" in shown
    assert f"user: system:serviceaccount:{namespace}:reader" in shown
    assert "secrets: 403" in shown  # the token is the ServiceAccount's, held to its role

    started = time.monotonic()
    kubectl("delete", "pod", "-n", namespace, pod, "--wait=true", "--timeout=60s")
    deleted_after = time.monotonic() - started
    assert pod not in [p.metadata.name for p in pods_of(namespace, "reader")]
    assert deleted_after < 30, f"the Pod took {deleted_after:.0f}s to go (SIGTERM should end it at once)"
    replacement = running_pod(namespace, "reader", other_than=pod)
    wait_for(lambda: f"read: {message}" in logs(namespace, replacement), timeout=60, what="the new Pod's logs")


def leftovers_on_the_host(node_home: Path) -> list[str]:
    """What a stopped node must not leave: its processes, its cgroups, its bridge, its mounts."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if str(node_home).encode() in cmdline:
                words = cmdline.replace(b"\0", b" ").decode(errors="replace")
                found.append(f"process {entry.name}: {words[:120]}")
    found += [str(p) for p in Path("/sys/fs/cgroup").glob("*/infometis-node")]
    if Path("/sys/class/net/infometis0").exists():
        found.append("bridge infometis0")
    found += [line for line in Path("/proc/self/mountinfo").read_text().splitlines() if str(node_home) in line]
    return found


@pytest.fixture
def node_started_afterwards() -> Iterator[None]:
    """Whatever happens in the test, the node runs again when it ends."""
    yield
    run_stack("start", "node")


def test_a_stopped_node_goes_not_ready_leaves_nothing_on_the_host_and_comes_back_with_its_pods(
    namespace: str, node_started_afterwards: None
) -> None:
    # A Pod on the CNI bridge (not hostNetwork), so the bridge and a network namespace exist.
    pause = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "pause"},
        "spec": {
            "selector": {"matchLabels": {"app": "pause"}},
            "template": {
                "metadata": {"labels": {"app": "pause"}},
                "spec": {"containers": [{"name": "pause", "image": PAUSE_IMAGE, "imagePullPolicy": "Never"}]},
            },
        },
    }
    apply(namespace, pause)
    before = running_pod(namespace, "pause")
    assert pods_of(namespace, "pause")[0].status.pod_ip.startswith("10.244.")
    data = next(line.removeprefix("data: ") for line in run_stack("status").splitlines() if line.startswith("data: "))
    node_home = Path(data) / "node"

    run_stack("stop", "node")

    assert leftovers_on_the_host(node_home) == []
    wait_for(lambda: node_ready_status() == "Unknown", timeout=60, interval=1, what="the node to show Unknown")

    started = time.monotonic()
    run_stack("start", "node")
    assert node_ready_status() == "True"
    assert node_status_row()[1] == "ready"
    # The kubelet starts the Pod's containers again: the same Pod, restarted.
    wait_for(
        lambda: (
            (p := pods_of(namespace, "pause")[0]).status.phase == "Running"
            and p.metadata.name == before
            and (p.status.container_statuses[0].restart_count or 0) >= 1
            and p.status.container_statuses[0].ready
        ),
        timeout=120,
        interval=1,
        what="the Pod running again after the restart",
    )
    print(f"\nnode start to Ready and its Pod running again: {time.monotonic() - started:.1f}s")
