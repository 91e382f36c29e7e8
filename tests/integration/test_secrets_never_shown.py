"""Secret values planted in every clusterRef Secret never show, whichever way the connection fails.

The session's operator runs with --log-level DEBUG (conftest), so its log holds
everything the operator and both Kafka clients would print at any level.
"""

from __future__ import annotations

import re

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
from tests.pki import client_certificate

LONG = "pw-5d7f0b3e91c4-planted"  # distinctive: any occurrence is a leak
# Two letters that occur inside ordinary words ("reached", "created"): replacing
# them wherever they occur, as redaction once did, garbles every message.
SHORT = "ea"
KEY_PASSWORD = "kp-a4c2e8f61b07-planted"
REFUSED = "tok-9e1b5c3a7d20-planted"  # the value of a key the operator refuses


def shown(value: str, visible: str) -> bool:
    """Whether `value` appears; a value this short only as a word of its own, not inside longer ones."""
    if len(value) < 4:
        return re.search(rf"(?<!\w){re.escape(value)}(?!\w)", visible) is not None
    return value in visible


def test_planted_secret_values_never_appear_in_logs_events_status_or_metrics(
    operator: RunningOperator,
    namespace: str,
    stack: dict[str, str],
    kafka_admin: AdminClient,
    broker_ids: list[int],
    unreachable: str,
) -> None:
    assert len(broker_ids) >= 2, "needs `hack/stack up --kafka-brokers 3` (make test starts it so)"
    mutual_tls = client_certificate(KEY_PASSWORD)
    secrets = {
        # the stack's real login, and a client key pair (the broker does not ask for it) for kafka-python to load
        "working": secured_connection(stack, **mutual_tls),
        "wrong-password": secured_connection(stack, **{"sasl.password": LONG, **mutual_tls}),
        "short-password": secured_connection(stack, **{"sasl.password": SHORT}),
        "refused-key": secured_connection(
            stack, **{"sasl.password": LONG, "sasl.oauthbearer.client.secret": REFUSED, **mutual_tls}
        ),
        "unreachable": {
            "bootstrap.servers": unreachable,
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "PLAIN",
            "sasl.username": "team-a",
            "sasl.password": LONG,
        },
    }
    topics = {secret: unique(secret.split("-")[0]) for secret in secrets}
    for secret, data in secrets.items():
        create_secret(namespace, secret, data)
        apply(namespace, kafka_topic(topics[secret], 1, 1, clusterRef={"name": secret}))

    wait_ready(namespace, topics["working"])
    patch_spec(namespace, topics["working"], {"replicationFactor": 2})  # kafka-python, with the key pair
    wait_ready(namespace, topics["working"], timeout=90)
    described_as(kafka_admin, topics["working"], lambda t: all(len(replicas) == 2 for replicas in t["replicas"]))

    for secret in ("wrong-password", "short-password"):
        obj = wait_reason(namespace, topics[secret], "False", "ProgressingWithRetry", timeout=90)
        message = condition(obj, "Reconciling")["message"]  # type: ignore[index]
        assert message.startswith(f"Kafka could not be reached (secret {namespace}/{secret}): "), message
        assert "SASL authentication error: Authentication failed" in message, message
    obj = wait_reason(namespace, topics["refused-key"], "False", "ClusterRefInvalid")
    message = condition(obj, "Stalled")["message"]  # type: ignore[index]
    assert "Kafka connections: sasl.oauthbearer.client.secret. Allowed: " in message, message
    obj = wait_reason(namespace, topics["unreachable"], "False", "ProgressingWithRetry", timeout=90)
    assert "Connection refused" in condition(obj, "Reconciling")["message"]  # type: ignore[index]

    visible = everything_visible(namespace, operator)
    key_material = [line for line in mutual_tls["ssl.key.pem"].splitlines() if "-----" not in line]
    planted = [LONG, SHORT, KEY_PASSWORD, REFUSED, stack["KAFKA_SASL_PASSWORD"], *key_material]
    assert [value for value in planted if shown(value, visible)] == []
