"""Operator settings: every one a command-line flag and an environment variable."""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controllers.core.connections import ConnectionSchema
from controllers.core.logs import LOG_FORMATS

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
    controllers: tuple[str, ...]
    namespaces: tuple[str, ...]
    resync_interval: float
    # Per service (ConnectionSchema.service): the default connection's properties, if one is configured.
    default_connections: Mapping[str, Mapping[str, str]]
    max_concurrent_reconciles: int
    batch_linger: float
    metrics_port: int
    health_port: int
    log_level: str
    log_format: str
    tenancy_policy: Path | None
    leader_election: bool
    leader_election_namespace: str | None


@dataclass(frozen=True)
class _Option:
    flag: str
    env: str
    default: str | None
    parse: Callable[[str], Any]
    help: str


def _boolean(text: str) -> bool:
    if text.strip().lower() not in ("true", "false"):
        raise argparse.ArgumentTypeError(f"not true or false: {text!r}")
    return text.strip().lower() == "true"


def _names(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


_OPTIONS = (
    _Option(
        "--controllers", "INFOMETIS_CONTROLLERS", "kafka,elasticsearch,nifi", _names,
        "the services whose kinds this process runs, comma-separated (kafka: KafkaTopic; elasticsearch: "
        "ElasticsearchIndex, on Elasticsearch or OpenSearch; nifi: NiFiFlow)",
    ),
    _Option(
        "--resync-interval", "INFOMETIS_RESYNC_INTERVAL", "30s", parse_duration,
        "how often every object is compared with its service to catch drift",
    ),
    _Option(
        "--max-concurrent-reconciles", "INFOMETIS_MAX_CONCURRENT_RECONCILES", "500", int,
        "objects reconciled at once, for changes and for the resync each; their service calls are batched together",
    ),
    _Option(
        "--batch-linger", "INFOMETIS_BATCH_LINGER", "50ms", parse_duration,
        "the longest a service call waits for the same call in flight to return, to join the next batch",
    ),
    _Option("--metrics-port", "INFOMETIS_METRICS_PORT", "8080", int, "Prometheus /metrics port, 0 to disable"),
    _Option(
        "--health-port", "INFOMETIS_HEALTH_PORT", "8081", int,
        "liveness /healthz and readiness /readyz port, 0 to disable",
    ),
    _Option(
        "--tenancy-policy", "INFOMETIS_TENANCY_POLICY", None, Path,
        "a YAML file of what each namespace may manage (see README, Tenancy); none: every namespace may manage "
        "any resource",
    ),
    _Option("--log-level", "INFOMETIS_LOG_LEVEL", "INFO", str.upper, "DEBUG, INFO, WARNING or ERROR"),
    _Option(
        "--log-format", "INFOMETIS_LOG_FORMAT", "text", str.lower,
        "text (for people) or json (one JSON object per line, for log collectors)",
    ),
    _Option(
        "--leader-election", "INFOMETIS_LEADER_ELECTION", "false", _boolean,
        "true: reconcile only while holding the Lease infometis-<controllers joined by '-'>, so that several "
        "replicas can run and one works",
    ),
    _Option(
        "--leader-election-namespace", "POD_NAMESPACE", None, str,
        "the namespace of the Lease (needed with --leader-election true)",
    ),
)  # fmt: skip


def parse_settings(argv: Sequence[str] | None = None, schemas: Sequence[ConnectionSchema] = ()) -> Settings:
    """The settings; `schemas` add each service's default-connection flag (the core knows no service)."""
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
    for option in _OPTIONS:
        # A string default goes through `type` like a flag would, so a bad
        # environment value is a clean usage error, not a traceback.
        parser.add_argument(
            option.flag,
            type=option.parse,
            default=os.environ.get(option.env) or option.default,
            help=f"{option.help} (env {option.env}; default {option.default or 'none'})",
        )
    for schema in schemas:
        parser.add_argument(
            schema.default_flag,
            dest=f"default_{schema.service}",
            default=os.environ.get(schema.default_env) or None,
            help=f"the default {schema.service} connection's {schema.default_key}, for objects without "
            f"spec.clusterRef (env {schema.default_env}; default none: such objects are Stalled)",
        )
    args = parser.parse_args(argv)
    if args.resync_interval < 1:
        parser.error("--resync-interval must be at least 1s")
    if args.max_concurrent_reconciles < 1:
        parser.error("--max-concurrent-reconciles must be at least 1")
    if args.log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        parser.error(f"--log-level must be DEBUG, INFO, WARNING or ERROR, not {args.log_level}")
    if args.log_format not in LOG_FORMATS:
        parser.error(f"--log-format must be {' or '.join(LOG_FORMATS)}, not {args.log_format}")
    if args.leader_election and not args.leader_election_namespace:
        parser.error("--leader-election true needs --leader-election-namespace (or POD_NAMESPACE)")
    watched = args.namespaces or [n for n in os.environ.get("WATCH_NAMESPACE", "").split(",") if n]
    if not args.controllers:
        parser.error("--controllers needs at least one name")
    return Settings(
        controllers=args.controllers,
        namespaces=tuple(watched),
        resync_interval=args.resync_interval,
        default_connections={
            schema.service: {schema.default_key: getattr(args, f"default_{schema.service}")}
            for schema in schemas
            if getattr(args, f"default_{schema.service}")
        },
        max_concurrent_reconciles=args.max_concurrent_reconciles,
        batch_linger=args.batch_linger,
        metrics_port=args.metrics_port,
        health_port=args.health_port,
        log_level=args.log_level,
        log_format=args.log_format,
        tenancy_policy=args.tenancy_policy,
        leader_election=args.leader_election,
        leader_election_namespace=args.leader_election_namespace,
    )
