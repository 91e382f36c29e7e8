"""The real stack and the operator, once per session.

The stack is the one `hack/stack up` started (make test starts it). The
operator runs as a separate process, as it would in a cluster: under a
ServiceAccount holding exactly the three controllers' roles from
config/kustomize/base/rbac (one process runs all three here), with a token
from the TokenRequest API, so a rule missing from any of them fails these tests.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient
from kubernetes import client, config

from controllers.core.connections import Connection
from controllers.kafkatopic.admin import KafkaAdmin
from tests.integration import leftovers
from tests.integration.helpers import REPO, kubectl, run_stack, stack_environment, wait_for
from tests.integration.nifi import NiFi

RESYNC_SECONDS = 2
# The test operator's tenancy policy: one namespace held to a topic-name prefix,
# every other namespace free, and a partition limit for all.
TENANT_NAMESPACE, TENANT_PREFIX, MAX_PARTITIONS = "tenancy-team-a", "team-a.", 1000
MAX_SHARDS = 50
# The one namespace whose flows may use NiFi's restricted components (the sample pipeline's ExecuteProcess).
PIPELINE_NAMESPACE = "pipeline-e2e"
TENANCY_POLICY = f"""kafkatopics:
  maxPartitions: {MAX_PARTITIONS}
  namespaces:
    "*": {{namePrefixes: [""]}}
    {TENANT_NAMESPACE}: {{namePrefixes: ["{TENANT_PREFIX}"]}}
elasticsearchindices:
  maxShards: {MAX_SHARDS}
  namespaces:
    "*": {{namePrefixes: [""]}}
    {TENANT_NAMESPACE}: {{namePrefixes: ["{TENANT_PREFIX}"]}}
nififlows:
  restrictedComponentNamespaces: [{PIPELINE_NAMESPACE}]
"""
OPERATOR_SA, OPERATOR_NAMESPACE = "infometis-integration", "infometis-system"
CONTROLLERS = ("kafka", "elasticsearch", "nifi")


def _stack_state_dir() -> Path:
    """hack/stack's state folder (as hack/stack.py finds it): one per user, shared by every clone."""
    state_home = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(os.environ.get("INFOMETIS_STACK_DIR") or Path(state_home) / "infometis-stack")


@pytest.fixture(scope="session", autouse=True)
def stack_to_ourselves() -> Iterator[None]:
    """One integration session at a time on the stack: every clone shares it, and a second session
    would meet this one's operator and have its test resources swept (below)."""
    lock_path = _stack_state_dir() / "integration-session.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"\nanother integration session holds {lock_path}; waiting for it to end", file=sys.stderr)
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@pytest.fixture(scope="session", autouse=True)
def stack(stack_to_ourselves: None) -> dict[str, str]:
    """Point this process at the local stack, and fail clearly if it is not up."""
    os.environ.update(stack_environment())
    version = subprocess.run(["kubectl", "version", "-o", "json"], capture_output=True, text=True)
    if version.returncode != 0:
        pytest.fail(f"the local stack is not answering; run `hack/stack up --kafka-brokers 3`:\n{version.stderr}")
    config.load_kube_config()
    sweep_leftovers()
    return dict(os.environ)


def sweep_leftovers() -> None:
    """Start from services holding nothing earlier runs left (see leftovers.py), and say what went."""
    kafka = AdminClient({"bootstrap.servers": os.environ["KAFKA_BOOTSTRAP_SERVERS"]})
    removed = {
        # NiFi first: a leftover flow still running could write to a topic or index swept before it.
        "nifi groups and contexts": leftovers.sweep_nifi(NiFi(os.environ["NIFI_URL"])),
        "kafka topics": leftovers.sweep_kafka(kafka),
    }
    removed["test namespaces"] = _delete_test_namespaces()
    for variable, flavour in (
        ("ELASTICSEARCH_URL", "elasticsearch"),
        ("OPENSEARCH_URL", "opensearch"),
        ("ELASTICSEARCH7_URL", "elasticsearch"),
    ):
        removed[f"{variable} indices"] = leftovers.sweep_search(os.environ[variable], flavour)
    print(f"\nremoved what earlier runs left: {removed}")


IMAGE_BUILD_TIMEOUT_SECONDS = 1200


@dataclass
class ImageBuild:
    process: subprocess.Popen[bytes]
    stdout_path: Path
    stderr_path: Path


@pytest.fixture(scope="session", autouse=True)
def image_build(
    request: pytest.FixtureRequest, stack_to_ourselves: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ImageBuild | None]:
    """`make image` (hack/image/build.sh), started as the session starts when a collected test needs the image:
    it takes about a minute and needs no server, so it overlaps with the tests that wait on servers.
    Niced, so the tests that measure time keep the CPU first."""
    if not any("built_image" in item.fixturenames for item in request.session.items):
        yield None
        return
    folder = tmp_path_factory.mktemp("image-build")
    stdout_path, stderr_path = folder / "stdout", folder / "stderr"
    with stdout_path.open("wb") as stdout, stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            ["nice", "-n", "19", str(REPO / "hack" / "image" / "build.sh")],
            cwd=REPO,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )
    yield ImageBuild(process, stdout_path, stderr_path)
    # A session cut short still lets the build finish: a killed buildah leaves its working container behind.
    process.wait(timeout=IMAGE_BUILD_TIMEOUT_SECONDS)


@pytest.fixture(scope="session")
def built_image(image_build: ImageBuild | None) -> str:
    """The operator image this session built (the name build.sh printed), once the build has succeeded."""
    assert image_build is not None, "the image build starts only for sessions with a test using built_image"
    code = image_build.process.wait(timeout=IMAGE_BUILD_TIMEOUT_SECONDS)
    assert code == 0, f"hack/image/build.sh failed ({code}):\n{image_build.stderr_path.read_text(errors='replace')}"
    return image_build.stdout_path.read_text().strip().splitlines()[-1]


def _delete_test_namespaces() -> int:
    """Ask to delete the namespaces the `namespace` fixture made in runs cut short (not waiting: the session's
    operator lets their objects go). Left, their objects' reconciles slow every operator the tests start."""
    core = client.CoreV1Api()
    left = [
        ns.metadata.name
        for ns in core.list_namespace().items
        if TEST_NAMESPACE.fullmatch(ns.metadata.name) and not ns.metadata.deletion_timestamp
    ]
    for name in left:
        core.delete_namespace(name)
    return len(left)


@pytest.fixture(scope="session")
def kafka_admin(stack: dict[str, str]) -> AdminClient:
    return AdminClient({"bootstrap.servers": stack["KAFKA_BOOTSTRAP_SERVERS"]})


@pytest.fixture
def operator_kafka_admin(stack: dict[str, str]) -> Iterator[KafkaAdmin]:
    """The operator's own edge to the stack's Kafka, without batching delays."""
    connection = Connection("default", {"bootstrap.servers": stack["KAFKA_BOOTSTRAP_SERVERS"]}, frozenset())
    admin = KafkaAdmin(connection, linger=0)
    yield admin
    admin.close()


@pytest.fixture(scope="session")
def broker_ids(kafka_admin: AdminClient) -> list[int]:
    return sorted(node.id for node in kafka_admin.describe_cluster().result(timeout=15).nodes)


@pytest.fixture
def kafka_restarted_afterwards() -> Iterator[None]:
    """Whatever happens in the test, Kafka is running again when it ends."""
    yield
    run_stack("start", "kafka")


TEST_NAMESPACE = re.compile(r"it-[0-9a-f]{8}")


@pytest.fixture
def namespace() -> Iterator[str]:
    name = f"it-{uuid.uuid4().hex[:8]}"
    client.CoreV1Api().create_namespace({"metadata": {"name": name}})
    yield name
    client.CoreV1Api().delete_namespace(name)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _test_identity() -> str:
    """The test ServiceAccount, bound to each controller's ClusterRole and leader-election Role: the union of
    what the three Deployments may do, nothing more."""
    documents = [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": OPERATOR_SA, "namespace": OPERATOR_NAMESPACE},
        }
    ]
    subject = {"kind": "ServiceAccount", "name": OPERATOR_SA, "namespace": OPERATOR_NAMESPACE}
    for controller in CONTROLLERS:
        documents.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": f"{OPERATOR_SA}-{controller}"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": f"infometis-{controller}",
                },
                "subjects": [subject],
            }
        )
        documents.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": f"{OPERATOR_SA}-{controller}-leader-election", "namespace": OPERATOR_NAMESPACE},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": f"infometis-{controller}-leader-election",
                },
                "subjects": [subject],
            }
        )
    return "\n---\n".join(json.dumps(document) for document in documents)


def service_account_kubeconfig(path: Path, account: str, namespace: str = OPERATOR_NAMESPACE) -> None:
    """A kubeconfig that authenticates as a ServiceAccount."""
    token = kubectl("create", "token", account, "-n", namespace, "--duration", "24h").stdout.strip()
    cluster = client.Configuration.get_default_copy()
    ca = base64.b64encode(Path(cluster.ssl_ca_cert).read_bytes()).decode()
    path.write_text(
        f"""apiVersion: v1
kind: Config
clusters: [{{name: local, cluster: {{server: "{cluster.host}", certificate-authority-data: {ca}}}}}]
users: [{{name: operator, user: {{token: "{token}"}}}}]
contexts: [{{name: operator, context: {{cluster: local, user: operator}}}}]
current-context: operator
"""
    )


@dataclass
class RunningOperator:
    process: subprocess.Popen[bytes]
    log_path: Path
    metrics_url: str
    kubeconfig: Path  # the operator's ServiceAccount credentials
    health_url: str  # /healthz and /readyz below it

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def probe(self, path: str) -> tuple[int, dict[str, Any]]:
        """GET /healthz or /readyz: the status code and the JSON body (or the text, if it is not JSON)."""
        try:
            with urllib.request.urlopen(self.health_url + path, timeout=5) as response:
                status, text = response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            status, text = error.code, error.read().decode()
        try:
            return status, json.loads(text)
        except ValueError:
            return status, {"text": text}

    def wait_probe(self, path: str, status: int, timeout: float = 30) -> dict[str, Any]:
        """The body of `path` once it answers `status`."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                answer, body = self.probe(path)
            except urllib.error.URLError as error:  # not serving yet (the operator is starting)
                answer, body = 0, {"error": str(error)}
            if answer == status:
                return body
            if time.monotonic() > deadline:
                raise AssertionError(f"{path} did not answer {status} within {timeout:.0f}s; last: {answer} {body}")
            time.sleep(0.25)


_operators: list[RunningOperator] = []


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    """A failing test shows the operator's recent log beside its own error."""
    report: pytest.TestReport = yield
    if report.failed and _operators:
        log = _operators[0].log()
        report.sections.append(("operator log (last 60 lines)", "\n".join(log.splitlines()[-60:])))
        if "Traceback" in log:
            # Last, so that output cut to its end still shows them.
            report.sections.append(("operator tracebacks (whole log)", tracebacks(log)))
    return report


LOG_RECORD = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")


def tracebacks(log: str) -> str:
    """Each logged traceback with the record that carried it: what a failure shows, even where only the end of
    the output is kept (the whole log is in the report's section)."""
    blocks: list[list[str]] = []
    lines = log.splitlines()
    for number, line in enumerate(lines):
        if line.startswith("Traceback"):
            block = lines[max(number - 1, 0) : number + 1]
            for following in lines[number + 1 :]:
                if LOG_RECORD.match(following):
                    break
                block.append(following)
            blocks.append(block)
    return "\n\n".join("\n".join(block) for block in blocks)


@pytest.fixture(scope="session")
def operator(stack: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningOperator]:
    kubectl("apply", "-k", str(REPO / "crds"))
    for crd in ("kafkatopics", "elasticsearchindices", "nififlows", "changeapprovals"):
        kubectl("wait", "--for=condition=Established", f"crd/{crd}.infometis.io", "--timeout=60s")
    folder = tmp_path_factory.mktemp("operator")
    kubeconfig = folder / "kubeconfig"
    kubectl("apply", "-k", str(REPO / "config" / "kustomize" / "base" / "rbac"))
    kubectl("apply", "-k", str(REPO / "config" / "kustomize" / "base" / "approval"))
    kubectl("apply", "-f", "-", stdin=_test_identity())
    service_account_kubeconfig(kubeconfig, OPERATOR_SA)
    log_path = folder / "operator.log"
    policy = folder / "tenancy.yaml"
    policy.write_text(TENANCY_POLICY)
    metrics_port, health_port = _free_port(), _free_port()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable, "-m", "controllers",
                "--resync-interval", f"{RESYNC_SECONDS}s",
                "--metrics-port", str(metrics_port),
                "--health-port", str(health_port),
                "--log-level", "DEBUG",  # so every test also checks what DEBUG shows
                "--tenancy-policy", str(policy),
            ],
            cwd=REPO,
            env={**os.environ, "KUBECONFIG": str(kubeconfig)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    running = RunningOperator(
        process, log_path, f"http://127.0.0.1:{metrics_port}/metrics", kubeconfig, f"http://127.0.0.1:{health_port}"
    )
    _operators.append(running)
    wait_for(lambda: "starting:" in running.log() or process.poll() is not None, timeout=30, what="operator start")
    assert process.poll() is None, f"the operator exited at start:\n{running.log()}"
    yield running
    before_stop = len(running.log())
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
    stopping = running.log()[before_stop:]
    assert "Traceback" not in stopping, f"the operator logged an unexpected error at shutdown:\n{tracebacks(stopping)}"


@pytest.fixture(autouse=True)
def no_traceback_from_this_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """The test that makes the operator log a traceback fails, not the session's teardown."""
    if "operator" not in request.fixturenames:
        yield
        return
    running: RunningOperator = request.getfixturevalue("operator")
    start = len(running.log())
    yield
    logged = running.log()[start:]
    assert "Traceback" not in logged, f"the operator logged an unexpected error during this test:\n{tracebacks(logged)}"


@pytest.fixture
def session_operator_paused(operator: RunningOperator) -> Iterator[None]:
    """Only the operator under test acts on the test's namespace meanwhile."""
    os.kill(operator.process.pid, signal.SIGSTOP)
    yield
    os.kill(operator.process.pid, signal.SIGCONT)


def start_operator(operator: RunningOperator, namespace: str, log: Path, *extra_args: str) -> subprocess.Popen[bytes]:
    """An operator of the test's own for one namespace (pause the session's meanwhile)."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [
                sys.executable, "-m", "controllers",
                "--namespace", namespace,
                "--resync-interval", f"{RESYNC_SECONDS}s",
                "--metrics-port", "0",
                "--health-port", "0",
                *extra_args,
            ],
            cwd=REPO,
            env={**os.environ, "KUBECONFIG": str(operator.kubeconfig)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
