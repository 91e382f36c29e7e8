"""The shipped Argo CD health script reads the conditions the operator writes."""

from __future__ import annotations

from typing import Any

import pytest

from controllers.core.model import DriftItem
from controllers.core.outcome import Outcome
from controllers.core.status import summarize
from tests.argocd import argocd_health


def object_after(outcome: Outcome, generation: int = 2, observed: int | None = None) -> dict[str, Any]:
    status = summarize({}, outcome, generation=observed or generation, now="t", handled_reconcile_token=None).status
    return {"metadata": {"generation": generation}, "status": status}


@pytest.mark.parametrize(
    ("outcome", "health"),
    [
        (Outcome.ready("Topic 't' is in sync.", {}), "Healthy"),
        (Outcome.retrying("Kafka did not answer"), "Progressing"),
        (Outcome.progressing("Reassigning", {}, 2.0), "Progressing"),
        (Outcome.stalled("InvalidConfig", "Kafka refused"), "Degraded"),
        (Outcome.drifted("changed outside", (DriftItem(field="f", desired="1", actual="2"),), {}), "Healthy"),
        (Outcome.suspended(), "Suspended"),
    ],
)
def test_each_phase_maps_to_the_argocd_health_status(outcome: Outcome, health: str) -> None:
    status, message = argocd_health(object_after(outcome))
    assert status == health
    assert outcome.message in message


def test_an_unhandled_generation_is_progressing_even_if_ready_before() -> None:
    status, message = argocd_health(object_after(Outcome.ready("ok", {}), generation=3, observed=2))
    assert (status, message) == ("Progressing", "The operator has not handled the latest spec yet")


def test_an_object_without_status_is_progressing() -> None:
    assert argocd_health({"metadata": {"generation": 1}})[0] == "Progressing"
