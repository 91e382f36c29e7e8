"""No log level prints a connection's credentials, --log-level DEBUG included."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from controllers.core.connections import Connection
from controllers.kafkatopic import admin as admin_module
from controllers.kafkatopic.admin import KafkaAdmin, KafkaUnavailable
from controllers.kafkatopic.connection import KAFKA_CONNECTION
from controllers.operator import configure_logging

PASSWORD = "pw-planted-4f1c9e"


class Recorded(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def lines(self, logger_prefix: str = "") -> list[str]:
        return [f"{r.name}: {r.getMessage()}" for r in self.records if r.name.startswith(logger_prefix)]


@pytest.fixture
def recorded() -> Iterator[Recorded]:
    """Every record that reaches the root logger; the logging configuration is put back afterwards."""
    root = logging.getLogger()
    loggers = [root, *(logging.getLogger(name) for name in ("kopf", "infometis.librdkafka", "kafka"))]
    levels = [(logger, logger.level) for logger in loggers]
    handlers = list(root.handlers)
    handler = Recorded()
    root.addHandler(handler)
    yield handler
    root.handlers[:] = handlers
    for logger, level in levels:
        logger.setLevel(level)


async def test_debug_logging_shows_the_kafka_clients_but_never_a_password(
    recorded: Recorded, unreachable: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure_logging("DEBUG")
    monkeypatch.setattr(admin_module, "REQUEST_TIMEOUT_SECONDS", 0.5)
    connection = {
        "bootstrap.servers": unreachable,
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "PLAIN",
        "sasl.username": "operator",
        "sasl.password": PASSWORD,
    }
    admin = KafkaAdmin(Connection("default", connection, KAFKA_CONNECTION.secret), linger=0.0)
    with pytest.raises(KafkaUnavailable):  # a replication-factor change: kafka-python
        await admin.partitions_being_reassigned("orders")
    admin.poll()  # serves librdkafka's log callbacks

    assert recorded.lines("kafka."), "no kafka-python record reached the log"
    assert recorded.lines("infometis.librdkafka"), "no librdkafka record reached the log"
    assert [line for line in recorded.lines() if PASSWORD in line] == []
