"""deletionPolicy: Retain keeps the topic and holds no finalizer; Delete removes it; nothing hangs."""

from __future__ import annotations

from confluent_kafka.admin import AdminClient
from kubernetes import client

from tests.integration.conftest import RunningOperator
from tests.integration.helpers import (
    apply,
    describe,
    event_reasons,
    exists,
    get,
    kafka_topic,
    kubectl,
    patch_spec,
    unique,
    wait_for,
    wait_ready,
    wait_reason,
)

FINALIZER = "infometis.io/kafkatopic-deletion"


def test_retain_leaves_the_topic_when_the_object_is_deleted(
    operator: RunningOperator, namespace: str, kafka_admin: AdminClient
) -> None:
    name = unique("keep")
    apply(namespace, kafka_topic(name, 1, 1))
    wait_ready(namespace, name)
    kubectl("delete", "kafkatopic", name, "-n", namespace, "--timeout=10s")
    assert describe(kafka_admin, name) is not None


def test_delete_removes_the_topic_through_a_finalizer(
    operator: RunningOperator, namespace: str, kafka_admin: AdminClient
) -> None:
    name = unique("remove")
    apply(namespace, kafka_topic(name, 1, 1, deletionPolicy="Delete"))
    obj = wait_ready(namespace, name)
    assert obj["metadata"]["finalizers"] == [FINALIZER]

    kubectl("delete", "kafkatopic", name, "-n", namespace, "--timeout=60s")
    # The operator saw DeleteTopics succeed; every broker's metadata follows within moments.
    wait_for(lambda: describe(kafka_admin, name) is None, timeout=15, what=f"topic {name} gone")
    assert "Deleted" in event_reasons(namespace, name)


def test_switching_the_policy_adds_and_removes_the_finalizer(operator: RunningOperator, namespace: str) -> None:
    name = unique("switch")
    apply(namespace, kafka_topic(name, 1, 1))
    wait_ready(namespace, name)
    patch_spec(namespace, name, {"deletionPolicy": "Delete"})
    wait_for(lambda: get(namespace, name)["metadata"].get("finalizers") == [FINALIZER], what="finalizer added")
    patch_spec(namespace, name, {"deletionPolicy": "Retain"})
    wait_for(lambda: not get(namespace, name)["metadata"].get("finalizers"), what="finalizer removed")


def test_a_delete_that_cannot_happen_is_stalled_and_retain_lets_the_object_go(
    operator: RunningOperator, namespace: str, kafka_admin: AdminClient
) -> None:
    """The escape hatch: a finalizer the operator cannot honour never wedges the object."""
    name = unique("wedged")
    apply(namespace, kafka_topic(name, 1, 1, deletionPolicy="Delete"))
    wait_ready(namespace, name)
    patch_spec(namespace, name, {"clusterRef": {"name": "no-such-secret"}})
    wait_reason(namespace, name, "False", "ClusterRefInvalid")
    kubectl("delete", "kafkatopic", name, "-n", namespace, "--wait=false")

    wait_for(lambda: "Cannot delete topic" in str(get(namespace, name)["status"]), what="deletion stalled")
    patch_spec(namespace, name, {"deletionPolicy": "Retain"})
    wait_for(lambda: not exists(namespace, name), what="object gone")
    assert describe(kafka_admin, name) is not None
    assert "Retained" in event_reasons(namespace, name)


def test_deleting_a_namespace_finishes_with_either_policy(operator: RunningOperator, kafka_admin: AdminClient) -> None:
    namespace = unique("it-ns")
    client.CoreV1Api().create_namespace({"metadata": {"name": namespace}})
    kept, removed = unique("kept"), unique("removed")
    apply(namespace, kafka_topic(kept, 1, 1))
    apply(namespace, kafka_topic(removed, 1, 1, deletionPolicy="Delete"))
    wait_ready(namespace, kept)
    wait_ready(namespace, removed)

    client.CoreV1Api().delete_namespace(namespace)

    def namespace_gone() -> bool:
        try:
            client.CoreV1Api().read_namespace(namespace)
        except client.ApiException as error:
            return error.status == 404
        return False

    wait_for(namespace_gone, timeout=90, what=f"namespace {namespace} deleted")
    assert describe(kafka_admin, kept) is not None
    wait_for(lambda: describe(kafka_admin, removed) is None, timeout=15, what=f"topic {removed} gone")
