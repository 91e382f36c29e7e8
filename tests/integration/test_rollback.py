"""Automatic rollback on the real services: a change refused or broken halfway goes back where the service
allows it, and what cannot go back is said. (An index migration rolls itself back: MigrationStopped, in
tests/integration/test_index_migration.py.)"""

from __future__ import annotations

import copy
import json
import time
from typing import Any

from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
)

from tests.integration.conftest import RESYNC_SECONDS, RunningOperator
from tests.integration.helpers import (
    apply,
    condition,
    create_secret,
    described_as,
    events,
    get,
    kafka_topic,
    kubectl,
    patch_spec,
    unique,
    wait_for,
    wait_ready,
    wait_reason,
)
from tests.integration.nifi import PLURAL as FLOWS
from tests.integration.nifi import NiFi, nifi, nifi_flow
from tests.integration.search import PLURAL as INDICES
from tests.integration.search import SERVERS, SearchServer, connection_secret, search_index, server_fixture
from tests.integration.test_kafka_acls import tenant_connection
from tests.nifi_flows import generate_update_log

__all__ = ["nifi"]  # the fixture

search_server = server_fixture(SERVERS)


def said(namespace: str, name: str, reason: str) -> list[str]:
    return [e["message"] for e in events(namespace, name) if e["reason"] == reason]


def test_a_topic_change_partly_refused_sets_the_config_back(
    operator: RunningOperator, namespace: str, kafka_admin: AdminClient, stack: dict[str, str]
) -> None:
    """The tenant may change this topic's configs but not add partitions to it (an ACL denies ALTER): the
    config change is made, the partition increase refused, and the config set back."""
    create_secret(namespace, "tenant", tenant_connection(stack))
    topic = unique(stack["KAFKA_TENANT_TOPIC_PREFIX"] + "grow")
    config = {"retention.ms": "3600000"}
    apply(namespace, kafka_topic("t", 1, 1, topicName=topic, clusterRef={"name": "tenant"}, config=config))
    wait_ready(namespace, "t")
    deny = AclBinding(
        ResourceType.TOPIC, topic, ResourcePatternType.LITERAL, "User:" + stack["KAFKA_TENANT_USERNAME"], "*",
        AclOperation.ALTER, AclPermissionType.DENY,
    )  # fmt: skip
    kafka_admin.create_acls([deny])[deny].result(timeout=15)
    try:
        patch_spec(namespace, "t", {"partitions": 2, "config": {"retention.ms": "7200000"}})
        obj = wait_reason(namespace, "t", "False", "NotAuthorized")
        message = condition(obj, "Stalled")["message"]  # type: ignore[index]
        assert "TOPIC_AUTHORIZATION_FAILED" in message
        assert "Rolled back to the state before this change: config retention.ms: 7200000 -> 3600000." in message
        described_as(kafka_admin, topic, lambda t: t["overrides"] == config and t["partitions"] == 1)
        assert obj["status"]["rolledBackGeneration"] == obj["metadata"]["generation"]
        assert len(said(namespace, "t", "Updated")) == 1 and len(said(namespace, "t", "RolledBack")) == 1

        # Not tried again at the next resyncs: nothing is changed or said until the spec changes.
        before = len(events(namespace, "t"))
        time.sleep(3 * RESYNC_SECONDS)
        assert len(events(namespace, "t")) == before
        described_as(kafka_admin, topic, lambda t: t["overrides"] == config)
    finally:
        exactly = AclBindingFilter(
            deny.restype, deny.name, deny.resource_pattern_type, deny.principal, deny.host, deny.operation,
            deny.permission_type,
        )  # fmt: skip
        kafka_admin.delete_acls([exactly])[exactly].result(timeout=15)


def test_partitions_added_before_a_refusal_are_said_to_be_beyond_undoing(
    operator: RunningOperator, namespace: str, kafka_admin: AdminClient
) -> None:
    name = unique("grow")
    apply(namespace, kafka_topic(name, 1, 1))
    wait_ready(namespace, name)
    patch_spec(namespace, name, {"partitions": 3, "config": {"retention.ms": "soon"}})

    obj = wait_reason(namespace, name, "False", "InvalidConfig")
    described_as(kafka_admin, name, lambda t: t["partitions"] == 3)
    message = condition(obj, "Stalled")["message"]  # type: ignore[index]
    assert message.endswith("Not undone: partitions 1 -> 3 (Kafka cannot remove partitions).")
    (incomplete,) = said(namespace, name, "RollbackIncomplete")
    assert "partitions 1 -> 3 (Kafka cannot remove partitions)" in incomplete


def test_index_settings_are_set_back_when_the_mapping_beside_them_is_refused(
    operator: RunningOperator, namespace: str, search_server: SearchServer
) -> None:
    connection_secret(namespace, search_server)
    name = unique("settings")
    spec: dict[str, Any] = {
        "settings": {"number_of_shards": 1, "number_of_replicas": 0, "refresh_interval": "1s"},
        "mappings": {"properties": {"id": {"type": "keyword"}}},
    }
    apply(namespace, search_index(name, **spec))
    wait_ready(namespace, name, plural=INDICES)

    changed = copy.deepcopy(spec)
    changed["settings"]["refresh_interval"] = "5s"
    # keyword fields take no analyzer: the server refuses the mapping, after taking the settings
    changed["mappings"]["properties"]["title"] = {"type": "keyword", "analyzer": "standard"}
    apply(namespace, search_index(name, **changed))

    obj = wait_for(
        lambda: (found := get(namespace, name, INDICES))["status"].get("rolledBackGeneration") and found,
        timeout=60,
        what="the settings rolled back",
    )
    message = condition(obj, "Stalled")["message"]  # type: ignore[index]
    assert "Rolled back to the state before this change: setting index.refresh_interval 5s -> 1s." in message
    settings = search_server.index(name)["settings"]  # type: ignore[index]
    assert settings["index.refresh_interval"] == "1s"
    assert len(said(namespace, name, "RolledBack")) == 1


def test_a_flow_replacement_nifi_cannot_run_is_replaced_by_the_flow_before_it(
    operator: RunningOperator, namespace: str, nifi: NiFi
) -> None:
    name = unique("flow")
    definition = generate_update_log(name)
    apply(namespace, nifi_flow(name, definition))
    group_id = wait_ready(namespace, name, plural=FLOWS, timeout=90)["status"]["processGroupId"]

    broken = copy.deepcopy(definition)
    generate = next(p for p in broken["flowContents"]["processors"] if p["name"] == "Generate")
    generate["properties"]["File Size"] = "not a size"
    apply(namespace, nifi_flow(name, broken))

    obj = wait_reason(namespace, name, "False", "InvalidFlow", plural=FLOWS, timeout=90)
    message = condition(obj, "Stalled")["message"]  # type: ignore[index]
    assert "File Size" in message and "Rolled back to the state before this change: flow replaced in place" in message
    shown = next(p for p in nifi.download(group_id)["flowContents"]["processors"] if p["name"] == "Generate")
    assert shown["properties"]["File Size"] == "0B"  # the flow before, in the same group
    assert set(nifi.run_status(group_id).values()) == {"Running"}
    assert len(said(namespace, name, "RolledBack")) == 1


# --- on request: infometis.io/rollback-to-revision ------------------------------------------------------

ROLLBACK_ANNOTATION = "infometis.io/rollback-to-revision"


def revisions(namespace: str, uid: str) -> list[int]:
    listing = kubectl(
        "get", "controllerrevisions", "-n", namespace, "-l", f"infometis.io/owner-uid={uid}", "-o", "json"
    ).stdout
    return sorted(int(item["revision"]) for item in json.loads(listing)["items"])


def roll_back(namespace: str, plural: str, name: str, revision: int | None) -> None:
    value = f"{ROLLBACK_ANNOTATION}={revision}" if revision is not None else f"{ROLLBACK_ANNOTATION}-"
    kubectl("annotate", "--overwrite", plural, name, "-n", namespace, value)


def test_a_topic_goes_back_to_a_recorded_revision_on_request_and_forward_when_the_request_goes(
    operator: RunningOperator, namespace: str, kafka_admin: AdminClient
) -> None:
    name = unique("history")
    apply(namespace, kafka_topic(name, 1, 1, config={"retention.ms": "3600000"}))
    wait_ready(namespace, name)
    apply(namespace, kafka_topic(name, 1, 1, config={"retention.ms": "7200000"}))
    uid = wait_ready(namespace, name)["metadata"]["uid"]
    wait_for(lambda: revisions(namespace, uid) == [1], what="the replaced generation recorded")

    roll_back(namespace, "kafkatopics", name, 1)
    obj = wait_reason(namespace, name, "True", "RolledBackToRevision")
    described_as(kafka_admin, name, lambda t: t["overrides"] == {"retention.ms": "3600000"})
    assert obj["status"]["rolledBackTo"] == 1 and obj["metadata"]["generation"] == 2
    assert "revision 1's spec" in condition(obj, "Ready")["message"]  # type: ignore[index]
    assert said(namespace, name, "RolledBackToRevision")
    assert "retention.ms: 7200000 -> 3600000" in said(namespace, name, "Updated")[-1]

    roll_back(namespace, "kafkatopics", name, 7)  # never recorded: nothing changes
    obj = wait_reason(namespace, name, "False", "RevisionNotFound")
    assert "(recorded: 1)" in condition(obj, "Ready")["message"]  # type: ignore[index]
    assert described_as(kafka_admin, name, lambda t: True)["overrides"] == {"retention.ms": "3600000"}

    roll_back(namespace, "kafkatopics", name, None)
    wait_ready(namespace, name)
    described_as(kafka_admin, name, lambda t: t["overrides"] == {"retention.ms": "7200000"})

    kubectl("delete", "kafkatopic", name, "-n", namespace)
    wait_for(lambda: revisions(namespace, uid) == [], what="the revisions deleted with the object")


def test_an_index_and_a_flow_go_back_to_a_recorded_revision_on_request(
    operator: RunningOperator, namespace: str, search_server: SearchServer, nifi: NiFi
) -> None:
    connection_secret(namespace, search_server)
    index = unique("history")
    settings: dict[str, Any] = {"number_of_shards": 1, "number_of_replicas": 0, "refresh_interval": "1s"}
    apply(namespace, search_index(index, settings=settings))
    wait_ready(namespace, index, plural=INDICES)
    apply(namespace, search_index(index, settings={**settings, "refresh_interval": "5s"}))
    wait_ready(namespace, index, plural=INDICES)

    flow = unique("history")
    definition = generate_update_log(flow)
    apply(namespace, nifi_flow(flow, definition))
    group_id = wait_ready(namespace, flow, plural=FLOWS, timeout=90)["status"]["processGroupId"]
    apply(namespace, nifi_flow(flow, generate_update_log(flow, file_size="1 KB")))
    wait_ready(namespace, flow, plural=FLOWS, timeout=90)

    def file_size() -> str:
        generate = next(p for p in nifi.download(group_id)["flowContents"]["processors"] if p["name"] == "Generate")
        return str(generate["properties"]["File Size"])

    assert file_size() == "1 KB"
    roll_back(namespace, INDICES, index, 1)
    roll_back(namespace, FLOWS, flow, 1)
    wait_reason(namespace, index, "True", "RolledBackToRevision", plural=INDICES)
    wait_reason(namespace, flow, "True", "RolledBackToRevision", plural=FLOWS, timeout=90)
    assert search_server.index(index)["settings"]["index.refresh_interval"] == "1s"  # type: ignore[index]
    assert file_size() == "0B"
