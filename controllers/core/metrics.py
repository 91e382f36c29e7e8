"""Prometheus metrics, served on --metrics-port.

They are how the benchmark counts API-server writes and service requests,
and how an operator's owner sees what it does without reading logs. Each is
recorded in one place: reconciles, conditions, drift and time to Ready in the
core's controller, queue depth and retries in the work queue, leadership in
the leader elector, service requests in each service edge's one request
function (through `service_request`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from prometheus_client import Counter, Gauge, Histogram

# Past the longest a reconcile may wait on a service: Kafka requests time out at 15 s,
# search and NiFi requests at 30 s, NiFi's asynchronous requests are polled for 120 s.
DURATION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300)
# A service request ends by its client's timeout (15 s Kafka, 30 s search and NiFi).
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 20, 30, 60)

RECONCILES = Counter(
    "infometis_reconciles_total", "Reconciles finished, by kind and resulting phase.", ["kind", "phase"]
)
RECONCILE_SECONDS = Histogram(
    "infometis_reconcile_duration_seconds", "Time of one reconcile, by kind.", ["kind"], buckets=DURATION_BUCKETS
)
GENERATION_READY_SECONDS = Histogram(
    "infometis_generation_ready_seconds",
    "Time from this process first seeing a new generation of an object to the object being Ready (Succeeded) at "
    "that generation, by kind: the time to reach consistency.",
    ["kind"],
    buckets=DURATION_BUCKETS,
)
DRIFT_DETECTED = Counter(
    "infometis_drift_detected_total",
    "Changes made outside the objects found on the services (each announced by a DriftCorrected or DriftDetected "
    "Event), by kind.",
    ["kind"],
)
DRIFT_CORRECTED = Counter(
    "infometis_drift_corrected_total", "Changes made outside the objects that were undone, by kind.", ["kind"]
)
OBJECTS_BY_CONDITION = Gauge(
    "infometis_objects_by_condition",
    "Objects watched, by kind and each condition's type, status and reason, as last seen or written.",
    ["kind", "type", "status", "reason"],
)
KUBE_WRITES = Counter(
    "infometis_kube_writes_total",
    "Writes sent to the Kubernetes API for the objects (status, finalizers, Events; not the Lease), by method and "
    "response code.",
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
SERVICE_REQUEST_SECONDS = Histogram(
    "infometis_service_request_duration_seconds",
    "Time of one request to a service (Kafka: one Admin operation for a batch), by service and operation.",
    ["service", "operation"],
    buckets=REQUEST_BUCKETS,
)
SERVICE_REQUEST_ERRORS = Counter(
    "infometis_service_request_errors_total",
    "Failed service requests (Kafka: per topic in a batch), by service, operation and code: the HTTP status, "
    "Kafka's error name, or 'unavailable' when the service did not answer.",
    ["service", "operation", "code"],
)
WATCH_MISSED = Counter(
    "infometis_watch_missed_changes_total",
    "Object changes two listings showed that the watch never brought, taken up from the listing, by kind "
    "(more than 0: the watch has stopped, and changes wait for a relist until the operator restarts).",
    ["kind"],
)
QUEUE_DEPTH = Gauge("infometis_workqueue_depth", "Objects waiting in the work queue, by kind.", ["kind"])
QUEUE_RETRIES = Counter(
    "infometis_workqueue_retries_total", "Objects queued again with backoff after a failed pass, by kind.", ["kind"]
)
UNMANAGED = Gauge(
    "infometis_unmanaged_resources",
    "Resources on a service instance that no object manages (found at each resync, never touched).",
    ["kind", "instance"],
)
LEADER = Gauge(
    "infometis_leader",
    "1 while this process reconciles (holds the Lease, or runs without --leader-election), 0 while it waits.",
    ["lease"],
)


@contextmanager
def service_request(service: str, operation: str, code_of: Callable[[Exception], str]) -> Iterator[None]:
    """Time one service request and count its failure by the code `code_of` gives the exception."""
    started = time.monotonic()
    try:
        yield
    except asyncio.CancelledError:
        raise
    except Exception as error:
        SERVICE_REQUEST_ERRORS.labels(service, operation, code_of(error)).inc()
        raise
    finally:
        SERVICE_REQUEST_SECONDS.labels(service, operation).observe(time.monotonic() - started)
