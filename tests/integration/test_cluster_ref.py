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
USERNAME = "user-5be0d4e1-do-not-leak"


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
    assert PASSWORD not in everything_visible(namespace, operator.log())


def test_credentials_never_appear_in_status_events_or_logs(
    operator: RunningOperator, namespace: str, stack: dict[str, str]
) -> None:
    """SASL against a plaintext listener fails: the failure is shown, the credentials are not."""
    create_secret(
        namespace,
        "sasl-connection",
        {
            "bootstrap.servers": stack["KAFKA_BOOTSTRAP_SERVERS"],
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "PLAIN",
            "sasl.username": USERNAME,
            "sasl.password": PASSWORD,
        },
    )
    name = unique("sasl")
    apply(namespace, kafka_topic(name, 1, 1, clusterRef={"name": "sasl-connection"}))
    obj = wait_reason(namespace, name, "False", "ProgressingWithRetry", timeout=90)
    assert "sasl-connection" in condition(obj, "Ready")["message"]  # type: ignore[index]
    visible = everything_visible(namespace, operator.log())
    assert PASSWORD not in visible
    assert USERNAME not in visible
    assert get(namespace, name)["status"]["observedGeneration"] == 1
