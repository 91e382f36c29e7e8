"""Prometheus metrics, served on --metrics-port.

They are how the benchmark counts API-server writes and service requests,
and how an operator's owner sees what it does without reading logs.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RECONCILES = Counter(
    "infometis_reconciles_total", "Reconciles finished, by kind and resulting phase.", ["kind", "phase"]
)
RECONCILE_SECONDS = Histogram("infometis_reconcile_duration_seconds", "Time of one reconcile, by kind.", ["kind"])
KUBE_WRITES = Counter(
    "infometis_kube_writes_total",
    "Writes sent to the Kubernetes API, by method and response code.",
    ["method", "code"],
)
SERVICE_CALLS = Counter(
    "infometis_service_calls_total",
    "Batched calls to a service, by service and operation.",
    ["service", "operation"],
)
SERVICE_CALL_ITEMS = Counter(
    "infometis_service_call_items_total", "Objects covered by batched service calls.", ["service", "operation"]
)
SERVICE_REQUESTS = Counter(
    "infometis_service_protocol_requests_total",
    "Protocol requests sent to a service, by request type (Kafka: from librdkafka statistics).",
    ["service", "request"],
)
UNMANAGED = Gauge(
    "infometis_unmanaged_resources",
    "Resources on a service instance that no object manages (found at each resync, never touched).",
    ["kind", "instance"],
)
