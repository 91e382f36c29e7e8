"""--log-format json: every line the operator writes is one JSON object, and lines about an object name it."""

from __future__ import annotations

import json
from pathlib import Path

from confluent_kafka.admin import AdminClient

from tests.integration.conftest import RunningOperator
from tests.integration.helpers import (
    apply,
    kafka_topic,
    set_config_out_of_band,
    unique,
    wait_for,
    wait_ready,
)
from tests.integration.operators import start


def test_every_line_is_json_and_an_objects_lines_carry_its_kind_namespace_and_name(
    operator: RunningOperator, session_operator_paused: None, namespace: str, tmp_path: Path, kafka_admin: AdminClient
) -> None:
    log = tmp_path / "operator.log"
    process = start(
        operator.kubeconfig, namespace, log, "--controllers", "kafka", "--log-format", "json", "--log-level", "DEBUG"
    )
    name = unique("json-logs")
    try:
        wait_for(lambda: process.probe("/readyz") == 200, timeout=30, what="the operator ready")
        apply(namespace, kafka_topic(name, partitions=1, config={"retention.ms": "3600000"}))
        wait_ready(namespace, name)
        set_config_out_of_band(kafka_admin, name, "retention.ms", "7200000")
        wait_for(lambda: "DriftCorrected" in process.log(), what="the correction logged")
    finally:
        assert process.stop() == 0

    lines = process.log().splitlines()
    parsed = []
    for number, line in enumerate(lines, 1):
        try:
            parsed.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"line {number} is not JSON: {line!r}") from None
    assert all({"time", "level", "logger", "message"} <= entry.keys() for entry in parsed)
    about = [entry for entry in parsed if entry.get("name") == name]
    assert about, "no line names the object"
    assert all((entry["kind"], entry["namespace"]) == ("KafkaTopic", namespace) for entry in about)
    assert {"Created", "DriftCorrected"} <= {entry["message"].split(":")[0] for entry in about}
    # A line naming the object in its message carries its fields too.
    mentions = [
        entry for entry in parsed if f"'{name}'" in entry["message"] and entry["logger"].startswith("infometis")
    ]
    assert all(entry.get("name") == name for entry in mentions), mentions
