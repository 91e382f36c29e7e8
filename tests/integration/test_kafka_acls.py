"""A Kafka user restricted by ACLs: what it may not touch ends as a readable condition, never an exception.

The stack's SASL_SSL listener enforces ACLs (StandardAuthorizer): its `tenant`
user may work only on topics named with KAFKA_TENANT_TOPIC_PREFIX.
"""

from __future__ import annotations

from confluent_kafka.admin import AdminClient, NewTopic

from tests.integration.conftest import RunningOperator
from tests.integration.helpers import (
    apply,
    condition,
    create_secret,
    describe,
    described_as,
    events,
    kafka_topic,
    patch_spec,
    unique,
    wait_ready,
    wait_reason,
)
from tests.integration.test_secured_kafka import secured_connection


def tenant_connection(stack: dict[str, str]) -> dict[str, str]:
    return secured_connection(
        stack, **{"sasl.username": stack["KAFKA_TENANT_USERNAME"], "sasl.password": stack["KAFKA_TENANT_PASSWORD"]}
    )


def test_topics_the_kafka_user_may_not_touch_stall_as_not_authorized_with_kafkas_words(
    operator: RunningOperator, namespace: str, kafka_admin: AdminClient, stack: dict[str, str]
) -> None:
    create_secret(namespace, "tenant", tenant_connection(stack))
    allowed = unique(stack["KAFKA_TENANT_TOPIC_PREFIX"] + "mine")
    existing, missing = unique("theirs"), unique("nothere")
    kafka_admin.create_topics([NewTopic(existing, 1, 1)])[existing].result(timeout=15)
    described_as(kafka_admin, existing, lambda t: True)

    apply(namespace, kafka_topic("allowed", 1, 1, topicName=allowed, clusterRef={"name": "tenant"}))
    apply(namespace, kafka_topic("existing", 1, 1, topicName=existing, clusterRef={"name": "tenant"}))
    apply(namespace, kafka_topic("missing", 1, 1, topicName=missing, clusterRef={"name": "tenant"}))

    wait_ready(namespace, "allowed")
    for name in ("existing", "missing"):
        obj = wait_reason(namespace, name, "False", "NotAuthorized")
        stalled = condition(obj, "Stalled")
        assert stalled is not None and "TOPIC_AUTHORIZATION_FAILED" in stalled["message"]
        assert [e["reason"] for e in events(namespace, name)] == ["NotAuthorized"]
    assert describe(kafka_admin, missing) is None

    # Partition reassignment needs a cluster right the user lacks: refused, said, not retried as "unreachable".
    patch_spec(namespace, "allowed", {"replicationFactor": 2})
    obj = wait_reason(namespace, "allowed", "False", "NotAuthorized")
    assert "CLUSTER_AUTHORIZATION_FAILED" in condition(obj, "Stalled")["message"]  # type: ignore[index]
