"""How a failed Kafka change shows on the object: stall on lasting refusals, retry the rest."""

from __future__ import annotations

from controllers.core.outcome import Phase
from controllers.kafkatopic.admin import KafkaRefused, KafkaUnavailable
from controllers.kafkatopic.plan import AlterConfig, ConfigUpdate, IncreasePartitions
from controllers.kafkatopic.reconciler import INVALID_CONFIG, REFUSED, failure_outcome

INCREASE = IncreasePartitions(name="orders", current=2, desired=4)
ALTER = AlterConfig(name="orders", updates=(ConfigUpdate(key="retention.ms", desired="x", actual=None),))


def unchanged(text: str) -> str:
    return text


def test_a_partition_increase_refused_as_no_increase_is_retried_because_the_read_was_stale() -> None:
    refusal = KafkaRefused("INVALID_PARTITIONS", "Topic already has 4 partition(s).")
    outcome = failure_outcome("orders", INCREASE, refusal, unchanged)
    assert outcome.phase is Phase.RETRYING
    assert "partitions 2 -> 4" in outcome.message and "Topic already has 4 partition(s)." in outcome.message


def test_an_invalid_config_value_stalls_with_invalid_config() -> None:
    refusal = KafkaRefused("INVALID_CONFIG", "Invalid value x for configuration retention.ms")
    outcome = failure_outcome("orders", ALTER, refusal, unchanged)
    assert (outcome.phase, outcome.reason) == (Phase.STALLED, INVALID_CONFIG)


def test_other_refusals_stall_naming_the_kafka_error_code() -> None:
    refusal = KafkaRefused("POLICY_VIOLATION", "Topic policy forbids it")
    outcome = failure_outcome("orders", INCREASE, refusal, unchanged)
    assert (outcome.phase, outcome.reason) == (Phase.STALLED, REFUSED)
    assert "POLICY_VIOLATION" in outcome.message


def test_an_unreachable_cluster_is_retried_with_the_error_redacted() -> None:
    outcome = failure_outcome(
        "orders", INCREASE, KafkaUnavailable("login secret-1 refused"), lambda t: t.replace("secret-1", "***")
    )
    assert outcome.phase is Phase.RETRYING
    assert "***" in outcome.message and "secret-1" not in outcome.message
