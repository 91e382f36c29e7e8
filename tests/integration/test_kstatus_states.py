"""How Flux, kpt and `kubectl wait` see each state: the real kstatus library on objects from the live stack.

The mapping (README, "Conditions"): settled states are Current (in sync, drift
reported as asked, suspended as asked), every stall is Failed, work under way
is InProgress, a deleting object is Terminating.
"""

from __future__ import annotations

import base64
from typing import Any

from confluent_kafka.admin import AdminClient
from kubernetes import client

from tests.integration.conftest import MAX_PARTITIONS, RunningOperator
from tests.integration.helpers import (
    apply,
    get,
    kafka_topic,
    kubectl,
    patch_spec,
    set_config_out_of_band,
    unique,
    wait_for,
    wait_ready,
    wait_reason,
)
from tests.integration.kstatus import kstatus_of


def kstatus(obj: dict[str, Any]) -> str:
    return kstatus_of([obj])[0]["status"]


def test_every_state_an_object_can_be_in_reads_as_documented_to_kstatus(
    operator: RunningOperator, namespace: str, kafka_admin: AdminClient
) -> None:
    in_sync, drifted, suspended = unique("insync"), unique("drifted"), unique("suspended")
    invalid, too_wide, too_many = unique("invalid"), unique("toowide"), unique("toomany")
    unreachable, deleting = unique("unreachable"), unique("deleting")
    awaiting = unique("awaiting")
    client.CoreV1Api().create_namespaced_secret(
        namespace,
        {"metadata": {"name": "nowhere"}, "data": {"bootstrap.servers": base64.b64encode(b"127.0.0.1:1").decode()}},
    )
    apply(namespace, kafka_topic(in_sync, 1, 1))
    apply(namespace, kafka_topic(drifted, 1, 1, driftPolicy="Report", config={"retention.ms": "3600000"}))
    apply(namespace, kafka_topic(suspended, 1, 1))
    apply(namespace, kafka_topic(invalid, 1, 1, config={"retention.ms": "soon"}))
    apply(namespace, kafka_topic(too_wide, 1, 99))
    apply(namespace, kafka_topic(too_many, MAX_PARTITIONS + 1, 1))
    apply(namespace, kafka_topic(unreachable, 1, 1, clusterRef={"name": "nowhere"}))
    apply(namespace, kafka_topic(awaiting, 1, 1, approval="Manual"))
    apply(namespace, kafka_topic(deleting, 1, 1, deletionPolicy="Delete", clusterRef={"name": "nowhere"}))

    wait_ready(namespace, drifted)
    set_config_out_of_band(kafka_admin, drifted, "retention.ms", "1000")
    wait_ready(namespace, suspended)
    patch_spec(namespace, suspended, {"suspend": True})

    expected = {
        in_sync: ("True", "Succeeded", "Current"),
        drifted: ("True", "DriftDetected", "Current"),
        suspended: ("True", "Suspended", "Current"),
        invalid: ("False", "InvalidConfig", "Failed"),
        too_wide: ("False", "InsufficientBrokers", "Failed"),
        too_many: ("False", "NotPermitted", "Failed"),
        unreachable: ("False", "ProgressingWithRetry", "InProgress"),
        awaiting: ("False", "AwaitingApproval", "InProgress"),
    }
    for name, (ready, reason, _) in expected.items():
        wait_reason(namespace, name, ready, reason, timeout=60)
    seen = {name: kstatus(get(namespace, name)) for name in expected}
    assert seen == {name: want for name, (_, _, want) in expected.items()}

    # A new generation not yet handled is InProgress whatever Ready said before.
    stale = get(namespace, in_sync)
    stale["metadata"]["generation"] += 1
    assert kstatus(stale) == "InProgress"

    # Deleting, held by the finalizer while Kafka cannot be reached.
    kubectl("delete", "kafkatopic", deleting, "-n", namespace, "--wait=false")
    wait_for(lambda: get(namespace, deleting)["metadata"].get("deletionTimestamp"), what="deletion started")
    assert kstatus(get(namespace, deleting)) == "Terminating"
    patch_spec(namespace, deleting, {"deletionPolicy": "Retain"})  # let it go
