"""Create, grow, reconfigure: the everyday life of a KafkaTopic on a real cluster."""

from __future__ import annotations

from confluent_kafka.admin import AdminClient

from tests.argocd import argocd_health
from tests.integration.conftest import RunningOperator
from tests.integration.helpers import (
    apply,
    condition,
    described_as,
    event_reasons,
    events,
    get,
    kafka_topic,
    kubectl,
    patch_spec,
    set_config_out_of_band,
    unique,
    wait_for,
    wait_ready,
)


def test_a_new_kafkatopic_creates_the_topic_and_reports_ready(
    operator: RunningOperator, namespace: str, kafka_admin: AdminClient
) -> None:
    name = unique("orders")
    apply(namespace, kafka_topic(name, 3, 2, config={"retention.ms": "86400000"}))

    obj = wait_ready(namespace, name)
    topic = described_as(kafka_admin, name, lambda t: t["partitions"] == 3)
    assert {len(r) for r in topic["replicas"]} == {2}
    assert topic["overrides"] == {"retention.ms": "86400000"}
    status = obj["status"]
    assert status["topicName"] == name
    assert status["topicId"] == topic["id"]
    assert (status["partitions"], status["replicationFactor"]) == (3, 2)
    assert status["managedConfigKeys"] == ["retention.ms"]
    assert status["observedGeneration"] == obj["metadata"]["generation"]
    assert condition(obj, "Ready")["observedGeneration"] == obj["metadata"]["generation"]  # type: ignore[index]
    created = [e for e in events(namespace, name) if e["reason"] == "Created"]
    assert len(created) == 1
    assert created[0]["type"] == "Normal"
    assert "3 partitions, replication factor 2" in created[0]["message"]
    assert argocd_health(obj) == ("Healthy", condition(obj, "Ready")["message"])  # type: ignore[index]
    # Retain is the default: no finalizer, so deleting the namespace never waits on the operator.
    assert "finalizers" not in obj["metadata"]


def test_kubectl_wait_and_get_show_readiness_and_the_printer_columns(operator: RunningOperator, namespace: str) -> None:
    name = unique("columns")
    apply(namespace, kafka_topic(name, 2, 1))
    kubectl("wait", "-n", namespace, f"kafkatopic/{name}", "--for=condition=Ready", "--timeout=60s")

    table = kubectl("get", "kafkatopics", "-n", namespace).stdout.splitlines()
    assert table[0].split() == ["NAME", "TOPIC", "PARTITIONS", "REPLICAS", "READY", "REASON", "AGE"]
    assert table[1].split()[:6] == [name, name, "2", "1", "True", "Succeeded"]
    assert name in kubectl("get", "ikt", "-n", namespace).stdout  # short name
    assert name in kubectl("get", "infometis", "-n", namespace).stdout  # category
    described = kubectl("describe", "kafkatopic", name, "-n", namespace).stdout
    assert "Created" in described and "Succeeded" in described


def test_raising_partitions_adds_them(operator: RunningOperator, namespace: str, kafka_admin: AdminClient) -> None:
    name = unique("grow")
    apply(namespace, kafka_topic(name, 2, 1))
    wait_ready(namespace, name)

    patch_spec(namespace, name, {"partitions": 5})
    obj = wait_for(
        lambda: (o := get(namespace, name))["status"].get("partitions") == 5 and o,
        what="status.partitions 5",
    )
    assert condition(obj, "Ready")["status"] == "True"  # type: ignore[index]
    described_as(kafka_admin, name, lambda t: t["partitions"] == 5)
    updated = [e["message"] for e in events(namespace, name) if e["reason"] == "Updated"]
    assert updated == [f"Topic '{name}': partitions 2 -> 5."]


def test_config_changes_are_applied_and_removed_keys_reset_to_the_default(
    operator: RunningOperator, namespace: str, kafka_admin: AdminClient
) -> None:
    name = unique("config")
    apply(namespace, kafka_topic(name, 1, 1, config={"retention.ms": "1000", "segment.ms": "600000"}))
    wait_ready(namespace, name)
    # A key the operator never managed, set by someone else: it must survive.
    set_config_out_of_band(kafka_admin, name, "cleanup.policy", "compact")

    # Change one value and drop the other key from the spec (a JSON merge patch null removes it).
    patch_spec(namespace, name, {"config": {"retention.ms": "2000", "segment.ms": None}})
    wait_for(
        lambda: get(namespace, name)["status"].get("managedConfigKeys") == ["retention.ms"],
        what="managedConfigKeys to shrink",
    )
    described_as(kafka_admin, name, lambda t: t["overrides"] == {"retention.ms": "2000", "cleanup.policy": "compact"})
    message = next(e["message"] for e in events(namespace, name) if e["reason"] == "Updated")
    assert "config retention.ms: 1000 -> 2000" in message
    assert "config segment.ms reset to default (was 600000)" in message
    assert event_reasons(namespace, name).count("Created") == 1
