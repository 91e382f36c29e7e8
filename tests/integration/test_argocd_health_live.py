"""What Argo CD shows for objects of every kind in every state, read live from the stack.

Each object is driven into a state on the real servers, taken with
`kubectl get -o json` (what Argo CD's cache holds), and the shipped health
script for its kind (config/argocd/health) is run on it in Argo CD's own Lua
interpreter (tests/argocd.py, hack/argocd). The mapping is the README's
("Argo CD"): in sync, drift reported as asked -> Healthy; work under way or
retrying, a generation not handled yet -> Progressing; every stall ->
Degraded; suspended -> Suspended. The message says why, from the conditions.
"""

from __future__ import annotations

import base64
import json
import os
import signal
from collections.abc import Callable
from typing import Any

from confluent_kafka.admin import AdminClient
from kubernetes import client

from tests.argocd import SCRIPTS, argocd_health
from tests.integration.conftest import RunningOperator
from tests.integration.helpers import (
    REPO,
    apply,
    condition,
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
from tests.integration.nifi import NiFi, nifi, nifi_flow
from tests.integration.search import connect, connection_secret, search_index
from tests.nifi_flows import generate_update_log

__all__ = ["nifi"]  # the fixture

TIMEOUT = 60
UNREACHABLE = "127.0.0.1:1"  # nothing listens there: connections are refused at once
# Ready (status, reason) of each state, and (health, message) Argo CD must show, from the live object.
Expectation = tuple[str, str, str, Callable[[dict[str, Any]], str]]


def ready_message(obj: dict[str, Any]) -> str:
    return condition(obj, "Ready")["message"]  # type: ignore[index]


def said(kind: str) -> Callable[[dict[str, Any]], str]:
    """The condition's reason and message, as the scripts join them."""

    def message(obj: dict[str, Any]) -> str:
        found = condition(obj, kind)
        assert found is not None, f"no {kind} condition in {obj['status']}"
        return f"{found['reason']}: {found['message']}"

    return message


IN_SYNC: Expectation = ("True", "Succeeded", "Healthy", ready_message)
DRIFT_REPORTED: Expectation = ("True", "DriftDetected", "Healthy", said("Ready"))
SUSPENDED: Expectation = ("True", "Suspended", "Suspended", ready_message)
RETRYING: Expectation = ("False", "ProgressingWithRetry", "Progressing", said("Reconciling"))
AWAITING_APPROVAL: Expectation = ("False", "AwaitingApproval", "Progressing", said("Reconciling"))


def stalled(reason: str) -> Expectation:
    return ("False", reason, "Degraded", said("Stalled"))


def live(namespace: str, plural: str, name: str) -> dict[str, Any]:
    obj: dict[str, Any] = json.loads(kubectl("get", plural, name, "-n", namespace, "-o", "json").stdout)
    return obj


def assert_argocd_shows(namespace: str, plural: str, expected: dict[str, Expectation]) -> None:
    for name, (ready, reason, _, _) in expected.items():
        wait_reason(namespace, name, ready, reason, timeout=TIMEOUT, plural=plural)
    seen, wanted = {}, {}
    for name, (_, _, health, message) in expected.items():
        obj = live(namespace, plural, name)
        seen[name], wanted[name] = argocd_health(obj), (health, message(obj))
    assert seen == wanted


def assert_an_unhandled_generation_is_progressing(
    operator: RunningOperator, namespace: str, plural: str, name: str, change: dict[str, Any]
) -> None:
    """A spec change the operator has not handled yet: Progressing, whatever Ready said before."""
    os.kill(operator.process.pid, signal.SIGSTOP)  # so the change stays unhandled while we look
    try:
        patch_spec(namespace, name, change, plural=plural)
        obj = live(namespace, plural, name)
    finally:
        os.kill(operator.process.pid, signal.SIGCONT)
    generation = obj["metadata"]["generation"]
    assert obj["status"]["observedGeneration"] < generation
    assert argocd_health(obj) == ("Progressing", f"Waiting for the operator to handle generation {generation}")


def unreachable_secret(namespace: str, name: str, key: str, value: str) -> None:
    client.CoreV1Api().create_namespaced_secret(
        namespace, {"metadata": {"name": name}, "data": {key: base64.b64encode(value.encode()).decode()}}
    )


def test_kafka_topics_show_in_argo_cd_as_documented_in_each_state(
    operator: RunningOperator, namespace: str, kafka_admin: AdminClient
) -> None:
    plural = "kafkatopics"
    in_sync, drifted, suspended = unique("insync"), unique("drifted"), unique("suspended")
    invalid, too_wide, unreachable = unique("invalid"), unique("toowide"), unique("unreachable")
    awaiting = unique("awaiting")
    unreachable_secret(namespace, "nowhere", "bootstrap.servers", UNREACHABLE)
    apply(namespace, kafka_topic(in_sync, 1, 1))
    apply(namespace, kafka_topic(awaiting, 1, 1, approval="Manual"))
    apply(namespace, kafka_topic(drifted, 1, 1, driftPolicy="Report", config={"retention.ms": "3600000"}))
    apply(namespace, kafka_topic(suspended, 1, 1))
    apply(namespace, kafka_topic(invalid, 1, 1, config={"retention.ms": "soon"}))
    apply(namespace, kafka_topic(too_wide, 1, 99))
    apply(namespace, kafka_topic(unreachable, 1, 1, clusterRef={"name": "nowhere"}))
    wait_ready(namespace, drifted)
    set_config_out_of_band(kafka_admin, drifted, "retention.ms", "1000")
    wait_ready(namespace, suspended)
    patch_spec(namespace, suspended, {"suspend": True})

    assert_argocd_shows(
        namespace,
        plural,
        {
            in_sync: IN_SYNC,
            drifted: DRIFT_REPORTED,
            suspended: SUSPENDED,
            invalid: stalled("InvalidConfig"),
            too_wide: stalled("InsufficientBrokers"),
            unreachable: RETRYING,
            awaiting: AWAITING_APPROVAL,
        },
    )
    assert "retention.ms" in argocd_health(live(namespace, plural, drifted))[1]
    assert "soon" in argocd_health(live(namespace, plural, invalid))[1]
    assert_an_unhandled_generation_is_progressing(operator, namespace, plural, in_sync, {"partitions": 2})


def test_elasticsearch_indices_show_in_argo_cd_as_documented_in_each_state(
    operator: RunningOperator, namespace: str
) -> None:
    plural = "elasticsearchindices"
    server = connect("elasticsearch", os.environ["ELASTICSEARCH_URL"])
    connection_secret(namespace, server)
    unreachable_secret(namespace, "nowhere", "url", f"http://{UNREACHABLE}")
    in_sync, drifted, suspended = unique("insync"), unique("drifted"), unique("suspended")
    refused, unreachable, yellow = unique("refused"), unique("unreachable"), unique("yellow")
    # No replicas: green on the one-node server, so Healthy without a Yellow note.
    single = {"index": {"number_of_replicas": 0}}
    apply(namespace, search_index(in_sync, settings=single))
    apply(namespace, search_index(yellow, settings={"index": {"number_of_replicas": 1}}))
    apply(
        namespace,
        search_index(
            drifted, settings={"index": {"number_of_replicas": 0, "refresh_interval": "1s"}}, driftPolicy="Report"
        ),
    )
    apply(namespace, search_index(suspended, settings=single))
    apply(namespace, search_index(refused, settings={"index": {"number_of_replicas": 0, "refresh_interval": "soon"}}))
    apply(namespace, search_index(unreachable, cluster_ref="nowhere", settings=single))
    try:
        wait_ready(namespace, drifted, plural=plural)
        server.api.indices.put_settings(index=drifted, body={"index.refresh_interval": "30s"})
        wait_ready(namespace, suspended, plural=plural)
        patch_spec(namespace, suspended, {"suspend": True}, plural=plural)
        wait_for(lambda: (condition(get(namespace, yellow, plural), "Healthy") or {}).get("reason") == "Yellow")

        assert_argocd_shows(
            namespace,
            plural,
            {
                in_sync: IN_SYNC,
                drifted: DRIFT_REPORTED,
                suspended: SUSPENDED,
                refused: stalled("SearchRefused"),
                unreachable: RETRYING,
                # Its replica has no second node to go to: still Healthy, and Argo CD says why it is Yellow.
                yellow: (
                    "True",
                    "Succeeded",
                    "Healthy",
                    lambda obj: f"{ready_message(obj)} Index health {said('Healthy')(obj)}",
                ),
            },
        )
        assert "refresh_interval" in argocd_health(live(namespace, plural, drifted))[1]
        assert UNREACHABLE in argocd_health(live(namespace, plural, unreachable))[1]
        assert_an_unhandled_generation_is_progressing(
            operator,
            namespace,
            plural,
            in_sync,
            {"settings": {"index": {"number_of_replicas": 0, "refresh_interval": "2s"}}},
        )
    finally:
        server.api.close()


def test_nifi_flows_show_in_argo_cd_as_documented_in_each_state(
    operator: RunningOperator, namespace: str, nifi: NiFi
) -> None:
    plural = "nififlows"
    unreachable_secret(namespace, "nowhere", "url", f"http://{UNREACHABLE}/nifi-api")
    in_sync, drifted, suspended = unique("insync"), unique("drifted"), unique("suspended")
    invalid, unreachable = unique("invalid"), unique("unreachable")
    source = [{"name": "source", "value": "argocd"}]
    # Drop: a flow stopped out of band may hold queued data, and the namespace must still go.
    for name, spec in (
        (in_sync, {}),
        (drifted, {"driftPolicy": "Report"}),
        (suspended, {}),
        (unreachable, {"clusterRef": {"name": "nowhere"}}),
    ):
        apply(namespace, nifi_flow(name, generate_update_log(name), parameters=source, updateStrategy="Drop", **spec))
    apply(namespace, nifi_flow(invalid, flowDefinitionRef={"name": "no-such-configmap", "key": "flow.json"}))
    group = wait_ready(namespace, drifted, plural=plural, timeout=TIMEOUT)["status"]["processGroupId"]
    nifi.stop_processor(group, "Generate")
    wait_ready(namespace, suspended, plural=plural, timeout=TIMEOUT)
    patch_spec(namespace, suspended, {"suspend": True}, plural=plural)

    assert_argocd_shows(
        namespace,
        plural,
        {
            in_sync: IN_SYNC,
            drifted: DRIFT_REPORTED,
            suspended: SUSPENDED,
            invalid: stalled("FlowDefinitionInvalid"),
            unreachable: RETRYING,
        },
    )
    assert "state (spec Running, actual Stopped)" in argocd_health(live(namespace, plural, drifted))[1]
    assert "no-such-configmap" in argocd_health(live(namespace, plural, invalid))[1]
    assert_an_unhandled_generation_is_progressing(
        operator, namespace, plural, in_sync, {"parameters": [{"name": "source", "value": "changed"}]}
    )


def test_the_shipped_argocd_cm_patch_adds_every_kinds_script_and_keeps_the_rest(namespace: str) -> None:
    """The README's install command, on a real API server: the keys land verbatim, other settings stay."""
    kubectl("create", "configmap", "argocd-cm", "-n", namespace, "--from-literal=url=https://argocd.example.com")
    kubectl(
        "patch", "configmap", "argocd-cm", "-n", namespace, "--patch-file", str(REPO / "config/argocd/argocd-cm.yaml")
    )
    data = live(namespace, "configmap", "argocd-cm")["data"]
    assert data == {
        "url": "https://argocd.example.com",
        **{
            f"resource.customizations.health.infometis.io_{kind}": (SCRIPTS / f"{kind}.lua").read_text()
            for kind in ("KafkaTopic", "ElasticsearchIndex", "NiFiFlow")
        },
    }
