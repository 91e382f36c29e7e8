"""The composition root: build every part from the settings and run them."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import kopf
import prometheus_client

from controllers.core import metrics
from controllers.core.connections import Connection, Connections
from controllers.core.controller import Controller
from controllers.core.health import PROBE_TIMEOUT_SECONDS, Health, Reachability, serve
from controllers.core.kind import Kind
from controllers.core.kopf_retries import RETRY_FOREVER, quiet_unavailable_retries
from controllers.core.kube import KubeApi
from controllers.core.leader import LeaderElector
from controllers.core.logs import handler
from controllers.core.permissions import Access, Permissions, required_access
from controllers.core.policy import PolicyFileInvalid, load_policies
from controllers.core.references import References
from controllers.core.settings import Settings
from controllers.core.watch import NoDiffBase, watch, watch_approvals
from controllers.elasticsearchindex.client import search_clients
from controllers.elasticsearchindex.connection import SEARCH_CONNECTION
from controllers.elasticsearchindex.kind import ElasticsearchIndexKind
from controllers.elasticsearchindex.model import ElasticsearchIndexSpec, ElasticsearchIndexStatus
from controllers.kafkatopic.admin import kafka_admins
from controllers.kafkatopic.connection import KAFKA_CONNECTION
from controllers.kafkatopic.kind import KafkaTopicKind
from controllers.kafkatopic.model import KafkaTopicSpec, KafkaTopicStatus
from controllers.nififlow.client import nifi_clients
from controllers.nififlow.connection import NIFI_CONNECTION
from controllers.nififlow.kind import NiFiFlowKind
from controllers.nififlow.model import NiFiFlowSpec, NiFiFlowStatus

log = logging.getLogger("infometis")


# How the process ends when it loses the Lease (client-go's leader exits the same way).
LOST_LEADERSHIP_EXIT_CODE = 1


def configure_logging(level: str, log_format: str = "text") -> None:
    logging.basicConfig(level=level, handlers=[handler(log_format)])
    logging.captureWarnings(True)  # a library's warning is a log line too (one JSON object with --log-format json)
    # kopf narrates every watch event at INFO; its warnings and errors still show.
    logging.getLogger("kopf").setLevel(max(logging.WARNING, logging.getLevelName(level)))
    # Client-library chatter repeats every retry; conditions carry the failure
    # (with the client's last error) instead. Shown with --log-level DEBUG, but
    # kafka-python never below INFO: its debug records print its configuration,
    # password included. (librdkafka prints debug records only with its `debug`
    # property set, which no connection may set.)
    debug = level == "DEBUG"
    logging.getLogger("infometis.librdkafka").setLevel(logging.DEBUG if debug else logging.CRITICAL)
    logging.getLogger("kafka").setLevel(logging.INFO if debug else logging.CRITICAL)
    # The search clients log every request, and each failed one with a traceback, which a
    # condition already says in one sentence.
    for name in ("elastic_transport", "elasticsearch", "opensearch"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    quiet_unavailable_retries()  # the API server probe logs an outage once, not kopf at every retry


def _kopf_settings() -> kopf.OperatorSettings:
    settings = kopf.OperatorSettings()
    settings.posting.enabled = False  # our Events are deliberate, not log lines
    settings.scanning.disabled = True  # resources are named exactly; no CRD/namespace listing RBAC needed
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.networking.error_backoffs = RETRY_FOREVER  # outlast any API server outage, see kopf_retries
    settings.persistence.diffbase_storage = NoDiffBase()
    return settings


Loop = Callable[[], Coroutine[Any, Any, None]]
Probe = Callable[[], Awaitable[object]]


@dataclass(frozen=True)
class Service:
    """What enabling one service's controller (--controllers NAME) adds to the process."""

    kinds: tuple[Kind[Any, Any], ...]
    loops: Mapping[str, Loop]  # named background loops; liveness fails if one stops
    readiness: Mapping[str, tuple[Reachability, Probe]]  # named dependencies, each with its probe
    close: Callable[[], None]
    reads: tuple[str, ...] = ("secrets",)  # the core objects its kinds get (connection Secrets and more)


@dataclass(frozen=True)
class Shared:
    """What the kinds read from Kubernetes besides their own objects: connection Secrets, referenced keys."""

    connections: Connections
    references: References


def kafka_service(settings: Settings, shared: Shared) -> Service:
    admins = kafka_admins(linger=settings.batch_linger)
    default = settings.default_connections.get(KAFKA_CONNECTION.service)
    topics: Kind[KafkaTopicSpec, KafkaTopicStatus] = KafkaTopicKind(shared.connections, admins, default)
    readiness: dict[str, tuple[Reachability, Probe]] = {}
    if default:
        connection = Connection("default", default, KAFKA_CONNECTION.secret)
        readiness["kafka-default"] = (
            Reachability("Kafka (default connection)", logger=log),
            lambda: admins.for_connection(connection).probe(PROBE_TIMEOUT_SECONDS),
        )
    return Service((topics,), {"kafka-callbacks": admins.maintain}, readiness, admins.close)


def elasticsearch_service(settings: Settings, shared: Shared) -> Service:
    clients = search_clients(linger=settings.batch_linger)
    default = settings.default_connections.get(SEARCH_CONNECTION.service)
    indices: Kind[ElasticsearchIndexSpec, ElasticsearchIndexStatus] = ElasticsearchIndexKind(
        shared.connections, clients, default
    )
    readiness: dict[str, tuple[Reachability, Probe]] = {}
    if default:
        connection = Connection("default", default, SEARCH_CONNECTION.secret)
        readiness["elasticsearch-default"] = (
            Reachability("Elasticsearch (default connection)", logger=log),
            lambda: clients.for_connection(connection).probe(PROBE_TIMEOUT_SECONDS),
        )
    return Service((indices,), {"elasticsearch-clients": clients.maintain}, readiness, clients.close)


def nifi_service(settings: Settings, shared: Shared) -> Service:
    clients = nifi_clients(linger=settings.batch_linger)
    default = settings.default_connections.get(NIFI_CONNECTION.service)
    flows: Kind[NiFiFlowSpec, NiFiFlowStatus] = NiFiFlowKind(shared.connections, shared.references, clients, default)
    readiness: dict[str, tuple[Reachability, Probe]] = {}
    if default:
        connection = Connection("default", default, NIFI_CONNECTION.secret)
        readiness["nifi-default"] = (
            Reachability("NiFi (default connection)", logger=log),
            lambda: clients.for_connection(connection).probe(PROBE_TIMEOUT_SECONDS),
        )
    # Flow definitions may come from ConfigMap keys.
    return Service((flows,), {"nifi-clients": clients.maintain}, readiness, clients.close, ("secrets", "configmaps"))


# One entry per service; the seed design runs one reconciler per service, and each
# Deployment enables its own (python -m controllers --controllers kafka).
SERVICES: dict[str, Callable[[Settings, Shared], Service]] = {
    "kafka": kafka_service,
    "elasticsearch": elasticsearch_service,
    "nifi": nifi_service,
}
# Each service's connection Secrets, and the flag of its default connection.
CONNECTION_SCHEMAS = (KAFKA_CONNECTION, SEARCH_CONNECTION, NIFI_CONNECTION)
# Every kind's section of the tenancy policy, run here or not: each controller's Deployment mounts
# the same file, and a section for another Deployment's kind is still checked for typos.
POLICY_MODELS = {
    kind.resource.plural: kind.policy_model for kind in (KafkaTopicKind, ElasticsearchIndexKind, NiFiFlowKind)
}


async def _may(kube: KubeApi, access: Access) -> bool:
    return await kube.may(access.verb, access.group, access.resource, access.subresource, access.namespace)


async def run(settings: Settings) -> None:
    configure_logging(settings.log_level, settings.log_format)
    unknown = sorted(set(settings.controllers) - SERVICES.keys())
    if unknown:
        raise SystemExit(f"--controllers: unknown {', '.join(unknown)}; known: {', '.join(SERVICES)}")
    kube = KubeApi.from_environment()
    connections = Connections(kube, ttl=settings.resync_interval)
    shared = Shared(connections, References(kube))
    services = [SERVICES[name](settings, shared) for name in settings.controllers]
    kinds = [kind for service in services for kind in service.kinds]
    try:
        policies = load_policies(settings.tenancy_policy, POLICY_MODELS)
    except PolicyFileInvalid as error:
        raise SystemExit(str(error)) from None
    lease = lease_name(settings.controllers)
    elector: LeaderElector | None = None
    if settings.leader_election:
        assert settings.leader_election_namespace is not None  # parse_settings requires it
        elector = LeaderElector(
            kube, namespace=settings.leader_election_namespace, name=lease, identity=holder_identity()
        )
    controllers = [
        Controller(
            kind,
            kube,
            resync_interval=settings.resync_interval,
            max_concurrent=settings.max_concurrent_reconciles,
            namespaces=settings.namespaces,
            policy=policies[kind.resource.plural],
            leading=elector.leading if elector is not None else lambda: True,
        )
        for kind in kinds
    ]

    registry = kopf.OperatorRegistry()
    for controller in controllers:
        watch(registry, controller)
    watch_approvals(registry, controllers)

    # The same credential loaders as the writer: KUBECONFIG, else in-cluster.
    kopf.on.login(registry=registry)(kopf.login_via_client)

    if settings.metrics_port:
        prometheus_client.start_http_server(settings.metrics_port)
    log.info(
        "starting: controllers=%s namespaces=%s resync=%.0fs default connections=%s",
        ",".join(settings.controllers),
        ",".join(settings.namespaces) or "all",
        settings.resync_interval,
        ", ".join(f"{service} {dict(properties)}" for service, properties in settings.default_connections.items())
        or "none",
    )
    health = Health()
    api_server = Reachability("Kubernetes API server", logger=log)
    health.add_readiness("kubernetes-api", api_server.check)
    # The probes and the service clients run from the start: a process waiting for the Lease is alive,
    # and ready when it could take over.
    loops: dict[str, Loop] = {"kubernetes-api-probe": lambda: api_server.probe_forever(kube.ping)}
    for service in services:
        for kind in service.kinds:
            # A missing role shows as not Ready, naming the denied calls, never as a restart loop.
            permissions = Permissions(
                f"the {kind.resource.kind} controller",
                required_access(kind.resource, service.reads, settings.namespaces),
                partial(_may, kube),
                logger=log,
            )
            health.add_readiness(f"{kind.resource.kind.lower()}-permissions", permissions.check)
            loops[f"{kind.resource.kind.lower()}-permissions-check"] = permissions.check_forever
        loops.update(service.loops)
        for name, (reachability, probe) in service.readiness.items():
            health.add_readiness(name, reachability.check)
            # The timeout is a backstop: the probe gives up first, in the client's words.
            loops[f"{name}-probe"] = partial(reachability.probe_forever, probe, timeout=2 * PROBE_TIMEOUT_SECONDS)
    background = _keep_running(health, loops)
    if settings.health_port:
        unmanaged = {c.kind.resource.plural: c.unmanaged for c in controllers}
        background.append(asyncio.create_task(serve(health, settings.health_port, unmanaged)))

    if elector is not None:
        if not await _lead_unless_stopped(elector):
            await _stop(background, services, kube, elector)
            return
        renewing = asyncio.create_task(elector.keep_leading(), name="leader-election")
        renewing.add_done_callback(_exit_when_no_longer_leading)
        background.append(renewing)  # stopped before the Lease is released, so it cannot take it back
    else:
        metrics.LEADER.labels(lease).set(1)

    controller_loops: dict[str, Loop] = {}
    for controller in controllers:
        name = controller.kind.resource.kind.lower()
        controller_loops[f"{name}-worker"] = partial(controller.run, urgent=True)
        controller_loops[f"{name}-resync-worker"] = partial(controller.run, urgent=False)
        controller_loops[f"{name}-resync"] = controller.resync_forever
        controller_loops[f"{name}-unmanaged-report"] = controller.report_unmanaged_forever
    # Created before kopf starts, so kopf leaves them to us at shutdown.
    background += _keep_running(health, controller_loops)
    try:
        await kopf.operator(
            registry=registry,
            settings=_kopf_settings(),
            standalone=True,
            clusterwide=not settings.namespaces,
            namespaces=settings.namespaces,
        )
    finally:
        await _stop(background, services, kube, elector)


def lease_name(controllers: tuple[str, ...]) -> str:
    """One Lease per set of controllers: the Kafka Deployment's replicas elect among themselves."""
    return "infometis-" + "-".join(controllers)


def holder_identity() -> str:
    """The Pod's name in a cluster; elsewhere the host and process, unique among the candidates."""
    return os.environ.get("POD_NAME") or f"{socket.gethostname()}_{os.getpid()}"


def _keep_running(health: Health, loops: Mapping[str, Loop]) -> list[asyncio.Task[Any]]:
    tasks = [asyncio.create_task(loop(), name=name) for name, loop in loops.items()]
    for task in tasks:
        health.keep_running(task.get_name(), task)
    return tasks


async def _lead_unless_stopped(elector: LeaderElector) -> bool:
    """Wait for the Lease; False if SIGINT or SIGTERM comes first.

    kopf handles those signals once it runs. It is given no stop flag of ours: it would wait 5 s at
    shutdown for the task watching such a flag, delaying the release of the Lease.
    """
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signal_number, stop.set)
    acquiring = asyncio.create_task(elector.acquire())
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait((acquiring, stopping), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for signal_number in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signal_number)  # until kopf takes them: the default, which ends the process
        for task in (acquiring, stopping):
            task.cancel()
        await asyncio.gather(acquiring, stopping, return_exceptions=True)
    return not stop.is_set() and not acquiring.cancelled()


def _exit_when_no_longer_leading(renewing: asyncio.Task[None]) -> None:
    """The Lease could not be renewed in time: stop at once, before another replica may take it, so
    that two never reconcile together. No graceful shutdown: its handlers could still write."""
    if renewing.cancelled():
        return  # the operator is stopping, and releases the Lease
    log.critical("no longer leading; exiting so that only the next leader reconciles", exc_info=renewing.exception())
    logging.shutdown()
    os._exit(LOST_LEADERSHIP_EXIT_CODE)


async def _stop(
    background: list[asyncio.Task[Any]], services: list[Service], kube: KubeApi, elector: LeaderElector | None = None
) -> None:
    for task in background:
        task.cancel()
    # Each ends cancelled; one that failed earlier was logged (and failed /healthz) when it did.
    await asyncio.gather(*background, return_exceptions=True)
    for service in services:
        service.close()
    if elector is not None:
        await elector.release()  # after the work has stopped: the next leader starts at once
    await kube.close()
    log.info("stopped")
