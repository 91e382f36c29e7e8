"""The operator's writes as the real API server answers them: no operator acts during these tests (the
session's is paused: it would write the status of a new object within about 100 ms)."""

from __future__ import annotations

import pytest

from controllers.core.kube import KubeApi, KubeError
from controllers.core.objects import ObjectKey, ResourceInfo
from tests.integration.conftest import RunningOperator
from tests.integration.helpers import (
    GROUP,
    PLURAL,
    VERSION,
    custom_objects,
    events,
    get,
    kafka_topic,
    kubectl,
    unique,
)

RESOURCE = ResourceInfo(GROUP, VERSION, PLURAL, "KafkaTopic")


def create(namespace: str, name: str) -> str:
    created = custom_objects().create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, kafka_topic(name))
    return str(created["metadata"]["uid"])


async def test_a_status_write_for_a_deleted_object_does_not_reach_its_successor(
    namespace: str, session_operator_paused: None
) -> None:
    # No operator acts here: this is the API server's answer to the operator's write, on its own.
    name = unique("recreated")
    old_uid = create(namespace, name)
    kubectl("delete", "kafkatopic", name, "-n", namespace)
    new_uid = create(namespace, name)
    kube = KubeApi.from_environment()
    try:
        with pytest.raises(KubeError, match="422"):
            await kube.replace_status(RESOURCE, ObjectKey(namespace, name), old_uid, {"observedGeneration": 7})
        assert "status" not in get(namespace, name)
        await kube.replace_status(RESOURCE, ObjectKey(namespace, name), new_uid, {"observedGeneration": 7})
        assert get(namespace, name)["status"] == {"observedGeneration": 7}
    finally:
        await kube.close()


async def test_an_event_with_a_stable_id_posted_twice_is_one_event(
    namespace: str, session_operator_paused: None
) -> None:
    name = unique("announced")
    create(namespace, name)
    involved = get(namespace, name)
    kube = KubeApi.from_environment()
    try:
        for _ in range(2):
            await kube.record_event(
                involved, RESOURCE, reason="Announced", message="Said once.", warning=False, event_id="0123abcd"
            )
    finally:
        await kube.close()
    assert [e["reason"] for e in events(namespace, name) if e["reason"] == "Announced"] == ["Announced"]


async def test_the_operator_may_read_one_object_of_its_kind_as_a_relist_does_for_a_change_the_watch_missed(
    operator: RunningOperator, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = unique("read")
    uid = create(namespace, name)
    monkeypatch.setenv("KUBECONFIG", str(operator.kubeconfig))  # the operator's ServiceAccount and roles
    kube = KubeApi.from_environment()
    try:
        body = await kube.read_object(RESOURCE, ObjectKey(namespace, name))
        assert body is not None and body["metadata"]["uid"] == uid
        assert await kube.read_object(RESOURCE, ObjectKey(namespace, unique("absent"))) is None
    finally:
        await kube.close()
