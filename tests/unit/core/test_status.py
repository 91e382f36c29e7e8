"""Conditions, status and Events from an Outcome: the kstatus and Flux rules."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from controllers.core.model import DriftItem
from controllers.core.outcome import EventNote, KindCondition, Outcome, Phase
from controllers.core.status import summarize

T0 = "2026-11-27T00:00:00Z"
T1 = "2026-11-27T00:05:00Z"


def ready(**facts: Any) -> Outcome:
    return Outcome.ready("Topic 't' is in sync.", facts)


def conditions_by_type(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in status["conditions"]}


def test_ready_outcome_sets_ready_true_with_observed_generation_everywhere() -> None:
    status = summarize({}, ready(partitions=3), generation=4, now=T0, handled_reconcile_token=None).status
    assert status["observedGeneration"] == 4
    assert conditions_by_type(status) == {
        "Ready": {
            "type": "Ready",
            "status": "True",
            "observedGeneration": 4,
            "lastTransitionTime": T0,
            "reason": "Succeeded",
            "message": "Topic 't' is in sync.",
        }
    }
    assert status["partitions"] == 3


def test_same_outcome_again_gives_an_identical_status_so_nothing_is_written() -> None:
    first = summarize({}, ready(partitions=3), generation=1, now=T0, handled_reconcile_token=None)
    second = summarize(first.status, ready(partitions=3), generation=1, now=T1, handled_reconcile_token=None)
    assert second.status == first.status
    assert second.events == ()


def test_last_transition_time_moves_only_when_the_condition_status_moves() -> None:
    retrying = summarize({}, Outcome.retrying("Kafka down: a"), generation=1, now=T0, handled_reconcile_token=None)
    still = summarize(
        retrying.status, Outcome.retrying("Kafka down: b"), generation=1, now=T1, handled_reconcile_token=None
    )
    assert conditions_by_type(still.status)["Ready"]["lastTransitionTime"] == T0
    assert conditions_by_type(still.status)["Ready"]["message"] == "Kafka down: b"
    recovered = summarize(still.status, ready(), generation=1, now=T1, handled_reconcile_token=None)
    assert conditions_by_type(recovered.status)["Ready"]["lastTransitionTime"] == T1


def test_retrying_is_reconciling_true_and_never_stalled() -> None:
    status = summarize({}, Outcome.retrying("Kafka down"), generation=2, now=T0, handled_reconcile_token=None).status
    conditions = conditions_by_type(status)
    assert conditions["Ready"]["status"] == "False"
    assert conditions["Ready"]["reason"] == "ProgressingWithRetry"
    assert conditions["Reconciling"] == {
        "type": "Reconciling",
        "status": "True",
        "observedGeneration": 2,
        "lastTransitionTime": T0,
        "reason": "ProgressingWithRetry",
        "message": "Kafka down",
    }
    assert "Stalled" not in conditions


def test_stalled_is_stalled_true_ready_false_and_not_reconciling() -> None:
    outcome = Outcome.stalled("InvalidConfig", "Kafka refused retention.ms=abc")
    conditions = conditions_by_type(summarize({}, outcome, generation=3, now=T0, handled_reconcile_token=None).status)
    assert conditions["Stalled"]["status"] == "True"
    assert conditions["Stalled"]["reason"] == "InvalidConfig"
    assert conditions["Ready"]["status"] == "False"
    assert conditions["Ready"]["reason"] == "InvalidConfig"
    assert "Reconciling" not in conditions


def test_recovery_removes_the_abnormal_conditions() -> None:
    stalled = summarize({}, Outcome.stalled("InvalidConfig", "x"), generation=1, now=T0, handled_reconcile_token=None)
    fixed = summarize(stalled.status, ready(), generation=2, now=T1, handled_reconcile_token=None)
    assert set(conditions_by_type(fixed.status)) == {"Ready"}


def test_suspended_is_ready_true_with_reason_suspended_so_gitops_tools_do_not_wait() -> None:
    summary = summarize({}, Outcome.suspended(), generation=1, now=T0, handled_reconcile_token=None)
    ready_condition = conditions_by_type(summary.status)["Ready"]
    assert (ready_condition["status"], ready_condition["reason"]) == ("True", "Suspended")
    assert [e.reason for e in summary.events] == ["Suspended"]


def test_drift_reported_lists_fields_and_sets_drifted_true() -> None:
    drift = (DriftItem(field="config.retention.ms", desired="1000", actual="2000"),)
    summary = summarize(
        {}, Outcome.drifted("changed outside", drift, {}), generation=1, now=T0, handled_reconcile_token=None
    )
    assert summary.status["drift"] == [{"field": "config.retention.ms", "desired": "1000", "actual": "2000"}]
    conditions = conditions_by_type(summary.status)
    assert conditions["Drifted"]["status"] == "True"
    assert (conditions["Ready"]["status"], conditions["Ready"]["reason"]) == ("True", "DriftDetected")
    assert [(e.reason, e.warning) for e in summary.events] == [("DriftDetected", True)]


def test_unchanged_drift_is_not_announced_twice_but_new_drift_is() -> None:
    one = (DriftItem(field="partitions", desired="3", actual="4"),)
    two = (*one, DriftItem(field="config.x", desired="1", actual="2"))
    first = summarize({}, Outcome.drifted("m", one, {}), generation=1, now=T0, handled_reconcile_token=None)
    again = summarize(first.status, Outcome.drifted("m", one, {}), generation=1, now=T1, handled_reconcile_token=None)
    more = summarize(first.status, Outcome.drifted("m", two, {}), generation=1, now=T1, handled_reconcile_token=None)
    assert again.events == ()
    assert [e.reason for e in more.events] == ["DriftDetected"]


def test_drift_is_cleared_when_the_object_is_in_sync_again() -> None:
    drift = (DriftItem(field="partitions", desired="3", actual="4"),)
    drifted = summarize({}, Outcome.drifted("m", drift, {}), generation=1, now=T0, handled_reconcile_token=None)
    in_sync = summarize(drifted.status, ready(), generation=1, now=T1, handled_reconcile_token=None)
    assert "drift" not in in_sync.status
    assert "Drifted" not in conditions_by_type(in_sync.status)


def test_a_failure_is_announced_once_while_it_lasts() -> None:
    first = summarize({}, Outcome.retrying("down"), generation=1, now=T0, handled_reconcile_token=None)
    second = summarize(first.status, Outcome.retrying("still down"), generation=1, now=T1, handled_reconcile_token=None)
    assert [(e.reason, e.warning) for e in first.events] == [("ProgressingWithRetry", True)]
    assert second.events == ()


def test_recovery_without_changes_is_announced_as_succeeded() -> None:
    failed = summarize({}, Outcome.retrying("down"), generation=1, now=T0, handled_reconcile_token=None)
    recovered = summarize(failed.status, ready(), generation=1, now=T1, handled_reconcile_token=None)
    assert [(e.reason, e.warning) for e in recovered.events] == [("Succeeded", False)]


def test_change_events_are_kept_and_not_doubled_by_a_transition_event() -> None:
    created = Outcome.ready("in sync", {}, (EventNote("Created", "Topic 't' created"),))
    summary = summarize({}, created, generation=1, now=T0, handled_reconcile_token=None)
    assert [e.reason for e in summary.events] == ["Created"]


def test_progressing_keeps_reconciling_true_and_announces_nothing_by_itself() -> None:
    outcome = Outcome.progressing("Reassigning: 1 of 6 done", {}, 2.0)
    summary = summarize({}, outcome, generation=1, now=T0, handled_reconcile_token=None)
    assert conditions_by_type(summary.status)["Reconciling"]["reason"] == "Progressing"
    assert summary.events == ()


def test_only_a_ready_outcome_records_the_generation_as_applied() -> None:
    applied = summarize({}, ready(), generation=3, now=T0, handled_reconcile_token=None).status
    assert applied["lastAppliedGeneration"] == 3
    retrying = summarize(applied, Outcome.retrying("down"), generation=4, now=T1, handled_reconcile_token=None).status
    assert retrying["lastAppliedGeneration"] == 3
    drift = (DriftItem(field="f", desired="1", actual="2"),)
    drifted = summarize(applied, Outcome.drifted("d", drift, {}), generation=3, now=T1, handled_reconcile_token=None)
    assert drifted.status["lastAppliedGeneration"] == 3


def test_reconcile_request_token_is_echoed() -> None:
    status = summarize({}, ready(), generation=1, now=T0, handled_reconcile_token="2026-11-27T10:00").status
    assert status["lastHandledReconcileAt"] == "2026-11-27T10:00"


def test_facts_with_none_remove_the_field_and_absent_facts_keep_it() -> None:
    before = {"topicId": "abc", "partitions": 3, "replicasChange": {"targetReplicationFactor": 3}}
    status = summarize(
        before, ready(replicasChange=None, partitions=4), generation=1, now=T0, handled_reconcile_token=None
    ).status
    assert status["topicId"] == "abc"
    assert status["partitions"] == 4
    assert "replicasChange" not in status


PHASE_OUTCOMES = st.sampled_from(
    [
        ready(),
        Outcome.retrying("down"),
        Outcome.stalled("InvalidConfig", "no"),
        Outcome.progressing("moving", {}, 1.0),
        Outcome.suspended(),
        Outcome.drifted("d", (DriftItem(field="f", desired="1", actual="2"),), {}),
    ]
)


@given(st.lists(PHASE_OUTCOMES, min_size=1, max_size=6), st.integers(min_value=1, max_value=50))
def test_kstatus_invariants_hold_after_any_sequence_of_outcomes(outcomes: list[Outcome], generation: int) -> None:
    status: dict[str, Any] = {}
    for outcome in outcomes:
        status = summarize(status, outcome, generation=generation, now=T0, handled_reconcile_token=None).status
        conditions = conditions_by_type(status)
        assert "Ready" in conditions
        assert not ("Reconciling" in conditions and "Stalled" in conditions)
        if "Reconciling" in conditions or "Stalled" in conditions:
            assert conditions["Ready"]["status"] == "False"
        assert all(c["status"] == "True" for t, c in conditions.items() if t != "Ready")
        assert all(c["observedGeneration"] == generation for c in conditions.values())
        assert status["observedGeneration"] == generation
        settled = outcome.phase in (Phase.READY, Phase.DRIFTED, Phase.SUSPENDED)
        assert (conditions["Ready"]["status"] == "True") == settled


def test_a_kind_condition_is_set_with_its_own_transition_time_and_kept_while_not_observed() -> None:
    green = KindCondition("Healthy", "True", "Green", "All shards are assigned.")
    yellow = KindCondition("Healthy", "False", "Yellow", "1 replica shard is unassigned.")
    first = summarize({}, replace(ready(), conditions=(green,)), generation=1, now=T0, handled_reconcile_token=None)
    assert list(conditions_by_type(first.status)) == ["Ready", "Healthy"]  # Ready stays first
    unreached = summarize(first.status, Outcome.retrying("down"), generation=1, now=T1, handled_reconcile_token=None)
    assert conditions_by_type(unreached.status)["Healthy"] == conditions_by_type(first.status)["Healthy"]
    same = summarize(
        first.status, replace(ready(), conditions=(green,)), generation=1, now=T1, handled_reconcile_token=None
    )
    assert same.status == first.status
    moved = summarize(
        first.status, replace(ready(), conditions=(yellow,)), generation=1, now=T1, handled_reconcile_token=None
    )
    assert conditions_by_type(moved.status)["Healthy"]["reason"] == "Yellow"
    assert conditions_by_type(moved.status)["Healthy"]["lastTransitionTime"] == T1
    assert moved.events == ()  # health is a condition to read, not a change to announce
