"""A resync that finds nothing to do writes nothing: no status patch, no annotation, no Event."""

from __future__ import annotations

import time

from confluent_kafka.admin import AdminClient

from tests.integration.conftest import RESYNC_SECONDS, RunningOperator
from tests.integration.helpers import (
    apply,
    described_as,
    event_reasons,
    events,
    get,
    kafka_requests,
    kafka_topic,
    unique,
    wait_ready,
)


def test_no_writes_over_several_resync_periods(operator: RunningOperator, namespace: str) -> None:
    names = [unique("idle") for _ in range(3)]
    for name in names:
        apply(namespace, kafka_topic(name, 2, 1, config={"retention.ms": "3600000"}))
    before = {name: wait_ready(namespace, name) for name in names}
    event_counts = {name: len(events(namespace, name)) for name in names}
    describes = kafka_requests(operator.metrics_url, "describe_topics")

    time.sleep(RESYNC_SECONDS * 4 + 1)

    for name in names:
        after = get(namespace, name)
        assert after["metadata"]["resourceVersion"] == before[name]["metadata"]["resourceVersion"]
        assert after["metadata"].get("annotations") == before[name]["metadata"].get("annotations")
        assert len(events(namespace, name)) == event_counts[name]
    # The operator did look: resyncs described the topics (batched) in those periods.
    assert kafka_requests(operator.metrics_url, "describe_topics") >= describes + 3


def test_config_spelled_differently_from_how_kafka_stores_it_is_in_sync_and_stays_quiet(
    operator: RunningOperator, namespace: str, kafka_admin: AdminClient
) -> None:
    name = unique("spelling")
    config = {"cleanup.policy": "compact, delete", "retention.ms": "+86400000", "min.cleanable.dirty.ratio": "0.50"}
    apply(namespace, kafka_topic(name, 1, 1, config=config))
    obj = wait_ready(namespace, name)
    stored = described_as(kafka_admin, name, lambda t: len(t["overrides"]) == 3)["overrides"]
    assert stored == {
        "cleanup.policy": "compact,delete",
        "retention.ms": "86400000",
        "min.cleanable.dirty.ratio": "0.5",
    }

    time.sleep(RESYNC_SECONDS * 3 + 1)

    assert get(namespace, name)["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"]
    assert event_reasons(namespace, name) == ["Created"]
