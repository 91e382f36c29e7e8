"""The shipped Argo CD health scripts, in Argo CD's own Lua, on every status the operator can write.

Objects are built by the operator's status code (summarize), so every phase of
every kind is covered without a server; tests/integration/test_argocd_health_live.py
runs the same scripts on objects taken from the live stack.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from controllers.core.model import DriftItem
from controllers.core.outcome import KindCondition, Outcome
from controllers.core.status import summarize
from controllers.elasticsearchindex.model import HEALTHY
from tests.argocd import argocd_health, run_script

KINDS = ("KafkaTopic", "ElasticsearchIndex", "NiFiFlow")


def object_after(kind: str, outcome: Outcome, generation: int = 2, observed: int | None = None) -> dict[str, Any]:
    status = summarize({}, outcome, generation=observed or generation, now="t", handled_reconcile_token=None).status
    return {
        "apiVersion": "infometis.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": "x", "namespace": "n", "generation": generation},
        "status": status,
    }


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("outcome", "health", "message"),
    [
        (Outcome.ready("Topic 't' is in sync.", {}), "Healthy", "Topic 't' is in sync."),
        (Outcome.retrying("Kafka did not answer"), "Progressing", "ProgressingWithRetry: Kafka did not answer"),
        (Outcome.progressing("Reassigning", {}, 2.0), "Progressing", "Progressing: Reassigning"),
        (Outcome.stalled("InvalidConfig", "Kafka refused"), "Degraded", "InvalidConfig: Kafka refused"),
        (
            Outcome.drifted("changed outside", (DriftItem(field="f", desired="1", actual="2"),), {}),
            "Healthy",
            "DriftDetected: changed outside",
        ),
        (Outcome.suspended(), "Suspended", Outcome.suspended().message),
    ],
)
def test_each_phase_maps_to_the_argocd_health_status(kind: str, outcome: Outcome, health: str, message: str) -> None:
    assert argocd_health(object_after(kind, outcome)) == (health, message)


@pytest.mark.parametrize("kind", KINDS)
def test_an_unhandled_generation_is_progressing_even_if_ready_before(kind: str) -> None:
    stale = object_after(kind, Outcome.ready("ok", {}), generation=3, observed=2)
    assert argocd_health(stale) == ("Progressing", "Waiting for the operator to handle generation 3")


@pytest.mark.parametrize("kind", KINDS)
def test_an_object_without_status_is_progressing(kind: str) -> None:
    fresh = {"apiVersion": "infometis.io/v1alpha1", "kind": kind, "metadata": {"name": "x", "generation": 1}}
    assert argocd_health(fresh) == ("Progressing", "Waiting for the operator to handle this object")


def index_with_health(status: str, reason: str, message: str) -> dict[str, Any]:
    ready = replace(
        Outcome.ready("Index 'i' is in sync.", {}), conditions=(KindCondition(HEALTHY, status, reason, message),)
    )
    return object_after("ElasticsearchIndex", ready)


def test_a_red_index_is_degraded_though_in_sync() -> None:
    red = index_with_health("False", "Red", "Some primary shards are not assigned.")
    assert argocd_health(red) == ("Degraded", "Red: Some primary shards are not assigned.")


def test_a_yellow_index_is_healthy_and_says_so() -> None:
    yellow = index_with_health("False", "Yellow", "Some replicas are not assigned.")
    assert argocd_health(yellow) == (
        "Healthy",
        "Index 'i' is in sync. Index health Yellow: Some replicas are not assigned.",
    )


def test_the_runner_offers_only_the_libraries_argo_cd_opens(tmp_path: Path) -> None:
    """A script that works in a full Lua but not in Argo CD fails here as it would there."""
    script = tmp_path / "health.lua"
    script.write_text('return { status = "Healthy", message = string.format("%d", 1) .. os.date("!%Y") }')
    (answer,) = run_script(script, [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}])
    assert "attempt to index a non-table object(nil) with key 'format'" in answer["error"]


def test_the_runner_turns_a_status_argo_cd_does_not_know_into_unknown(tmp_path: Path) -> None:
    script = tmp_path / "health.lua"
    script.write_text('return { status = "Ready", message = obj.metadata.name }')
    (answer,) = run_script(script, [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}])
    assert (answer["status"], answer["message"]) == ("Unknown", "Lua returned an invalid health status")
