"""Kafka stops: readiness and conditions say so and retries back off; Kafka returns: both heal.

Readiness and the objects are two views of one outage, proven on one: stopping
and starting the three brokers costs about a minute each time.
"""

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


def test_an_outage_fails_readiness_naming_kafka_shows_objects_progressing_with_retry_and_both_heal(
    operator: RunningOperator, namespace: str, kafka_admin: AdminClient, kafka_restarted_afterwards: None
) -> None:
    operator.wait_probe("/readyz", 200)
    name = unique("outage")
    apply(namespace, kafka_topic(name, 1, 1))
    wait_ready(namespace, name)
    log_before = len(operator.log())

    run_stack("stop", "kafka")
    patch_spec(namespace, name, {"partitions": 2})  # a change made while Kafka is away

    # Readiness names Kafka; liveness is left alone.
    body = operator.wait_probe("/readyz", 503, timeout=60)
    assert body["failing"] == ["kafka-default"]
    assert body["checks"]["kafka-default"].startswith("failing for ")
    assert "Kafka could not be reached (default): " in body["checks"]["kafka-default"]
    assert body["checks"]["kubernetes-api"] == "ok"
    assert operator.probe("/healthz")[0] == 200  # restarting the operator would not bring Kafka back

    # The object shows the change as seen and retried.
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
    operator.wait_probe("/readyz", 200, timeout=60)
    wait_for(lambda: get(namespace, name)["status"].get("partitions") == 2, timeout=120, what="converged")
    wait_ready(namespace, name)
    described_as(kafka_admin, name, lambda t: t["partitions"] == 2)
    # One warning for the whole outage, however many retries it took.
    assert len([e for e in events(namespace, name) if e["reason"] == "ProgressingWithRetry"]) == 1
    log = operator.log()[log_before:]
    assert log.count("Kafka (default connection) unreachable: ") == 1
    assert log.count("Kafka (default connection) answers again after ") == 1
