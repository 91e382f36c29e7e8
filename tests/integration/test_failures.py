"""Specs Kafka refuses: Stalled with a specific reason, one Event, no retry storm, and recovery."""

from __future__ import annotations

import time

from confluent_kafka.admin import AdminClient

from tests.argocd import argocd_health
from tests.integration.conftest import RESYNC_SECONDS, RunningOperator
from tests.integration.helpers import (
    apply,
    condition,
    describe,
    described_as,
    events,
    get,
    kafka_topic,
    patch_spec,
    unique,
    wait_ready,
    wait_reason,
)


def test_an_unknown_config_name_stalls_with_invalid_config_and_is_not_retried(
    operator: RunningOperator, namespace: str, kafka_admin: AdminClient
) -> None:
    name = unique("badkey")
    apply(namespace, kafka_topic(name, 1, 1, config={"retention.msx": "1"}))

    obj = wait_reason(namespace, name, "False", "InvalidConfig")
    stalled = condition(obj, "Stalled")
    assert stalled is not None and stalled["status"] == "True" and stalled["reason"] == "InvalidConfig"
    assert "Unknown topic config name: retention.msx" in stalled["message"]
    assert condition(obj, "Reconciling") is None
    assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"]
    assert describe(kafka_admin, name) is None  # CreateTopics is atomic: nothing half-made
    assert argocd_health(obj)[0] == "Degraded"

    # Several resync periods later: the refused request was not re-sent, nothing was written.
    version, warnings = obj["metadata"]["resourceVersion"], len(events(namespace, name))
    time.sleep(RESYNC_SECONDS * 3 + 1)
    assert get(namespace, name)["metadata"]["resourceVersion"] == version
    assert len(events(namespace, name)) == warnings == 1
    assert events(namespace, name)[0]["type"] == "Warning"

    # Fixing the spec recovers.
    patch_spec(namespace, name, {"config": {"retention.msx": None, "retention.ms": "1000"}})
    wait_ready(namespace, name)
    described_as(kafka_admin, name, lambda t: t["overrides"] == {"retention.ms": "1000"})


def test_an_invalid_config_value_on_an_existing_topic_names_the_key(
    operator: RunningOperator, namespace: str, kafka_admin: AdminClient
) -> None:
    name = unique("badvalue")
    apply(namespace, kafka_topic(name, 1, 1))
    wait_ready(namespace, name)
    patch_spec(namespace, name, {"config": {"retention.ms": "one day"}})
    obj = wait_reason(namespace, name, "False", "InvalidConfig")
    message = condition(obj, "Stalled")["message"]  # type: ignore[index]
    assert "Invalid value one day for configuration retention.ms" in message
    assert described_as(kafka_admin, name, lambda t: True)["overrides"] == {}  # the refused value was not set


def test_a_replication_factor_above_the_broker_count_stalls_with_insufficient_brokers(
    operator: RunningOperator, namespace: str, broker_ids: list[int]
) -> None:
    name = unique("toomany")
    apply(namespace, kafka_topic(name, 1, len(broker_ids) + 1))
    obj = wait_reason(namespace, name, "False", "InsufficientBrokers")
    assert f"the cluster has {len(broker_ids)} available" in condition(obj, "Stalled")["message"]  # type: ignore[index]
    assert [e["reason"] for e in events(namespace, name)] == ["InsufficientBrokers"]
