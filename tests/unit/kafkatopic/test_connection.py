"""A Kafka connection Secret holds only what a connection needs, and both Kafka clients understand all of it."""

from __future__ import annotations

import ssl

import pytest

from controllers.core.connections import ClusterRefInvalid, Connection, connection_from_secret
from controllers.kafkatopic.admin import (
    KAFKA_PYTHON_ARGUMENTS,
    KAFKA_PYTHON_TLS_PROPERTIES,
    KafkaAdmin,
    kafka_python_arguments,
)
from controllers.kafkatopic.connection import KAFKA_CONNECTION
from tests.pki import client_certificate

WHERE = "secret team-a/kafka"
KEY_PASSWORD = "kp-0c5e2a7d"


def kafka_secret(**properties: str) -> Connection:
    return connection_from_secret(WHERE, {"bootstrap.servers": "kafka:9093", **properties}, KAFKA_CONNECTION)


def test_every_allowed_key_has_a_kafka_python_equivalent() -> None:
    assert set(KAFKA_CONNECTION.keys) == set(KAFKA_PYTHON_ARGUMENTS) | KAFKA_PYTHON_TLS_PROPERTIES


def test_credentials_and_required_keys_are_allowed_keys() -> None:
    assert KAFKA_CONNECTION.secret | set(KAFKA_CONNECTION.required) <= set(KAFKA_CONNECTION.keys)
    assert KAFKA_CONNECTION.secret == {"sasl.password", "ssl.key.pem", "ssl.key.password"}


@pytest.mark.parametrize(
    "key",
    [
        "sasl.oauthbearer.token.endpoint.url",
        "sasl.oauthbearer.client.secret",
        "debug",
        "plugin.library.paths",
        "socket.timeout.ms",
        "ssl.keystore.location",
        "sasl.kerberos.kinit.cmd",
    ],
)
def test_a_setting_a_connection_does_not_need_is_refused_by_name(key: str) -> None:
    with pytest.raises(ClusterRefInvalid, match=f"does not accept in Kafka connections: {key}\\. Allowed: "):
        kafka_secret(**{key: "value-3e9b"})


def test_a_file_location_is_refused_naming_its_inline_replacement() -> None:
    with pytest.raises(ClusterRefInvalid) as refused:
        kafka_secret(**{"ssl.key.location": "/var/run/secrets/kubernetes.io/serviceaccount/token"})
    message = str(refused.value)
    assert "ssl.key.location names a file on the operator's own filesystem" in message
    assert "give the PEM inline as ssl.key.pem" in message
    assert "serviceaccount" not in message


def test_mutual_tls_settings_are_accepted_by_both_clients() -> None:
    connection = kafka_secret(**{"security.protocol": "SSL", **client_certificate(KEY_PASSWORD)})
    KafkaAdmin(connection, linger=0.0)  # librdkafka loads the pair when the client is made
    context = kafka_python_arguments(connection)["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.check_hostname


def test_a_certificate_without_its_key_is_refused_for_replication_factor_changes() -> None:
    connection = kafka_secret(**{"ssl.certificate.pem": client_certificate(KEY_PASSWORD)["ssl.certificate.pem"]})
    with pytest.raises(ClusterRefInvalid, match=f"kafka-python, which cannot use the TLS settings of {WHERE}"):
        kafka_python_arguments(connection)


def test_endpoint_identification_none_turns_off_kafka_pythons_hostname_check() -> None:
    connection = kafka_secret(**{"ssl.endpoint.identification.algorithm": "none"})
    assert not kafka_python_arguments(connection)["ssl_context"].check_hostname


def test_sasl_settings_map_to_kafka_pythons_arguments() -> None:
    connection = kafka_secret(
        **{
            "security.protocol": "SASL_SSL",
            "sasl.mechanism": "SCRAM-SHA-512",
            "sasl.username": "team-a",
            "sasl.password": "pw-8d1f",
            "client.id": "infometis",
        }
    )
    arguments = kafka_python_arguments(connection)
    assert {k: v for k, v in arguments.items() if not k.endswith("timeout_ms")} == {
        "bootstrap_servers": "kafka:9093",
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "team-a",
        "sasl_plain_password": "pw-8d1f",
        "client_id": "infometis",
    }
