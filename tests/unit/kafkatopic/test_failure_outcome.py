"""How a failed Kafka change shows on the object: stall on lasting refusals, retry the rest."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from controllers.core.connections import Connection
from controllers.core.outcome import Outcome, Phase
from controllers.kafkatopic.admin import KafkaRefused, KafkaUnavailable
from controllers.kafkatopic.kind import INVALID_CONFIG, NOT_AUTHORIZED, REFUSED, KafkaTopicKind
from controllers.kafkatopic.plan import AlterConfig, ConfigUpdate, IncreasePartitions

INCREASE = IncreasePartitions(name="orders", current=2, desired=4)
ALTER = AlterConfig(name="orders", updates=(ConfigUpdate(key="retention.ms", desired="x", actual=None),))
KIND = KafkaTopicKind(connections=None, admins=None, default_connection=None)  # type: ignore[arg-type]
CLIENT = SimpleNamespace(
    connection=Connection("secret ns/kafka", {"sasl.password": "secret-1"}, frozenset({"sasl.password"}))
)


def failure_outcome(change: Any, error: Exception) -> Outcome:
    return KIND.failure(CLIENT, "orders", change, error)  # type: ignore[arg-type]


def test_a_partition_increase_refused_as_no_increase_is_progress_because_the_read_was_stale() -> None:
    refusal = KafkaRefused("INVALID_PARTITIONS", "Topic already has 4 partition(s).")
    outcome = failure_outcome(INCREASE, refusal)
    assert outcome.phase is Phase.PROGRESSING and outcome.requeue_after == 1.0
    assert "Topic already has 4 partition(s)." in outcome.message


def test_an_invalid_config_value_stalls_with_invalid_config() -> None:
    refusal = KafkaRefused("INVALID_CONFIG", "Invalid value x for configuration retention.ms")
    outcome = failure_outcome(ALTER, refusal)
    assert (outcome.phase, outcome.reason) == (Phase.STALLED, INVALID_CONFIG)


def test_other_refusals_stall_naming_the_kafka_error_code() -> None:
    refusal = KafkaRefused("POLICY_VIOLATION", "Topic policy forbids it")
    outcome = failure_outcome(INCREASE, refusal)
    assert (outcome.phase, outcome.reason) == (Phase.STALLED, REFUSED)
    assert "POLICY_VIOLATION" in outcome.message


def test_an_unreachable_cluster_is_retried_with_the_error_redacted() -> None:
    outcome = failure_outcome(INCREASE, KafkaUnavailable("login secret-1 refused"))
    assert outcome.phase is Phase.RETRYING
    assert "***" in outcome.message and "secret-1" not in outcome.message


def test_a_refusal_for_lack_of_rights_stalls_as_not_authorized_with_kafkas_words() -> None:
    refusal = KafkaRefused("TOPIC_AUTHORIZATION_FAILED", "Topic authorization failed")
    for change in (None, INCREASE):
        outcome = failure_outcome(change, refusal)
        assert (outcome.phase, outcome.reason) == (Phase.STALLED, NOT_AUTHORIZED)
        assert "TOPIC_AUTHORIZATION_FAILED: Topic authorization failed" in outcome.message
