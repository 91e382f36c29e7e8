"""Connection values never leave the operator: every message is redacted."""

from __future__ import annotations

from controllers.core.connections import Connection


def test_secret_values_are_redacted_and_addresses_kept() -> None:
    connection = Connection(
        "secret ns/kafka",
        {"bootstrap.servers": "broker:9093", "sasl.username": "svc-user", "sasl.password": "hunter2-pass"},
    )
    message = "auth failed for svc-user with hunter2-pass at broker:9093"
    assert connection.redact(message) == "auth failed for *** with *** at broker:9093"


def test_equal_settings_share_an_identity() -> None:
    one = Connection("secret a/x", {"bootstrap.servers": "b:1", "client.id": "c"})
    two = Connection("secret b/y", {"client.id": "c", "bootstrap.servers": "b:1"})
    assert one.identity == two.identity
