"""The composition root: build every part from the settings and run them."""

from __future__ import annotations

import asyncio
import logging

import kopf
import prometheus_client

from controllers.core.connections import Connection, Connections
from controllers.core.controller import Controller
from controllers.core.health import PROBE_TIMEOUT_SECONDS, Health, Reachability, serve
from controllers.core.kopf_retries import RETRY_FOREVER, quiet_unavailable_retries
from controllers.core.kube import KubeApi
from controllers.core.policy import load_policies
from controllers.core.settings import Settings
from controllers.kafkatopic import handlers as kafka_topic_handlers
from controllers.kafkatopic.admin import KafkaAdmins
from controllers.kafkatopic.model import RESOURCE
from controllers.kafkatopic.reconciler import KafkaTopicKind

log = logging.getLogger("infometis")


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    # kopf narrates every watch event at INFO; its warnings and errors still show.
    logging.getLogger("kopf").setLevel(max(logging.WARNING, logging.getLevelName(level)))
    # Client-library chatter repeats every retry; conditions carry the failure
    # (with the client's last error) instead. Shown with --log-level DEBUG.
    quiet = logging.DEBUG if level == "DEBUG" else logging.CRITICAL
    for library in ("infometis.librdkafka", "kafka"):
        logging.getLogger(library).setLevel(quiet)
    quiet_unavailable_retries()  # the API server probe logs an outage once, not kopf at every retry


def _kopf_settings() -> kopf.OperatorSettings:
    settings = kopf.OperatorSettings()
    settings.posting.enabled = False  # our Events are deliberate, not log lines
    settings.scanning.disabled = True  # resources are named exactly; no CRD/namespace listing RBAC needed
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.networking.error_backoffs = RETRY_FOREVER  # outlast any API server outage, see kopf_retries
    return settings


async def run(settings: Settings) -> None:
    configure_logging(settings.log_level)
    kube = KubeApi.from_environment()
    connections = Connections(kube, ttl=settings.resync_interval)
    admins = KafkaAdmins(linger=settings.batch_linger)
    default_kafka = (
        {"bootstrap.servers": settings.kafka_bootstrap_servers} if settings.kafka_bootstrap_servers else None
    )
    kafka_topic_kind = KafkaTopicKind(connections, admins, default_kafka)
    policies = load_policies(settings.tenancy_policy, {RESOURCE.plural: kafka_topic_kind.policy_model})
    kafka_topics = Controller(
        kafka_topic_kind,
        kube,
        resync_interval=settings.resync_interval,
        max_concurrent=settings.max_concurrent_reconciles,
        namespaces=settings.namespaces,
        policy=policies[RESOURCE.plural],
    )

    registry = kopf.OperatorRegistry()
    kafka_topic_handlers.register(registry, kafka_topics)

    # The same credential loaders as the writer: KUBECONFIG, else in-cluster.
    kopf.on.login(registry=registry)(kopf.login_via_client)

    if settings.metrics_port:
        prometheus_client.start_http_server(settings.metrics_port)
    log.info(
        "starting: namespaces=%s resync=%.0fs default Kafka=%s",
        ",".join(settings.namespaces) or "all",
        settings.resync_interval,
        settings.kafka_bootstrap_servers or "none",
    )
    health = Health()
    api_server = Reachability("Kubernetes API server", logger=log)
    health.add_readiness("kubernetes-api", api_server.check)
    loops = {
        "kafkatopic-worker": kafka_topics.run(),
        "kafkatopic-resync": kafka_topics.resync_forever(),
        "kafka-callbacks": admins.serve_callbacks(),
        "kubernetes-api-probe": api_server.probe_forever(kube.ping),
    }
    if default_kafka:
        kafka = Reachability("Kafka (default connection)", logger=log)
        health.add_readiness("kafka-default", kafka.check)
        default_connection = Connection("default", default_kafka)
        loops["kafka-default-probe"] = kafka.probe_forever(
            lambda: admins.for_connection(default_connection).probe(PROBE_TIMEOUT_SECONDS),
            timeout=2 * PROBE_TIMEOUT_SECONDS,  # a backstop: the probe gives up first, in the client's words
        )
    # Created before kopf starts, so kopf leaves them to us at shutdown.
    background = [asyncio.create_task(loop, name=name) for name, loop in loops.items()]
    for task in background:
        health.keep_running(task.get_name(), task)
    if settings.health_port:
        background.append(asyncio.create_task(serve(health, settings.health_port)))
    try:
        await kopf.operator(
            registry=registry,
            settings=_kopf_settings(),
            standalone=True,
            clusterwide=not settings.namespaces,
            namespaces=settings.namespaces,
        )
    finally:
        for task in background:
            task.cancel()
        # Each ends cancelled; one that failed earlier was logged (and failed /healthz) when it did.
        await asyncio.gather(*background, return_exceptions=True)
        admins.close()
        await kube.close()
        log.info("stopped")
