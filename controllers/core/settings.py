"""Operator settings: every one a command-line flag and an environment variable."""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

_DURATION = re.compile(r"^(?P<value>\d+(?:\.\d+)?)(?P<unit>ms|s|m|h)?$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(text: str) -> float:
    """'30s', '2m', '50ms' or plain seconds ('30') -> seconds."""
    match = _DURATION.match(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (use e.g. 30s, 2m, 50ms)")
    return float(match["value"]) * _UNIT_SECONDS[match["unit"]]


@dataclass(frozen=True)
class Settings:
    namespaces: tuple[str, ...]
    resync_interval: float
    kafka_bootstrap_servers: str | None
    max_concurrent_reconciles: int
    batch_linger: float
    metrics_port: int
    health_port: int
    log_level: str


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def parse_settings(argv: Sequence[str] | None = None) -> Settings:
    parser = argparse.ArgumentParser(
        prog="python -m controllers",
        description=(
            "Run the InfoMetis operator (KafkaTopic) against the cluster KUBECONFIG points to, "
            "or in-cluster with its ServiceAccount. Every flag can also be set by the environment "
            "variable named in its help."
        ),
    )
    parser.add_argument(
        "--namespace",
        action="append",
        dest="namespaces",
        help="watch only this namespace; repeat for several (env WATCH_NAMESPACE, comma-separated; "
        "default: all namespaces)",
    )
    parser.add_argument(
        "--resync-interval",
        type=parse_duration,
        default=parse_duration(_env("INFOMETIS_RESYNC_INTERVAL", "30s") or "30s"),
        help="how often every object is compared with its service to catch drift "
        "(env INFOMETIS_RESYNC_INTERVAL, default 30s)",
    )
    parser.add_argument(
        "--kafka-bootstrap-servers",
        default=_env("KAFKA_BOOTSTRAP_SERVERS"),
        help="the default Kafka cluster for KafkaTopics without spec.clusterRef "
        "(env KAFKA_BOOTSTRAP_SERVERS; default: none, such objects are Stalled)",
    )
    parser.add_argument(
        "--max-concurrent-reconciles",
        type=int,
        default=int(_env("INFOMETIS_MAX_CONCURRENT_RECONCILES", "500") or "500"),
        help="objects reconciled at once; their service calls are batched together "
        "(env INFOMETIS_MAX_CONCURRENT_RECONCILES, default 500)",
    )
    parser.add_argument(
        "--batch-linger",
        type=parse_duration,
        default=parse_duration(_env("INFOMETIS_BATCH_LINGER", "50ms") or "50ms"),
        help="how long a service call waits to collect other objects' work into one request "
        "(env INFOMETIS_BATCH_LINGER, default 50ms)",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=int(_env("INFOMETIS_METRICS_PORT", "8080") or "8080"),
        help="port of the Prometheus /metrics endpoint, 0 to disable (env INFOMETIS_METRICS_PORT, default 8080)",
    )
    parser.add_argument(
        "--health-port",
        type=int,
        default=int(_env("INFOMETIS_HEALTH_PORT", "8081") or "8081"),
        help="port of the /healthz liveness endpoint, 0 to disable (env INFOMETIS_HEALTH_PORT, default 8081)",
    )
    parser.add_argument(
        "--log-level",
        default=_env("INFOMETIS_LOG_LEVEL", "INFO"),
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="(env INFOMETIS_LOG_LEVEL, default INFO)",
    )
    args = parser.parse_args(argv)
    if args.resync_interval < 1:
        parser.error("--resync-interval must be at least 1s")
    if args.max_concurrent_reconciles < 1:
        parser.error("--max-concurrent-reconciles must be at least 1")
    watched = args.namespaces or [n for n in (_env("WATCH_NAMESPACE", "") or "").split(",") if n]
    return Settings(
        namespaces=tuple(watched),
        resync_interval=args.resync_interval,
        kafka_bootstrap_servers=args.kafka_bootstrap_servers,
        max_concurrent_reconciles=args.max_concurrent_reconciles,
        batch_linger=args.batch_linger,
        metrics_port=args.metrics_port,
        health_port=args.health_port,
        log_level=args.log_level,
    )
