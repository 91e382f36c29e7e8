"""ElasticsearchIndex on the real servers: Elasticsearch 9.5.3 and OpenSearch 3.8.0, every test on both."""

from __future__ import annotations

import time
from typing import Any

from tests.argocd import argocd_health
from tests.integration.conftest import RESYNC_SECONDS, RunningOperator
from tests.integration.helpers import (
    admitted,
    apply,
    apply_fails,
    condition,
    event_reasons,
    events,
    exists,
    get,
    kubectl,
    run_stack,
    service_requests,
    unique,
    wait_for,
    wait_ready,
    wait_reason,
)
from tests.integration.search import (
    PLURAL,
    SERVERS,
    SearchServer,
    connection_secret,
    search_index,
    server_fixture,
)

search_server = server_fixture(SERVERS)

USER_PROFILES: dict[str, Any] = {
    "settings": {"number_of_shards": 3, "index": {"number_of_replicas": 1}, "refresh_interval": "1s"},
    "mappings": {
        "properties": {
            "user_id": {"type": "keyword"},
            "email": {"type": "keyword"},
            "created_at": {"type": "date"},
        }
    },
    "aliases": {"profiles-read": {"filter": {"term": {"user_id": "u1"}}, "routing": "1"}},
}


def profiles(name: str) -> dict[str, Any]:
    """The seed's user-profiles index, with an alias of its own (an alias with two write indices is refused)."""
    return {**USER_PROFILES, "aliases": {f"{name}-read": USER_PROFILES["aliases"]["profiles-read"]}}


def ready_index(namespace: str, name: str, server: SearchServer, **spec: Any) -> dict[str, Any]:
    connection_secret(namespace, server)
    apply(namespace, search_index(name, **spec))
    return wait_ready(namespace, name, plural=PLURAL)


def health(obj: dict[str, Any]) -> str | None:
    healthy = condition(obj, "Healthy")
    return healthy["reason"] if healthy else None


def test_an_index_is_created_as_declared_and_its_health_shown(
    operator: RunningOperator, namespace: str, search_server: SearchServer
) -> None:
    name = unique("profiles")
    obj = ready_index(namespace, name, search_server, **profiles(name))

    index = search_server.index(name)
    assert index is not None
    assert index["settings"]["index.number_of_shards"] == "3"
    assert index["settings"]["index.number_of_replicas"] == "1"
    assert index["mappings"]["properties"]["email"] == {"type": "keyword"}
    assert index["aliases"][f"{name}-read"]["index_routing"] == "1"
    status = obj["status"]
    assert (status["indexName"], status["concreteIndex"], status["indexUuid"]) == (
        name,
        name,
        index["settings"]["index.uuid"],
    )
    assert (status["shards"], status["replicas"]) == (3, 1)
    # One node cannot hold replicas: yellow, said in a condition, not in a field that changes each resync.
    assert health(obj) == "Yellow"
    assert condition(obj, "Healthy")["status"] == "False"  # type: ignore[index]
    assert event_reasons(namespace, name) == ["Created"]
    assert argocd_health(obj)[0] == "Healthy"
    created = events(namespace, name)[0]["message"]
    assert "created with 3 shard(s), 1 replica(s), 3 mapped field(s), 1 alias(es)" in created
    columns = kubectl("get", PLURAL, name, "-n", namespace, "--no-headers").stdout.split()
    assert columns[:7] == [name, name, "3", "1", "Yellow", "True", "Succeeded"]  # NAME, then the printer columns


def test_dynamic_settings_new_fields_and_aliases_change_in_place(
    operator: RunningOperator, namespace: str, search_server: SearchServer
) -> None:
    name = unique("inplace")
    first = ready_index(namespace, name, search_server, **profiles(name))
    uuid = first["status"]["indexUuid"]

    apply(  # the whole spec, as a GitOps tool does: a merge patch would merge the settings maps
        namespace,
        search_index(
            name,
            settings={"number_of_shards": 3, "number_of_replicas": 0, "refresh_interval": "5s"},
            mappings={
                "properties": {
                    **USER_PROFILES["mappings"]["properties"],
                    "email": {"type": "keyword", "ignore_above": 256, "fields": {"text": {"type": "text"}}},
                    "country": {"type": "keyword"},
                }
            },
            aliases={f"{name}-write": {"is_write_index": True}},
        ),
    )

    obj = wait_for(
        lambda: (o := get(namespace, name, PLURAL))["status"].get("replicas") == 0 and health(o) == "Green" and o,
        what="replicas 0 and green",
    )
    index = search_server.index(name)
    assert index is not None
    assert index["settings"]["index.uuid"] == uuid  # the same index, changed in place
    assert index["settings"]["index.refresh_interval"] == "5s"
    assert index["mappings"]["properties"]["email"] == {
        "type": "keyword",
        "ignore_above": 256,
        "fields": {"text": {"type": "text"}},
    }
    assert index["mappings"]["properties"]["country"] == {"type": "keyword"}
    assert set(index["aliases"]) == {f"{name}-write"}  # the alias the spec no longer lists is removed
    assert condition(obj, "Healthy")["status"] == "True"  # type: ignore[index]
    updated = [e["message"] for e in events(namespace, name) if e["reason"] == "Updated"]
    assert len(updated) == 1
    for said in (
        "setting index.number_of_replicas 1 -> 0",
        "setting index.refresh_interval 1s -> 5s",
        "mapping email.text added (text)",
        "mapping country added (keyword)",
        "mapping email.ignore_above unset -> 256",
        f"alias {name}-write added",
        f"alias {name}-read removed",
    ):
        assert said in updated[0]


def test_a_change_the_server_cannot_make_in_place_is_refused_at_admission_unless_migrating(
    operator: RunningOperator, namespace: str, search_server: SearchServer
) -> None:
    name = unique("refused")
    ready_index(namespace, name, search_server, **profiles(name))
    before = search_server.index(name)
    spec = profiles(name)
    properties = USER_PROFILES["mappings"]["properties"]
    changes = {
        "settings.number_of_shards cannot change on an existing index": {"settings": {"index.number_of_shards": "1"}},
        "the type of a mapping field cannot change on an existing index": {
            "mappings": {"properties": {**properties, "email": {"type": "text"}}}
        },
        "mapping fields cannot be removed from an existing index": {
            "mappings": {"properties": {"user_id": {"type": "keyword"}, "email": {"type": "keyword"}}}
        },
    }
    for message, change in changes.items():
        error = apply_fails(namespace, search_index(name, **{**spec, **change}))
        assert message in error and "set spec.migration" in error, error
        admitted(namespace, search_index(name, **{**spec, **change, "migration": {"strategy": "Reindex"}}))
    # The shards the index has, written another way, are no change.
    admitted(namespace, search_index(name, **{**spec, "settings": {"index": {"number_of_shards": "3"}}}))
    assert search_server.index(name) == before


def test_a_change_admission_cannot_see_stalls_naming_each_field_touches_nothing_and_can_be_reverted(
    operator: RunningOperator, namespace: str, search_server: SearchServer
) -> None:
    name = unique("static")
    address = {"properties": {"city": {"type": "keyword"}, "zip": {"type": "keyword"}}}
    spec = {
        **profiles(name),
        "mappings": {"properties": {**USER_PROFILES["mappings"]["properties"], "address": address}},
    }
    ready_index(namespace, name, search_server, **spec)
    before = search_server.index(name)

    # A static setting other than number_of_shards, a nested field retyped and one removed: CEL
    # cannot walk free-form settings and mappings, the operator refuses them.
    changed_address = {"properties": {"city": {"type": "text"}}}
    apply(
        namespace,
        search_index(
            name,
            settings={**USER_PROFILES["settings"], "index": {"number_of_replicas": 0}, "codec": "best_compression"},
            mappings={"properties": {**USER_PROFILES["mappings"]["properties"], "address": changed_address}},
            aliases=spec["aliases"],
        ),
    )

    obj = wait_reason(namespace, name, "False", "RequiresMigration", plural=PLURAL)
    message = condition(obj, "Stalled")["message"]  # type: ignore[index]
    assert "settings.index.codec unset -> best_compression" in message, message
    assert "mappings.address.city.type keyword -> text" in message, message
    assert "mappings.address.zip keyword -> removed" in message, message
    assert search_server.index(name) == before  # not even the in-place part (replicas)
    assert "RequiresMigration" in event_reasons(namespace, name)
    assert argocd_health(obj) == ("Degraded", f"RequiresMigration: {message}")

    # While stalled, admission leaves the spec to the operator: going back is always possible.
    apply(namespace, search_index(name, **spec))
    wait_ready(namespace, name, plural=PLURAL)
    assert search_server.index(name) == before


def test_drift_is_corrected_and_a_deleted_index_recreated(
    operator: RunningOperator, namespace: str, search_server: SearchServer
) -> None:
    name = unique("drift")
    ready_index(namespace, name, search_server, **profiles(name))
    search_server.api.indices.put_settings(index=name, body={"index.refresh_interval": "30s"})
    search_server.api.indices.delete_alias(index=name, name=f"{name}-read")

    wait_for(
        lambda: (
            (i := search_server.index(name)) is not None
            and i["settings"]["index.refresh_interval"] == "1s"
            and f"{name}-read" in i["aliases"]
        ),
        what="drift corrected",
    )
    # A resync may fall between the two changes: then each has its own Event.
    corrected = " ".join(e["message"] for e in events(namespace, name) if e["reason"] == "DriftCorrected")
    assert "setting index.refresh_interval 30s -> 1s" in corrected
    assert f"alias {name}-read added" in corrected

    first_uuid = get(namespace, name, PLURAL)["status"]["indexUuid"]
    search_server.api.indices.delete(index=name)
    wait_for(
        lambda: (i := search_server.index(name)) is not None and i["settings"]["index.uuid"] != first_uuid,
        what="index recreated",
    )
    wait_for(lambda: get(namespace, name, PLURAL)["status"]["indexUuid"] != first_uuid, what="status.indexUuid moved")
    recreated = [e["message"] for e in events(namespace, name) if e["reason"] == "DriftCorrected"]
    assert any("the index was missing and was created with 3 shard(s)" in m for m in recreated)


def test_with_report_policy_drift_is_listed_and_left_in_place(
    operator: RunningOperator, namespace: str, search_server: SearchServer
) -> None:
    name = unique("report")
    ready_index(namespace, name, search_server, driftPolicy="Report", **profiles(name))
    search_server.api.indices.put_settings(index=name, body={"index.number_of_replicas": 0})

    obj = wait_reason(namespace, name, "True", "DriftDetected", plural=PLURAL)
    assert obj["status"]["drift"] == [{"field": "settings.index.number_of_replicas", "desired": "1", "actual": "0"}]
    assert condition(obj, "Drifted")["status"] == "True"  # type: ignore[index]
    time.sleep(RESYNC_SECONDS * 2)
    assert search_server.index(name)["settings"]["index.number_of_replicas"] == "0"  # type: ignore[index]
    assert "DriftCorrected" not in event_reasons(namespace, name)


def test_parts_the_server_adds_are_never_drift_and_a_no_op_resync_writes_nothing(
    operator: RunningOperator, namespace: str, search_server: SearchServer
) -> None:
    name = unique("quiet")
    spelled = {
        "settings": {"index.number_of_shards": "1", "number_of_replicas": 0, "index": {"refresh_interval": "1s"}},
        "mappings": {"properties": {"user_id": {"type": "keyword", "index": True, "doc_values": True}}},
    }
    obj = ready_index(namespace, name, search_server, **spelled)
    # Documents with fields nobody declared: the server maps them itself.
    search_server.api.index(index=name, body={"user_id": "u1", "note": "free text", "score": 3}, refresh=True)
    before = search_server.index(name)
    assert before is not None and "note" in before["mappings"]["properties"]
    requests_before = service_requests(operator.metrics_url, "elasticsearch")
    events_before = len(events(namespace, name))

    time.sleep(RESYNC_SECONDS * 4 + 1)

    after = get(namespace, name, PLURAL)
    assert after["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"]
    assert len(events(namespace, name)) == events_before
    assert search_server.index(name) == before
    requests = service_requests(operator.metrics_url, "elasticsearch")
    gets = requests.get("indices.get", 0) - requests_before.get("indices.get", 0)
    assert gets >= 3  # it did look, every resync
    changes = {k: v - requests_before.get(k, 0) for k, v in requests.items() if k.startswith("indices.put")}
    assert not any(changes.values()), changes


def test_an_existing_index_is_adopted_without_losing_documents(
    operator: RunningOperator, namespace: str, search_server: SearchServer
) -> None:
    name = unique("adopt")
    search_server.api.indices.create(
        index=name,
        body={
            "settings": {"number_of_shards": 3, "number_of_replicas": 0},
            "mappings": {"properties": {"user_id": {"type": "keyword"}}},
        },
    )
    for number in range(5):
        search_server.api.index(index=name, body={"user_id": f"u{number}"})
    uuid = search_server.index(name)["settings"]["index.uuid"]  # type: ignore[index]

    obj = ready_index(namespace, name, search_server, **profiles(name))

    assert obj["status"]["indexUuid"] == uuid
    assert search_server.documents(name) == 5
    index = search_server.index(name)
    assert index is not None and index["settings"]["index.number_of_replicas"] == "1"
    assert event_reasons(namespace, name)[:2] == ["Adopted", "Updated"]


def test_a_second_object_for_the_same_index_is_a_conflict(
    operator: RunningOperator, namespace: str, search_server: SearchServer
) -> None:
    first, second = unique("owner"), unique("rival")
    index_name = unique("shared")
    ready_index(namespace, first, search_server, indexName=index_name, **profiles(index_name))
    apply(namespace, search_index(second, indexName=index_name, settings={"number_of_replicas": 0}))

    obj = wait_reason(namespace, second, "False", "ResourceConflict", plural=PLURAL)
    assert f"ElasticsearchIndex {namespace}/{first}" in condition(obj, "Stalled")["message"]  # type: ignore[index]
    time.sleep(RESYNC_SECONDS)
    assert search_server.index(index_name)["settings"]["index.number_of_replicas"] == "1"  # type: ignore[index]


def test_deletion_policies_retain_delete_and_delete_if_empty(
    operator: RunningOperator, namespace: str, search_server: SearchServer
) -> None:
    retained, deleted, empty, full = (unique(p) for p in ("retain", "delete", "empty", "full"))
    connection_secret(namespace, search_server)
    apply(namespace, search_index(retained, settings={"number_of_replicas": 0}))
    apply(namespace, search_index(deleted, deletionPolicy="Delete", settings={"number_of_replicas": 0}))
    apply(namespace, search_index(empty, deletionPolicy="DeleteIfEmpty", settings={"number_of_replicas": 0}))
    apply(namespace, search_index(full, deletionPolicy="DeleteIfEmpty", settings={"number_of_replicas": 0}))
    for name in (retained, deleted, empty, full):
        wait_ready(namespace, name, plural=PLURAL)
    search_server.api.index(index=full, id="u1", body={"user_id": "u1"}, refresh=True)

    for name in (retained, deleted, empty, full):
        kubectl("delete", PLURAL, name, "-n", namespace, "--wait=false")

    wait_for(lambda: not any(exists(namespace, n, PLURAL) for n in (retained, deleted, empty)), what="objects gone")
    assert search_server.index(retained) is not None
    assert search_server.index(deleted) is None
    assert search_server.index(empty) is None
    stalled = wait_reason(namespace, full, "False", "IndexNotEmpty", plural=PLURAL)
    assert "holds 1 document(s)" in condition(stalled, "Stalled")["message"]  # type: ignore[index]
    assert any(e["type"] == "Warning" and e["reason"] == "IndexNotEmpty" for e in events(namespace, full))
    # Nothing was lost, and the index takes writes again: the block held only while counting.
    assert search_server.documents(full) == 1
    search_server.api.index(index=full, id="u2", body={"user_id": "u2"}, refresh=True)
    search_server.api.delete(index=full, id="u2", refresh=True)
    search_server.api.delete(index=full, id="u1", refresh=True)

    wait_for(lambda: not exists(namespace, full, PLURAL), what="the emptied index's object gone")
    assert search_server.index(full) is None


def test_a_stopped_server_shows_as_retrying_and_the_index_recovers_when_it_is_back(
    operator: RunningOperator, namespace: str, search_server: SearchServer
) -> None:
    name = unique("outage")
    ready_index(namespace, name, search_server, settings={"number_of_replicas": 0})
    run_stack("stop", search_server.name)
    try:
        obj = wait_reason(namespace, name, "False", "ProgressingWithRetry", plural=PLURAL)
        message = condition(obj, "Ready")["message"]  # type: ignore[index]
        assert search_server.url in message and "connect" in message.lower()  # where, in the client's words
        assert ": :" not in message
        assert condition(obj, "Healthy") is not None  # the last health seen stays; only Ready says it is unknown now
    finally:
        run_stack("start", search_server.name)
    wait_ready(namespace, name, timeout=120, plural=PLURAL)
    assert [r for r in event_reasons(namespace, name) if r != "ProgressingWithRetry"] == ["Created", "Succeeded"]
