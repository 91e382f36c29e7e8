"""Changes made outside the operator: corrected (driftPolicy Correct) or reported (Report)."""

from __future__ import annotations

import time

from confluent_kafka.admin import AdminClient, NewPartitions

from tests.integration.conftest import RESYNC_SECONDS, RunningOperator
from tests.integration.helpers import (
    apply,
    condition,
    create_secret,
    describe,
    described_as,
    event_reasons,
    events,
    get,
    kafka_topic,
    patch_spec,
    replace_secret,
    set_config_out_of_band,
    unique,
    wait_for,
    wait_ready,
    wait_reason,
)


def test_an_edited_config_is_reverted_with_a_drift_corrected_event(
    operator: RunningOperator, namespace: str, kafka_admin: AdminClient
) -> None:
    name = unique("revert")
    apply(namespace, kafka_topic(name, 1, 1, config={"retention.ms": "3600000"}))
    wait_ready(namespace, name)
    set_config_out_of_band(kafka_admin, name, "retention.ms", "1000")

    described_as(kafka_admin, name, lambda t: t["retention.ms"] == "3600000", timeout=60)
    corrected = wait_for(lambda: [e for e in events(namespace, name) if e["reason"] == "DriftCorrected"])
    assert corrected[0]["type"] == "Normal"
    assert "config retention.ms: 1000 -> 3600000" in corrected[0]["message"]
    assert condition(get(namespace, name), "Ready")["status"] == "True"  # type: ignore[index]


def test_a_deleted_topic_is_recreated(operator: RunningOperator, namespace: str, kafka_admin: AdminClient) -> None:
    name = unique("deleted")
    apply(namespace, kafka_topic(name, 2, 1))
    first_id = wait_ready(namespace, name)["status"]["topicId"]
    kafka_admin.delete_topics([name])[name].result(timeout=15)

    wait_for(lambda: (t := describe(kafka_admin, name)) is not None and t["id"] != first_id, what="topic recreated")
    corrected = wait_for(lambda: [e for e in events(namespace, name) if e["reason"] == "DriftCorrected"])
    assert "the topic was missing and was created with 2 partitions" in corrected[0]["message"]
    wait_for(lambda: get(namespace, name)["status"]["topicId"] != first_id, what="status.topicId updated")


def test_partitions_added_outside_stall_until_the_spec_catches_up(
    operator: RunningOperator, namespace: str, kafka_admin: AdminClient
) -> None:
    name = unique("extra")
    apply(namespace, kafka_topic(name, 2, 1))
    wait_ready(namespace, name)
    kafka_admin.create_partitions([NewPartitions(name, 3)])[name].result(timeout=15)

    obj = wait_reason(namespace, name, "False", "PartitionsExceedSpec")
    assert "has 3 partitions but spec.partitions is 2" in condition(obj, "Stalled")["message"]  # type: ignore[index]
    patch_spec(namespace, name, {"partitions": 3})
    wait_ready(namespace, name)


def test_with_report_policy_drift_is_shown_and_left_in_place(
    operator: RunningOperator, namespace: str, kafka_admin: AdminClient
) -> None:
    name = unique("report")
    apply(namespace, kafka_topic(name, 1, 1, driftPolicy="Report", config={"retention.ms": "3600000"}))
    wait_ready(namespace, name)
    set_config_out_of_band(kafka_admin, name, "retention.ms", "1000")

    obj = wait_reason(namespace, name, "True", "DriftDetected")  # reported drift is settled, as asked
    assert obj["status"]["drift"] == [{"field": "config.retention.ms", "desired": "3600000", "actual": "1000"}]
    drifted = condition(obj, "Drifted")
    assert drifted is not None and drifted["status"] == "True"
    assert "config.retention.ms (spec 3600000, actual 1000)" in drifted["message"]
    assert condition(obj, "Reconciling") is None and condition(obj, "Stalled") is None
    detected = [e for e in events(namespace, name) if e["reason"] == "DriftDetected"]
    assert len(detected) == 1 and detected[0]["type"] == "Warning"

    # Left alone over several resyncs, and announced once.
    time.sleep(RESYNC_SECONDS * 3 + 1)
    assert describe(kafka_admin, name)["retention.ms"] == "1000"  # type: ignore[index]
    assert get(namespace, name)["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"]
    assert len([e for e in events(namespace, name) if e["reason"] == "DriftDetected"]) == 1

    # Someone puts it back: the drift clears by itself.
    set_config_out_of_band(kafka_admin, name, "retention.ms", "3600000")
    obj = wait_ready(namespace, name)
    assert "drift" not in obj["status"] and condition(obj, "Drifted") is None


def test_with_report_policy_drift_found_after_a_transient_failure_is_still_only_reported(
    operator: RunningOperator, namespace: str, kafka_admin: AdminClient, stack: dict[str, str]
) -> None:
    reachable = {"bootstrap.servers": stack["KAFKA_BOOTSTRAP_SERVERS"]}
    create_secret(namespace, "kafka", reachable)
    name = unique("reportafterretry")
    spec = {"driftPolicy": "Report", "clusterRef": {"name": "kafka"}, "config": {"retention.ms": "3600000"}}
    apply(namespace, kafka_topic(name, 1, 1, **spec))
    wait_ready(namespace, name)

    # A transient failure (the connection points nowhere for a while), and a change made meanwhile.
    replace_secret(namespace, "kafka", {"bootstrap.servers": "127.0.0.1:1"})
    wait_reason(namespace, name, "False", "ProgressingWithRetry")
    set_config_out_of_band(kafka_admin, name, "retention.ms", "1000")
    replace_secret(namespace, "kafka", reachable)

    obj = wait_reason(namespace, name, "True", "DriftDetected")
    assert obj["status"]["drift"] == [{"field": "config.retention.ms", "desired": "3600000", "actual": "1000"}]
    assert describe(kafka_admin, name)["retention.ms"] == "1000"  # type: ignore[index]
    assert not {"DriftCorrected", "Updated"} & set(event_reasons(namespace, name))
