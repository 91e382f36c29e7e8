"""A replication-factor change is a partition reassignment, with its progress in status."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType

from tests.integration.conftest import RunningOperator
from tests.integration.helpers import (
    apply,
    condition,
    describe,
    described_as,
    event_reasons,
    get,
    kafka_topic,
    patch_spec,
    set_config_out_of_band,
    unique,
    wait_for,
    wait_ready,
)

THROTTLE = ("leader.replication.throttled.rate", "follower.replication.throttled.rate")


def set_replication_throttle(admin: AdminClient, broker_ids: list[int], bytes_per_second: str | None) -> None:
    """A replication throttle on every broker, so a reassignment takes long enough to watch."""
    operation = AlterConfigOpType.SET if bytes_per_second else AlterConfigOpType.DELETE
    for broker in broker_ids:  # broker configs go to each broker on its own
        entries = [ConfigEntry(key, bytes_per_second, incremental_operation=operation) for key in THROTTLE]
        resource = ConfigResource(ResourceType.BROKER, str(broker), incremental_configs=entries)
        admin.incremental_alter_configs([resource])[resource].result(timeout=15)


@pytest.fixture
def throttled_replication(kafka_admin: AdminClient, broker_ids: list[int]) -> Iterator[None]:
    set_replication_throttle(kafka_admin, broker_ids, "10000")
    yield
    set_replication_throttle(kafka_admin, broker_ids, None)


@pytest.fixture
def three_brokers(broker_ids: list[int]) -> list[int]:
    assert len(broker_ids) >= 3, "replication tests need `hack/stack up --kafka-brokers 3`"
    return broker_ids


def fill(bootstrap: str, topic: str, partitions: int, kilobytes_each: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    payload = b"x" * 1024
    for partition in range(partitions):
        for _ in range(kilobytes_each):
            producer.produce(topic, payload, partition=partition)
        producer.flush(30)


def test_raising_the_replication_factor_reassigns_and_reports_progress(
    operator: RunningOperator,
    namespace: str,
    kafka_admin: AdminClient,
    stack: dict[str, str],
    three_brokers: list[int],
    throttled_replication: None,
) -> None:
    name = unique("replicas")
    apply(namespace, kafka_topic(name, 3, 1))
    wait_ready(namespace, name)
    fill(stack["KAFKA_BOOTSTRAP_SERVERS"], name, 3, 300)
    for key in ("leader.replication.throttled.replicas", "follower.replication.throttled.replicas"):
        set_config_out_of_band(kafka_admin, name, key, "*")
    replicas_before = describe(kafka_admin, name)["replicas"]  # type: ignore[index]

    patch_spec(namespace, name, {"replicationFactor": 3})

    # While data is copied under the throttle, status says so.
    obj = wait_for(
        lambda: (o := get(namespace, name)).get("status", {}).get("replicasChange") and o,
        what="replicasChange in status",
    )
    reconciling = condition(obj, "Reconciling")
    assert reconciling is not None and reconciling["reason"] == "Progressing"
    assert f"Reassigning topic '{name}' to replication factor 3" in reconciling["message"]
    assert "of 3 partitions done" in reconciling["message"]
    assert condition(obj, "Ready")["status"] == "False"  # type: ignore[index]
    assert obj["status"]["replicasChange"] == {"targetReplicationFactor": 3}

    set_replication_throttle(kafka_admin, three_brokers, None)
    obj = wait_ready(namespace, name, timeout=120)
    assert obj["status"]["replicationFactor"] == 3
    assert "replicasChange" not in obj["status"]
    topic = described_as(kafka_admin, name, lambda t: all(len(replicas) == 3 for replicas in t["replicas"]))
    # The existing replica stays first (the preferred leader): no leadership moves.
    assert [r[0] for r in topic["replicas"]] == [r[0] for r in replicas_before]
    assert event_reasons(namespace, name)[-2:] == ["ReassignmentStarted", "ReplicasReassigned"]


def test_lowering_the_replication_factor_drops_replicas(
    operator: RunningOperator, namespace: str, kafka_admin: AdminClient, three_brokers: list[int]
) -> None:
    name = unique("fewer")
    apply(namespace, kafka_topic(name, 2, 3))
    wait_ready(namespace, name)
    patch_spec(namespace, name, {"replicationFactor": 2})
    obj = wait_for(lambda: (o := get(namespace, name))["status"].get("replicationFactor") == 2 and o, timeout=60)
    wait_ready(namespace, name)
    described_as(kafka_admin, name, lambda t: all(len(replicas) == 2 for replicas in t["replicas"]))
    assert obj["status"]["partitions"] == 2
