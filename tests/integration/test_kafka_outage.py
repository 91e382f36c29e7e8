"""Kafka stops: conditions say so and retries back off; Kafka returns: the object converges."""

from __future__ import annotations

from confluent_kafka.admin import AdminClient

from tests.integration.conftest import RunningOperator
from tests.integration.helpers import (
    apply,
    condition,
    described_as,
    events,
    get,
    kafka_topic,
    patch_spec,
    run_stack,
    unique,
    wait_for,
    wait_ready,
    wait_reason,
)


def test_an_outage_shows_as_progressing_with_retry_and_heals(
    operator: RunningOperator, namespace: str, kafka_admin: AdminClient, kafka_restarted_afterwards: None
) -> None:
    name = unique("outage")
    apply(namespace, kafka_topic(name, 1, 1))
    wait_ready(namespace, name)

    run_stack("stop", "kafka")
    patch_spec(namespace, name, {"partitions": 2})  # a change made while Kafka is away
    obj = wait_reason(namespace, name, "False", "ProgressingWithRetry", timeout=90)
    reconciling = condition(obj, "Reconciling")
    assert reconciling is not None and reconciling["reason"] == "ProgressingWithRetry"
    # The client's own connection error leads (refused, brokers down, ...), not a bare timeout.
    assert reconciling["message"].startswith("Kafka could not be reached (default): ")
    assert condition(obj, "Stalled") is None
    assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"]  # seen, not yet done
    warnings = [e for e in events(namespace, name) if e["reason"] == "ProgressingWithRetry"]
    assert len(warnings) == 1 and warnings[0]["type"] == "Warning"

    run_stack("start", "kafka")
    wait_for(lambda: get(namespace, name)["status"].get("partitions") == 2, timeout=120, what="converged")
    wait_ready(namespace, name)
    described_as(kafka_admin, name, lambda t: t["partitions"] == 2)
    # One warning for the whole outage, however many retries it took.
    assert len([e for e in events(namespace, name) if e["reason"] == "ProgressingWithRetry"]) == 1
