"""The operator's store equals what the API server holds, even across gaps in the watch.

A watch that restarts after its resourceVersion expired (an API server restart,
etcd compaction) lists again and gets no DELETED for objects removed meanwhile.
Here an object is removed from etcd while the API server is down and the
history compacted, so no DELETED event can ever arrive for it.
"""

from __future__ import annotations

import base64
import json
import urllib.request
from collections.abc import Iterator

import pytest
from confluent_kafka.admin import AdminClient

from tests.integration.conftest import RunningOperator
from tests.integration.helpers import (
    apply,
    describe,
    exists,
    kafka_topic,
    run_stack,
    set_config_out_of_band,
    unique,
    wait_for,
    wait_ready,
)

ETCD = "http://127.0.0.1:22379"  # hack/stack's etcd client port


def etcd_call(method: str, body: dict[str, object]) -> dict[str, object]:
    request = urllib.request.Request(f"{ETCD}/v3/{method}", data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        answer: dict[str, object] = json.loads(response.read())
        return answer


def delete_from_etcd_and_compact(namespace: str, name: str) -> None:
    key = f"/registry/infometis.io/kafkatopics/{namespace}/{name}".encode()
    deleted = etcd_call("kv/deleterange", {"key": base64.b64encode(key).decode()})
    assert deleted.get("deleted") == "1", deleted
    revision = int(deleted["header"]["revision"])  # type: ignore[index]
    etcd_call("kv/compaction", {"revision": revision, "physical": True})


@pytest.fixture
def api_server_restarted_afterwards() -> Iterator[None]:
    yield
    run_stack("start", "kube-apiserver")


def test_an_object_deleted_while_the_watch_was_away_is_forgotten_and_releases_its_topic(
    operator: RunningOperator,
    namespace: str,
    kafka_admin: AdminClient,
    api_server_restarted_afterwards: None,
) -> None:
    topic = unique("ghost")
    apply(namespace, kafka_topic("first", 1, 1, topicName=topic, config={"retention.ms": "3600000"}))
    wait_ready(namespace, "first")

    # Killed, as a crash would: the gap is the same, and a SIGTERM leaves it draining the open watches for 30 s.
    run_stack("stop", "--kill", "kube-apiserver")
    delete_from_etcd_and_compact(namespace, "first")
    run_stack("start", "kube-apiserver")
    assert not exists(namespace, "first")

    # A new object for the same topic is not in conflict with the vanished one...
    apply(namespace, kafka_topic("second", 1, 1, topicName=topic, config={"retention.ms": "7200000"}))
    wait_ready(namespace, "second", timeout=90)
    wait_for(lambda: "first: deleted while the watch was away" in operator.log(), what="the log says so")
    # ...and the vanished object no longer corrects the topic to its own spec.
    set_config_out_of_band(kafka_admin, topic, "retention.ms", "1000")
    wait_for(lambda: describe(kafka_admin, topic)["retention.ms"] == "7200000", timeout=30)  # type: ignore[index]
    assert f"{namespace}/first: DriftCorrected" not in operator.log()
