"""clusterRef Secrets with SASL and TLS settings, against the stack's SASL_SSL listener."""

from __future__ import annotations

from confluent_kafka.admin import AdminClient

from tests.integration.conftest import RunningOperator
from tests.integration.helpers import (
    apply,
    condition,
    create_secret,
    described_as,
    everything_visible,
    kafka_topic,
    patch_spec,
    secured_connection,
    unique,
    wait_ready,
    wait_reason,
)
from tests.pki import other_ca_pem


def test_a_topic_is_created_and_reassigned_over_sasl_ssl(
    operator: RunningOperator, namespace: str, stack: dict[str, str], kafka_admin: AdminClient, broker_ids: list[int]
) -> None:
    """Both clients authenticate: confluent-kafka for create, kafka-python for the reassignment."""
    assert len(broker_ids) >= 2, "needs `hack/stack up --kafka-brokers 3` (make test starts it so)"
    create_secret(namespace, "secured", secured_connection(stack))
    name = unique("secured")
    apply(namespace, kafka_topic(name, 2, 1, clusterRef={"name": "secured"}))
    wait_ready(namespace, name)
    described_as(kafka_admin, name, lambda t: t["partitions"] == 2)

    patch_spec(namespace, name, {"replicationFactor": 2})
    obj = wait_ready(namespace, name, timeout=90)
    assert obj["status"]["replicationFactor"] == 2
    described_as(kafka_admin, name, lambda t: all(len(replicas) == 2 for replicas in t["replicas"]))
    assert stack["KAFKA_SASL_PASSWORD"] not in everything_visible(namespace, operator)


def test_a_wrong_password_is_retried_with_the_brokers_answer_and_never_shown(
    operator: RunningOperator, namespace: str, stack: dict[str, str]
) -> None:
    wrong = "wrong-4d2c9e-do-not-leak"
    create_secret(namespace, "wrong-password", secured_connection(stack, **{"sasl.password": wrong}))
    name = unique("badlogin")
    apply(namespace, kafka_topic(name, 1, 1, clusterRef={"name": "wrong-password"}))
    obj = wait_reason(namespace, name, "False", "ProgressingWithRetry", timeout=90)
    message = condition(obj, "Reconciling")["message"]  # type: ignore[index]
    assert message.startswith("Kafka could not be reached (secret "), message
    assert "SASL authentication error: Authentication failed" in message, message
    visible = everything_visible(namespace, operator)
    assert wrong not in visible and stack["KAFKA_SASL_PASSWORD"] not in visible


def test_a_broker_certificate_from_an_untrusted_ca_is_retried_naming_the_tls_failure(
    operator: RunningOperator, namespace: str, stack: dict[str, str]
) -> None:
    create_secret(namespace, "untrusted", secured_connection(stack, **{"ssl.ca.pem": other_ca_pem()}))
    name = unique("untrusted")
    apply(namespace, kafka_topic(name, 1, 1, clusterRef={"name": "untrusted"}))
    obj = wait_reason(namespace, name, "False", "ProgressingWithRetry", timeout=90)
    message = condition(obj, "Reconciling")["message"]  # type: ignore[index]
    # librdkafka words it "SSL handshake failed: ...certificate verify failed" or just "...certificate verify
    # failed (after 8ms in state SSL_HANDSHAKE)", depending on which broker connection reports first.
    assert "certificate verify failed" in message and "SSL" in message, message
