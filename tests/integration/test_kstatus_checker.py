"""The kstatus checker runs the real rules Flux and kpt use (sigs.k8s.io/cli-utils status.Compute).

Hand-written KafkaTopics, shaped as the operator writes them, each showing one
rule kstatus applies before or instead of our Ready condition. These need the
Go toolchain (the checker is built on first use), not the stack's servers.
"""

from __future__ import annotations

from typing import Any

from tests.integration.kstatus import kstatus_of

NOW = "2026-01-01T00:00:00Z"


def _condition(kind: str, status: str, reason: str, message: str, generation: int) -> dict[str, Any]:
    return {
        "type": kind,
        "status": status,
        "observedGeneration": generation,
        "lastTransitionTime": NOW,
        "reason": reason,
        "message": message,
    }


def _topic(
    name: str, conditions: list[dict[str, Any]], *, generation: int = 1, observed: int = 1, **metadata: Any
) -> dict[str, Any]:
    return {
        "apiVersion": "infometis.io/v1alpha1",
        "kind": "KafkaTopic",
        "metadata": {"name": name, "namespace": "team-a", "generation": generation, **metadata},
        "spec": {"partitions": 3, "replicationFactor": 1},
        "status": {"observedGeneration": observed, "conditions": conditions},
    }


def _ready(generation: int = 1) -> dict[str, Any]:
    return _condition("Ready", "True", "Succeeded", "topic matches the spec", generation)


def test_a_ready_topic_of_the_current_generation_is_current() -> None:
    assert kstatus_of([_topic("orders", [_ready()])]) == [
        {"name": "orders", "namespace": "team-a", "status": "Current", "message": "Resource is Ready"}
    ]


def test_an_unobserved_generation_is_in_progress_even_while_ready_says_true() -> None:
    [result] = kstatus_of([_topic("orders", [_ready(2)], generation=3, observed=2)])
    assert result["status"] == "InProgress"
    assert result["message"] == "KafkaTopic generation is 3, but latest observed generation is 2"


def test_stalled_true_is_failed_with_the_stalled_message() -> None:
    message = "Unknown topic config name: retention.msx"
    stalled = _topic(
        "orders",
        [
            _condition("Ready", "False", "InvalidConfig", message, 1),
            _condition("Stalled", "True", "InvalidConfig", message, 1),
        ],
    )
    assert kstatus_of([stalled]) == [{"name": "orders", "namespace": "team-a", "status": "Failed", "message": message}]


def test_a_deletion_timestamp_is_terminating_whatever_the_conditions_say() -> None:
    deleting = _topic("orders", [_ready()], deletionTimestamp=NOW, finalizers=["infometis.io/kafkatopic-deletion"])
    results = kstatus_of([deleting, _topic("payments", [_ready()])])
    assert [(r["name"], r["status"], r["message"]) for r in results] == [
        ("orders", "Terminating", "Resource scheduled for deletion"),
        ("payments", "Current", "Resource is Ready"),
    ]
