"""Existing topics are adopted without loss; two objects for one topic: the older one owns it."""

from __future__ import annotations

import base64
import time

from confluent_kafka.admin import AdminClient, NewTopic
from kubernetes import client

from tests.integration.conftest import RunningOperator
from tests.integration.helpers import (
    apply,
    condition,
    describe,
    described_as,
    event_reasons,
    events,
    get,
    kafka_topic,
    kubectl,
    unique,
    wait_ready,
    wait_reason,
)


def test_an_existing_topic_is_adopted_and_nothing_is_lost(
    operator: RunningOperator, namespace: str, kafka_admin: AdminClient
) -> None:
    name = unique("legacy")
    new = NewTopic(name, 2, 1, config={"retention.ms": "1000", "cleanup.policy": "compact"})
    kafka_admin.create_topics([new])[name].result(timeout=15)
    # CreateTopics returns once the controller has the topic; brokers learn of it a moment later.
    before = described_as(kafka_admin, name, lambda t: True)

    apply(namespace, kafka_topic(name, 4, 1, config={"retention.ms": "5000"}))
    obj = wait_ready(namespace, name)

    after = describe(kafka_admin, name)
    assert after is not None
    assert after["id"] == before["id"] == obj["status"]["topicId"]  # the same topic, not a new one
    assert after["partitions"] == 4
    assert after["overrides"] == {"retention.ms": "5000", "cleanup.policy": "compact"}
    assert event_reasons(namespace, name) == ["Adopted", "Updated"]
    updated = events(namespace, name)[1]["message"]
    assert "partitions 2 -> 4" in updated and "config retention.ms: 1000 -> 5000" in updated


def test_the_newer_of_two_objects_for_one_topic_stalls_until_the_older_goes(
    operator: RunningOperator, namespace: str
) -> None:
    topic = unique("shared")
    apply(namespace, kafka_topic(f"{topic}-first", 1, 1, topicName=topic))
    wait_ready(namespace, f"{topic}-first")
    apply(namespace, kafka_topic(f"{topic}-second", 1, 1, topicName=topic))

    obj = wait_reason(namespace, f"{topic}-second", "False", "ResourceConflict")
    assert (
        f"managed by KafkaTopic {namespace}/{topic}-first, which claimed it first"
        in condition(obj, "Stalled")["message"]
    )  # type: ignore[index]
    assert event_reasons(namespace, f"{topic}-second") == ["ResourceConflict"]

    kubectl("delete", "kafkatopic", f"{topic}-first", "-n", namespace)
    wait_ready(namespace, f"{topic}-second")


def test_a_conflict_is_found_even_through_a_different_connection_to_the_same_cluster(
    operator: RunningOperator, namespace: str, stack: dict[str, str]
) -> None:
    """Clusters are told apart by Kafka's cluster id, not by how they are addressed."""
    topic = unique("aliased")
    apply(namespace, kafka_topic(f"{topic}-default", 1, 1, topicName=topic))
    wait_ready(namespace, f"{topic}-default")
    first_broker = stack["KAFKA_BOOTSTRAP_SERVERS"].split(",")[0]
    client.CoreV1Api().create_namespaced_secret(
        namespace,
        {
            "metadata": {"name": "same-cluster"},
            "data": {"bootstrap.servers": base64.b64encode(first_broker.encode()).decode()},
        },
    )
    apply(namespace, kafka_topic(f"{topic}-aliased", 1, 1, topicName=topic, clusterRef={"name": "same-cluster"}))
    wait_reason(namespace, f"{topic}-aliased", "False", "ResourceConflict")
    assert get(namespace, f"{topic}-default")["status"]["topicName"] == topic


def test_another_objects_unreachable_cluster_does_not_slow_this_one(
    operator: RunningOperator, namespace: str, stack: dict[str, str]
) -> None:
    """Ownership is decided from what other objects recorded, without contacting their clusters."""
    topic = unique("tenants")
    client.CoreV1Api().create_namespaced_secret(
        namespace,
        {"metadata": {"name": "nowhere"}, "data": {"bootstrap.servers": base64.b64encode(b"127.0.0.1:1").decode()}},
    )
    apply(namespace, kafka_topic(f"{topic}-elsewhere", 1, 1, topicName=topic, clusterRef={"name": "nowhere"}))
    wait_reason(namespace, f"{topic}-elsewhere", "False", "ProgressingWithRetry", timeout=60)

    started = time.monotonic()
    apply(namespace, kafka_topic(f"{topic}-here", 1, 1, topicName=topic))
    wait_ready(namespace, f"{topic}-here")
    # Kafka's request timeout is 15 s: asking the unreachable cluster would take at least that.
    assert time.monotonic() - started < 8
