"""The operator's /metrics move as its objects are created, drift, are corrected and fail.

Scraped from a running operator process of the test's own (Kafka only, one namespace), so the
numbers are this test's alone. Every metric the README lists is checked here.
"""

from __future__ import annotations

import time
from pathlib import Path

from confluent_kafka.admin import AdminClient

from tests.integration.conftest import RunningOperator
from tests.integration.helpers import (
    apply,
    create_secret,
    kafka_topic,
    kubectl,
    patch_spec,
    set_config_out_of_band,
    unique,
    wait_for,
    wait_ready,
    wait_reason,
)
from tests.integration.operators import Process, start

KIND = "KafkaTopic"


def moved(process: Process, name: str, before: float, **labels: str) -> float:
    """The metric's value once it is above `before`."""
    return wait_for(
        lambda: (value := process.metric(name, **labels)) > before and value,
        timeout=60,
        what=f"{name}{labels} above {before}",
    )


def test_metrics_move_as_objects_are_created_drift_are_corrected_and_fail(
    operator: RunningOperator, session_operator_paused: None, namespace: str, tmp_path: Path, kafka_admin: AdminClient
) -> None:
    process = start(operator.kubeconfig, namespace, tmp_path / "operator.log", "--controllers", "kafka")
    try:
        wait_for(lambda: process.probe("/readyz") == 200, timeout=30, what="the operator ready")
        assert process.metric("infometis_leader", lease="infometis-kafka") == 1  # no election: it leads
        assert process.metric("infometis_workqueue_depth", kind=KIND) == 0

        # Created: a reconcile, its duration, a Kafka request, the time to Ready, and its conditions.
        name = unique("metrics")
        apply(namespace, kafka_topic(name, partitions=1, config={"retention.ms": "3600000"}))
        wait_ready(namespace, name)
        assert process.metric("infometis_reconciles_total", kind=KIND, phase="Ready") >= 1
        assert process.metric("infometis_reconcile_duration_seconds_count", kind=KIND) >= 1
        assert process.metric("infometis_generation_ready_seconds_count", kind=KIND) == 1
        assert (
            process.metric(
                "infometis_service_request_duration_seconds_count", service="kafka", operation="create_topics"
            )
            >= 1
        )
        ready = {"kind": KIND, "type": "Ready", "status": "True", "reason": "Succeeded"}
        assert moved(process, "infometis_objects_by_condition", 0, **ready) == 1

        # A new generation: observed once more when Ready at it.
        patch_spec(namespace, name, {"partitions": 2})
        moved(process, "infometis_generation_ready_seconds_count", 1, kind=KIND)

        # Drift: found and corrected, each counted once.
        set_config_out_of_band(kafka_admin, name, "retention.ms", "7200000")
        moved(process, "infometis_drift_corrected_total", 0, kind=KIND)
        assert process.metric("infometis_drift_detected_total", kind=KIND) == 1
        time.sleep(3)  # resyncs that find nothing new count nothing
        assert process.metric("infometis_drift_corrected_total", kind=KIND) == 1

        # A refusal: an error by Kafka's code, and the object counted as Stalled.
        refused = unique("metrics-refused")
        apply(namespace, kafka_topic(refused, partitions=1, config={"retention.ms": "abc"}))
        wait_reason(namespace, refused, "False", "InvalidConfig")
        assert process.metric("infometis_service_request_errors_total", service="kafka", code="INVALID_CONFIG") >= 1
        stalled = {"kind": KIND, "type": "Stalled", "status": "True", "reason": "InvalidConfig"}
        assert moved(process, "infometis_objects_by_condition", 0, **stalled) == 1
        assert process.metric("infometis_objects_by_condition", **ready) == 1

        # A transient failure: retried with backoff, and the request errors counted.
        create_secret(namespace, "nowhere", {"bootstrap.servers": "127.0.0.1:1"})
        unreachable = unique("metrics-unreachable")
        apply(namespace, kafka_topic(unreachable, partitions=1, clusterRef={"name": "nowhere"}))
        wait_reason(namespace, unreachable, "False", "ProgressingWithRetry", timeout=90)
        assert moved(process, "infometis_workqueue_retries_total", 0, kind=KIND) >= 1
        retrying = {"kind": KIND, "type": "Reconciling", "status": "True", "reason": "ProgressingWithRetry"}
        assert moved(process, "infometis_objects_by_condition", 0, **retrying) == 1
        errors = process.metric("infometis_service_request_errors_total", service="kafka")
        assert errors > process.metric("infometis_service_request_errors_total", service="kafka", code="INVALID_CONFIG")

        # The topics of other namespaces (and the stack's own) are unmanaged here.
        moved(process, "infometis_unmanaged_resources", 0, kind=KIND)

        # A deleted object leaves the condition counts.
        kubectl("delete", "kafkatopic", refused, "-n", namespace)
        wait_for(lambda: process.metric("infometis_objects_by_condition", **stalled) == 0, what="no Stalled")
    finally:
        process.stop()
