"""deletionPolicy: Retain keeps the topic and holds no finalizer; Delete removes it; nothing hangs."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient
from kubernetes import client

from tests.integration.conftest import RESYNC_SECONDS, RunningOperator, start_operator
from tests.integration.helpers import (
    REPO,
    apply,
    create_secret,
    describe,
    event_reasons,
    events,
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


def namespace_gone(namespace: str) -> bool:
    try:
        client.CoreV1Api().read_namespace(namespace)
    except client.ApiException as error:
        return error.status == 404
    return False


def test_retain_leaves_the_topic_when_the_object_is_deleted(
    operator: RunningOperator, namespace: str, kafka_admin: AdminClient
) -> None:
    name = unique("keep")
    apply(namespace, kafka_topic(name, 1, 1))
    wait_ready(namespace, name)
    kubectl("delete", "kafkatopic", name, "-n", namespace, "--timeout=10s")
    time.sleep(RESYNC_SECONDS * 2 + 1)  # long enough for a delete the operator might still send
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
    create_secret(namespace, "incomplete", {"client.id": "no-bootstrap-servers-here"})
    patch_spec(namespace, name, {"clusterRef": {"name": "incomplete"}})
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
    wait_for(lambda: namespace_gone(namespace), timeout=90, what=f"namespace {namespace} deleted")
    assert describe(kafka_admin, kept) is not None
    wait_for(lambda: describe(kafka_admin, removed) is None, timeout=15, what=f"topic {removed} gone")


def test_a_delete_whose_connection_secret_is_gone_lets_the_object_go_and_keeps_the_topic(
    operator: RunningOperator, namespace: str, kafka_admin: AdminClient, stack: dict[str, str]
) -> None:
    """As in a namespace deletion, where the Secrets go before the objects."""
    create_secret(namespace, "kafka", {"bootstrap.servers": stack["KAFKA_BOOTSTRAP_SERVERS"]})
    name = unique("orphaned")
    apply(namespace, kafka_topic(name, 1, 1, deletionPolicy="Delete", clusterRef={"name": "kafka"}))
    wait_ready(namespace, name)
    client.CoreV1Api().delete_namespaced_secret("kafka", namespace)
    kubectl("delete", "kafkatopic", name, "-n", namespace, "--timeout=60s")

    time.sleep(RESYNC_SECONDS * 2 + 1)  # long enough for a delete the operator might still send
    assert describe(kafka_admin, name) is not None
    retained = [e for e in events(namespace, name) if e["reason"] == "Retained"]
    assert retained and retained[0]["type"] == "Warning"
    assert "secret" in retained[0]["message"] and "does not exist" in retained[0]["message"]


def test_deleting_a_namespace_with_a_secret_connected_delete_object_finishes(
    operator: RunningOperator, kafka_admin: AdminClient, stack: dict[str, str]
) -> None:
    namespace = unique("it-nssecret")
    client.CoreV1Api().create_namespace({"metadata": {"name": namespace}})
    create_secret(namespace, "kafka", {"bootstrap.servers": stack["KAFKA_BOOTSTRAP_SERVERS"]})
    name = unique("insecretns")
    apply(namespace, kafka_topic(name, 1, 1, deletionPolicy="Delete", clusterRef={"name": "kafka"}))
    wait_ready(namespace, name)

    client.CoreV1Api().delete_namespace(namespace)
    wait_for(lambda: namespace_gone(namespace), timeout=90, what=f"namespace {namespace} deleted")


def test_an_object_the_operator_cannot_parse_is_still_let_go_with_retain(
    operator: RunningOperator, namespace: str, newer_crd: None, session_operator_paused: None, tmp_path: Path
) -> None:
    """A CRD newer than the operator: objects with fields it does not know stall, and can still be deleted.

    An operator started after the CRD changed (a watch opened before keeps serving objects
    pruned to the old schema until it is reopened).
    """
    process = start_operator(operator, namespace, tmp_path / "operator.log")
    try:
        name = unique("future")
        apply(namespace, kafka_topic(name, 1, 1, deletionPolicy="Delete", futureField="x"))
        wait_reason(namespace, name, "False", "InvalidSpec")
        assert get(namespace, name)["metadata"]["finalizers"] == [FINALIZER]
        kubectl("delete", "kafkatopic", name, "-n", namespace, "--wait=false")
        wait_for(lambda: "Cannot delete the topic: the spec is invalid" in str(get(namespace, name)["status"]))

        patch_spec(namespace, name, {"deletionPolicy": "Retain"})
        wait_for(lambda: not exists(namespace, name), what="object gone")
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.fixture
def newer_crd() -> Iterator[None]:
    """The KafkaTopic CRD with one spec field more than the operator knows, for the test's duration."""
    original = json.loads(kubectl("get", "crd", "kafkatopics.infometis.io", "-o", "json").stdout)
    for field in ("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields"):
        original["metadata"].pop(field, None)
    original["metadata"].get("annotations", {}).pop("kubectl.kubernetes.io/last-applied-configuration", None)
    original.pop("status", None)
    newer = copy.deepcopy(original)
    newer["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["futureField"] = {
        "type": "string"
    }
    kubectl("replace", "-f", "-", stdin=json.dumps(newer))
    yield
    kubectl("replace", "-f", "-", stdin=json.dumps(original))
    kubectl("apply", "-k", str(REPO / "crds"))
