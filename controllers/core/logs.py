"""Log lines: human-readable text by default, one JSON object per line with --log-format json.

A line about an object carries the object (kind, namespace, name) as the
record's `k8s_ref`, the attribute kopf's own per-object logger sets too, so the
lines of both name their object the same way: in text as a "Kind ns/name: "
lead, in JSON as the fields kind, namespace and name.
"""

from __future__ import annotations

import datetime
import json
import logging
from collections.abc import Mapping
from typing import Any

from controllers.core.objects import ObjectKey

LOG_FORMATS = ("text", "json")
OBJECT_REF = "k8s_ref"
TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(about)s%(message)s"


def about(logger: logging.Logger, kind: str, key: ObjectKey) -> logging.LoggerAdapter[logging.Logger]:
    """`logger` for lines about one object."""
    return logging.LoggerAdapter(logger, {OBJECT_REF: {"kind": kind, "namespace": key.namespace, "name": key.name}})


def _object(record: logging.LogRecord) -> Mapping[str, Any] | None:
    ref = getattr(record, OBJECT_REF, None)
    return ref if isinstance(ref, Mapping) and ref.get("name") else None


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        ref = _object(record)
        lead = ""
        if ref is not None:
            where = f"{ref['namespace']}/{ref['name']}" if ref.get("namespace") else str(ref["name"])
            lead = f"{ref.get('kind') or 'object'} {where}: "
        return TEXT_FORMAT % {**record.__dict__, "about": lead}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the object's fields, the exception."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        ref = _object(record)
        if ref is not None:
            line.update({field: ref.get(field) for field in ("kind", "namespace", "name")})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str)


def handler(log_format: str) -> logging.Handler:
    """A stderr handler writing `log_format` ('text' or 'json')."""
    out = logging.StreamHandler()
    out.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    return out
