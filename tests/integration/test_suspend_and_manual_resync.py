"""suspend stops all reconciling; the reconcile-requested-at annotation forces one."""

from __future__ import annotations

import time

from confluent_kafka.admin import AdminClient

from tests.integration.conftest import RESYNC_SECONDS, RunningOperator
from tests.integration.helpers import (
    annotate,
    apply,
    describe,
    described_as,
    event_reasons,
    get,
    kafka_requests,
    kafka_topic,
    patch_spec,
    set_config_out_of_band,
    unique,
    wait_for,
    wait_ready,
    wait_reason,
)


def test_a_suspended_object_neither_corrects_nor_applies_until_resumed(
    operator: RunningOperator, namespace: str, kafka_admin: AdminClient
) -> None:
    name = unique("paused")
    apply(namespace, kafka_topic(name, 1, 1, config={"retention.ms": "3600000"}))
    wait_ready(namespace, name)

    patch_spec(namespace, name, {"suspend": True})
    wait_reason(namespace, name, "True", "Suspended")
    set_config_out_of_band(kafka_admin, name, "retention.ms", "1000")
    patch_spec(namespace, name, {"partitions": 3})
    time.sleep(RESYNC_SECONDS * 3 + 1)
    topic = describe(kafka_admin, name)
    assert topic is not None and (topic["partitions"], topic["retention.ms"]) == (1, "1000")
    assert "Suspended" in event_reasons(namespace, name)

    patch_spec(namespace, name, {"suspend": False})
    wait_ready(namespace, name)
    described_as(kafka_admin, name, lambda t: (t["partitions"], t["retention.ms"]) == (3, "3600000"))


def test_a_reconcile_request_is_handled_and_its_token_echoed(operator: RunningOperator, namespace: str) -> None:
    name = unique("manual")
    apply(namespace, kafka_topic(name, 1, 1))
    wait_ready(namespace, name)
    annotate(namespace, name, "infometis.io/reconcile-requested-at", "2026-11-27T12:00:00Z")
    wait_for(
        lambda: get(namespace, name)["status"].get("lastHandledReconcileAt") == "2026-11-27T12:00:00Z",
        what="token echoed",
    )


def test_a_reconcile_request_retries_a_refused_spec(
    operator: RunningOperator, namespace: str, kafka_admin: AdminClient
) -> None:
    """A refused request is not re-sent on resync, but a manual request does re-send it."""
    name = unique("retry")
    apply(namespace, kafka_topic(name, 1, 1, config={"no.such.config": "1"}))
    wait_reason(namespace, name, "False", "InvalidConfig")
    creates = kafka_requests(operator.metrics_url, "create_topics")
    annotate(namespace, name, "infometis.io/reconcile-requested-at", "again")
    wait_for(lambda: get(namespace, name)["status"].get("lastHandledReconcileAt") == "again", what="token echoed")
    assert get(namespace, name)["status"]["conditions"][0]["reason"] == "InvalidConfig"
    assert kafka_requests(operator.metrics_url, "create_topics") >= creates + 1  # the refused create was re-sent
