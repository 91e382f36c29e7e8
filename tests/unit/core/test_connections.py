"""A Secret may hold only the keys its service's schema allows, and its credentials never show."""

from __future__ import annotations

import pytest

from controllers.core.connections import ClusterRefInvalid, Connection, ConnectionSchema, connection_from_secret

SCHEMA = ConnectionSchema(
    service="Example",
    keys={
        "url": "where the service listens",
        "username": "who the operator logs in as",
        "password": "that user's password",
        "key.pem": "a client key",
    },
    secret=frozenset({"password", "key.pem"}),
    default_flag="--example-url",
    default_env="EXAMPLE_URL",
    default_key="url",
    required=("url",),
    refused={"key.file": "names a file on the operator's own filesystem; give key.pem instead"},
)
WHERE = "secret ns/example"


def connection(**properties: str) -> Connection:
    return connection_from_secret(WHERE, {"url": "svc:9093", **properties}, SCHEMA)


def test_a_secret_holding_allowed_keys_is_a_connection_named_by_the_secret() -> None:
    made = connection(username="svc-user", password="hunter2-pass")
    assert made.name == WHERE
    assert made.properties == {"url": "svc:9093", "username": "svc-user", "password": "hunter2-pass"}


def test_keys_outside_the_schema_are_refused_by_name_never_by_value() -> None:
    with pytest.raises(ClusterRefInvalid) as refused:
        connection(**{"token.endpoint.url": "http://attacker.example/token", "debug": "everything-9f3"})
    message = str(refused.value)
    assert message.startswith(
        f"{WHERE} holds key(s) the operator does not accept in Example connections: debug, token.endpoint.url"
    )
    assert message.endswith("Allowed: url, username, password, key.pem")
    assert "attacker" not in message and "everything-9f3" not in message


def test_a_refused_key_users_may_expect_says_why() -> None:
    with pytest.raises(ClusterRefInvalid) as refused:
        connection(**{"key.file": "/var/run/secrets/kubernetes.io/serviceaccount/token"})
    assert "key.file names a file on the operator's own filesystem; give key.pem instead." in str(refused.value)


def test_a_missing_required_key_is_named() -> None:
    with pytest.raises(ClusterRefInvalid, match=f"^{WHERE} lacks the key\\(s\\) url$"):
        connection_from_secret(WHERE, {"password": "hunter2-pass"}, SCHEMA)


def test_each_whole_occurrence_of_a_credential_is_redacted_and_usernames_and_addresses_kept() -> None:
    made = connection(username="svc-user", password="hunter2-pass")
    message = "auth failed for svc-user with hunter2-pass at svc:9093 ('hunter2-pass')"
    assert made.redact(message) == "auth failed for svc-user with *** at svc:9093 ('***')"


def test_a_credential_inside_a_longer_word_is_left_alone() -> None:
    made = connection(password="pass")
    assert made.redact("bypass, pass.") == "bypass, ***."


def test_a_short_credential_never_garbles_a_message() -> None:
    """Too short to hide by substitution: such values are kept out of messages by construction instead."""
    message = "Kafka could not be reached (secret ns/kafka): SASL authentication error: Authentication failed"
    for short in ("a", "ea", "SSL"):
        assert connection(password=short).redact(message) == message


def test_multiline_key_material_is_redacted_whole() -> None:
    key = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49\n-----END PRIVATE KEY-----\n"
    assert connection(**{"key.pem": key}).redact(f"could not load {key}") == "could not load ***"


def test_equal_settings_share_an_identity() -> None:
    one = connection_from_secret("secret a/x", {"url": "b:1", "username": "c"}, SCHEMA)
    two = connection_from_secret("secret b/y", {"username": "c", "url": "b:1"}, SCHEMA)
    assert one.identity == two.identity
