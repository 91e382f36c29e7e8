"""Many teams, one operator: the tenancy policy holds before any Kafka call, and for deletion too."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, NewTopic
from kubernetes import client

from tests.integration.conftest import (
    MAX_PARTITIONS,
    MAX_SHARDS,
    RESYNC_SECONDS,
    TENANT_NAMESPACE,
    TENANT_PREFIX,
    RunningOperator,
    start_operator,
)
from tests.integration.helpers import (
    apply,
    condition,
    create_secret,
    describe,
    described_as,
    events,
    exists,
    kafka_topic,
    kubectl,
    namespace_exists,
    unique,
    wait_for,
    wait_ready,
    wait_reason,
)
from tests.integration.search import PLURAL as SEARCH_PLURAL
from tests.integration.search import connect, search_index


@pytest.fixture
def tenant_namespace() -> Iterator[str]:
    client.CoreV1Api().create_namespace({"metadata": {"name": TENANT_NAMESPACE}})
    yield TENANT_NAMESPACE
    client.CoreV1Api().delete_namespace(TENANT_NAMESPACE)
    wait_for(lambda: not namespace_exists(TENANT_NAMESPACE), timeout=90, what="tenant namespace gone")


def test_a_namespace_manages_topics_with_its_prefix_only(
    operator: RunningOperator, tenant_namespace: str, kafka_admin: AdminClient
) -> None:
    own = unique(f"{TENANT_PREFIX}orders")
    apply(tenant_namespace, kafka_topic("own", 1, 1, topicName=own))
    wait_ready(tenant_namespace, "own")

    foreign = unique("team-b.orders")
    apply(tenant_namespace, kafka_topic("foreign", 1, 1, topicName=foreign))
    obj = wait_reason(tenant_namespace, "foreign", "False", "NotPermitted")
    message = condition(obj, "Stalled")["message"]  # type: ignore[index]
    assert f"may only manage names starting with '{TENANT_PREFIX}'" in message
    assert describe(kafka_admin, foreign) is None  # refused before any Kafka call


def test_deleting_an_object_for_another_teams_topic_never_deletes_it(
    operator: RunningOperator, tenant_namespace: str, kafka_admin: AdminClient
) -> None:
    """A namespace editor cannot use deletionPolicy: Delete to remove a topic they do not own."""
    victim = unique("team-b.payments")
    kafka_admin.create_topics([NewTopic(victim, 1, 1)])[victim].result(timeout=15)
    described_as(kafka_admin, victim, lambda t: True)
    apply(tenant_namespace, kafka_topic("grab", 1, 1, topicName=victim, deletionPolicy="Delete"))
    wait_reason(tenant_namespace, "grab", "False", "NotPermitted")

    kubectl("delete", "kafkatopic", "grab", "-n", tenant_namespace, "--timeout=60s")
    assert not exists(tenant_namespace, "grab")
    time.sleep(RESYNC_SECONDS * 2 + 1)  # long enough for a delete the operator might still send
    assert describe(kafka_admin, victim) is not None
    retained = [e for e in events(tenant_namespace, "grab") if e["reason"] == "Retained"]
    assert retained and retained[0]["type"] == "Warning" and "not permitted" in retained[0]["message"]


def test_a_partition_count_above_the_platform_limit_is_refused(
    operator: RunningOperator, namespace: str, kafka_admin: AdminClient
) -> None:
    name = unique("huge")
    apply(namespace, kafka_topic(name, MAX_PARTITIONS + 1, 1))
    obj = wait_reason(namespace, name, "False", "NotPermitted")
    assert f"above the tenancy policy's limit of {MAX_PARTITIONS}" in condition(obj, "Stalled")["message"]  # type: ignore[index]
    assert describe(kafka_admin, name) is None


def test_the_default_connection_and_platform_config_keys_are_kept_from_tenants(
    operator: RunningOperator,
    namespace: str,
    kafka_admin: AdminClient,
    stack: dict[str, str],
    session_operator_paused: None,
    tmp_path: Path,
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("kafkatopics:\n  defaultConnectionNamespaces: [platform]\n  allowedConfigKeys: [retention.ms]\n")
    create_secret(namespace, "own", {"bootstrap.servers": stack["KAFKA_BOOTSTRAP_SERVERS"]})
    process = start_operator(operator, namespace, tmp_path / "operator.log", "--tenancy-policy", str(policy))
    try:
        on_default, kept_key, fine = unique("ondefault"), unique("keptkey"), unique("fine")
        apply(namespace, kafka_topic(on_default, 1, 1))
        apply(namespace, kafka_topic(kept_key, 1, 1, clusterRef={"name": "own"}, config={"min.insync.replicas": "1"}))
        apply(namespace, kafka_topic(fine, 1, 1, clusterRef={"name": "own"}, config={"retention.ms": "3600000"}))

        wait_ready(namespace, fine)
        obj = wait_reason(namespace, on_default, "False", "NotPermitted")
        assert "may not use the operator's default connection" in condition(obj, "Stalled")["message"]  # type: ignore[index]
        obj = wait_reason(namespace, kept_key, "False", "NotPermitted")
        assert "min.insync.replicas are kept by the platform team" in condition(obj, "Stalled")["message"]  # type: ignore[index]
        assert describe(kafka_admin, on_default) is None and describe(kafka_admin, kept_key) is None
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_a_namespace_manages_indices_with_its_prefix_only_and_below_the_shard_limit(
    operator: RunningOperator, tenant_namespace: str
) -> None:
    search = connect("elasticsearch", os.environ["ELASTICSEARCH_URL"])
    own = unique(f"{TENANT_PREFIX}orders")
    apply(tenant_namespace, search_index("own", cluster_ref=None, indexName=own))
    wait_ready(tenant_namespace, "own", plural=SEARCH_PLURAL)

    foreign = unique("team-b.orders")
    apply(tenant_namespace, search_index("foreign", cluster_ref=None, indexName=foreign))
    obj = wait_reason(tenant_namespace, "foreign", "False", "NotPermitted", plural=SEARCH_PLURAL)
    assert f"may only manage names starting with '{TENANT_PREFIX}'" in condition(obj, "Stalled")["message"]  # type: ignore[index]
    big = unique(f"{TENANT_PREFIX}big")
    apply(
        tenant_namespace,
        search_index("big", cluster_ref=None, indexName=big, settings={"number_of_shards": MAX_SHARDS + 1}),
    )
    obj = wait_reason(tenant_namespace, "big", "False", "NotPermitted", plural=SEARCH_PLURAL)
    assert f"above the tenancy policy's limit of {MAX_SHARDS}" in condition(obj, "Stalled")["message"]  # type: ignore[index]
    assert search.index(foreign) is None and search.index(big) is None  # refused before any server call
