"""spec.clusterRef: connections from Secrets, and their values never shown anywhere."""

from __future__ import annotations

from tests.integration.conftest import RunningOperator
from tests.integration.helpers import (
    apply,
    condition,
    create_secret,
    everything_visible,
    get,
    kafka_topic,
    unique,
    wait_ready,
    wait_reason,
)

PASSWORD = "pw-7f3a91c2-do-not-leak"


def test_a_topic_is_managed_through_a_secret_connection(
    operator: RunningOperator, namespace: str, stack: dict[str, str]
) -> None:
    create_secret(
        namespace,
        "kafka-connection",
        {"bootstrap.servers": stack["KAFKA_BOOTSTRAP_SERVERS"], "client.id": "infometis-test"},
    )
    name = unique("viasecret")
    apply(namespace, kafka_topic(name, 1, 1, clusterRef={"name": "kafka-connection"}))
    wait_ready(namespace, name)


def test_a_missing_secret_stalls_and_recovers_when_it_appears(
    operator: RunningOperator, namespace: str, stack: dict[str, str]
) -> None:
    name = unique("nosecret")
    apply(namespace, kafka_topic(name, 1, 1, clusterRef={"name": "later"}))
    obj = wait_reason(namespace, name, "False", "ClusterRefInvalid")
    assert f"secret {namespace}/later, which does not exist" in condition(obj, "Stalled")["message"]  # type: ignore[index]
    create_secret(namespace, "later", {"bootstrap.servers": stack["KAFKA_BOOTSTRAP_SERVERS"]})
    wait_ready(namespace, name)


def test_a_secret_without_bootstrap_servers_is_named_in_the_condition(
    operator: RunningOperator, namespace: str
) -> None:
    create_secret(namespace, "incomplete", {"sasl.password": PASSWORD})
    name = unique("incomplete")
    apply(namespace, kafka_topic(name, 1, 1, clusterRef={"name": "incomplete"}))
    obj = wait_reason(namespace, name, "False", "ClusterRefInvalid")
    assert "lacks the key(s) bootstrap.servers" in condition(obj, "Stalled")["message"]  # type: ignore[index]
    assert PASSWORD not in everything_visible(namespace, operator)


def test_a_password_never_appears_in_status_events_or_logs(
    operator: RunningOperator, namespace: str, stack: dict[str, str]
) -> None:
    """SASL against a plaintext listener fails: the failure is shown, the password is not."""
    create_secret(
        namespace,
        "sasl-connection",
        {
            "bootstrap.servers": stack["KAFKA_BOOTSTRAP_SERVERS"],
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "PLAIN",
            "sasl.username": "team-a",
            "sasl.password": PASSWORD,
        },
    )
    name = unique("sasl")
    apply(namespace, kafka_topic(name, 1, 1, clusterRef={"name": "sasl-connection"}))
    obj = wait_reason(namespace, name, "False", "ProgressingWithRetry", timeout=90)
    assert "sasl-connection" in condition(obj, "Ready")["message"]  # type: ignore[index]
    assert PASSWORD not in everything_visible(namespace, operator)
    assert get(namespace, name)["status"]["observedGeneration"] == 1


def test_a_secret_with_keys_a_connection_does_not_need_stalls_naming_the_keys_not_their_values(
    operator: RunningOperator, namespace: str, stack: dict[str, str]
) -> None:
    """A token endpoint the operator would call, or a debug switch that prints traffic, is not a tenant's to set."""
    endpoint = "http://127.0.0.1:9/token-1c7e4b"
    create_secret(
        namespace,
        "too-much",
        {
            "bootstrap.servers": stack["KAFKA_BOOTSTRAP_SERVERS"],
            "sasl.oauthbearer.token.endpoint.url": endpoint,
            "debug": "all",
        },
    )
    name = unique("toomuch")
    apply(namespace, kafka_topic(name, 1, 1, clusterRef={"name": "too-much"}))
    obj = wait_reason(namespace, name, "False", "ClusterRefInvalid")
    message = condition(obj, "Stalled")["message"]  # type: ignore[index]
    assert "not accept in Kafka connections: debug, sasl.oauthbearer.token.endpoint.url. Allowed: " in message
    assert endpoint not in everything_visible(namespace, operator)
