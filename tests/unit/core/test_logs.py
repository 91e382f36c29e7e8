"""Log lines as text for people and as one JSON object per line, each naming its object."""

from __future__ import annotations

import json
import logging
import sys

from controllers.core.logs import JsonFormatter, TextFormatter, about
from controllers.core.objects import ObjectKey


def record_from(
    adapter: logging.LoggerAdapter[logging.Logger] | logging.Logger, *args: object, **kwargs: object
) -> logging.LogRecord:
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = adapter.logger if isinstance(adapter, logging.LoggerAdapter) else adapter
    keep = Keep()
    logger.addHandler(keep)
    logger.setLevel(logging.DEBUG)
    try:
        adapter.warning(*args, **kwargs)  # type: ignore[arg-type]
    finally:
        logger.removeHandler(keep)
    return records[0]


def test_a_json_line_about_an_object_has_its_kind_namespace_and_name() -> None:
    log = about(logging.getLogger("test.logs.object"), "KafkaTopic", ObjectKey("team-a", "orders"))
    line = json.loads(JsonFormatter().format(record_from(log, "status write failed: %s", "409")))
    assert line["message"] == "status write failed: 409"
    assert (line["kind"], line["namespace"], line["name"]) == ("KafkaTopic", "team-a", "orders")
    assert (line["level"], line["logger"]) == ("WARNING", "test.logs.object")
    assert line["time"].endswith("+00:00") and "T" in line["time"]


def test_a_json_line_carries_the_exception_and_stays_one_line() -> None:
    logger = logging.getLogger("test.logs.error")
    try:
        raise ValueError("bad\nvalue")
    except ValueError:
        record = record_from(logger, "failed", exc_info=sys.exc_info())
    text = JsonFormatter().format(record)
    assert "\n" not in text
    line = json.loads(text)
    assert "ValueError: bad" in line["exception"] and "Traceback" in line["exception"]
    assert "kind" not in line  # not about an object


def test_kopfs_per_object_lines_name_their_object_too() -> None:
    logger = logging.getLogger("test.logs.kopf")
    ref = {"apiVersion": "infometis.io/v1alpha1", "kind": "NiFiFlow", "name": "flow", "uid": "u", "namespace": "ns"}
    record = record_from(logger, "Handler failed", extra={"k8s_ref": ref, "k8s_skip": False})
    assert json.loads(JsonFormatter().format(record))["name"] == "flow"
    assert "NiFiFlow ns/flow: Handler failed" in TextFormatter().format(record)


def test_text_lines_lead_with_the_object() -> None:
    log = about(logging.getLogger("test.logs.text"), "ElasticsearchIndex", ObjectKey("team-b", "logs"))
    text = TextFormatter().format(record_from(log, "DriftCorrected: %s", "fixed"))
    assert text.endswith("WARNING test.logs.text: ElasticsearchIndex team-b/logs: DriftCorrected: fixed")
    plain = TextFormatter().format(record_from(logging.getLogger("test.logs.plain"), "starting"))
    assert plain.endswith("test.logs.plain: starting")
