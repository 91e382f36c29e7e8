"""Which changes make a process group match its NiFiFlow: deploy, replace in place, parameters, run state."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from controllers.nififlow.definition import context_name, prepare
from controllers.nififlow.model import FlowState, UpdateStrategy
from controllers.nififlow.normalise import flow_content, flow_contents
from controllers.nififlow.plan import (
    DRAIN_TIMED_OUT,
    HIDDEN,
    INVALID_FLOW,
    DeployFlow,
    DesiredFlow,
    FlowPlan,
    ReplaceFlow,
    SetRunState,
    StopSources,
    UpdateParameters,
    plan_flow,
)
from controllers.nififlow.state import (
    ComponentProblem,
    NiFiFacts,
    Observation,
    ObservedContext,
    ObservedGroup,
    ObservedParameter,
    RunState,
)
from tests.nifi_flows import generate_update_log, redeployed

CONTEXT = context_name("team-a", "ingest")
NIFI = NiFiFacts(root_group_id="root-1", version="2.3.0")
RUNNING = RunState(running=3, sources_running=1)


def desired(definition: dict[str, Any] | None = None, **changes: Any) -> DesiredFlow:
    prepared = prepare(definition or generate_update_log(), CONTEXT)
    flow = DesiredFlow(
        group_name="ingest",
        parent_id=None,
        definition=prepared.definition,
        content=flow_content(flow_contents(prepared.definition)),
        context_name=CONTEXT,
        parameters={"source": "test"},
        sensitive={"token": "s3cret"},
        sensitive_version="secret-v1",
        state=FlowState.RUNNING,
        update_strategy=UpdateStrategy.DRAIN,
    )
    return replace(flow, **changes)


def group(definition: dict[str, Any] | None = None, run: RunState = RUNNING, **changes: Any) -> ObservedGroup:
    parameters = {"source": ObservedParameter("test", False), "token": ObservedParameter(None, True)}
    observed = ObservedGroup(
        id="group-1",
        name="ingest",
        parent_id="root-1",
        content=flow_content(flow_contents(redeployed(definition or generate_update_log()))),
        context=ObservedContext(name=CONTEXT, parameters=parameters),
        run=run,
    )
    return replace(observed, **changes)


def plan(flow: DesiredFlow, observed: ObservedGroup | None, **options: Any) -> FlowPlan:
    arguments: dict[str, Any] = {"applied_sensitive_version": "secret-v1", "drain_expired": False, **options}
    return plan_flow(flow, Observation(nifi=NIFI, group=observed), **arguments)


def test_a_missing_group_is_deployed_whole() -> None:
    result = plan(desired(), None)
    assert len(result.changes) == 1 and isinstance(result.changes[0], DeployFlow)
    assert "deployed with 5 component(s) and 2 parameter(s), started" in result.changes[0].summary()


def test_a_group_as_declared_and_running_needs_nothing() -> None:
    assert plan(desired(), group()) == FlowPlan()


def test_a_changed_flow_is_replaced_in_place_once_nothing_is_queued() -> None:
    result = plan(desired(generate_update_log(file_size="1 KB")), group())
    (change,) = result.changes
    assert isinstance(change, ReplaceFlow) and change.group_id == "group-1" and not change.drop_queued
    assert "processor Generate: properties.File Size 0B -> 1 KB" in change.summary()


def test_drain_stops_the_sources_and_waits_while_data_is_queued() -> None:
    changed = desired(generate_update_log(file_size="1 KB"))
    result = plan(changed, group(run=RunState(running=3, sources_running=1, queued=40)))
    assert [type(c) for c in result.changes] == [StopSources] and result.draining == 40
    # Sources stopped, the rest still moving data: wait, changing nothing.
    waiting = plan(changed, group(run=RunState(running=2, stopped=1, queued=12)))
    assert waiting.changes == () and waiting.draining == 12


def test_a_drain_past_its_timeout_stalls_and_the_sources_run_again() -> None:
    changed = desired(generate_update_log(file_size="1 KB"))
    result = plan(changed, group(run=RunState(running=2, stopped=1, queued=12)), drain_expired=True)
    assert result.blocker is not None and result.blocker.reason == DRAIN_TIMED_OUT
    assert "12 flowfile(s)" in result.blocker.message
    assert [type(c) for c in result.changes] == [SetRunState]


def test_a_stopped_flow_is_replaced_without_waiting_and_its_queued_data_kept() -> None:
    changed = desired(generate_update_log(file_size="1 KB"), state=FlowState.STOPPED)
    (change,) = plan(changed, group(run=RunState(stopped=3, queued=7))).changes
    assert isinstance(change, ReplaceFlow) and not change.drop_queued


def test_drop_empties_the_queues_and_replaces_at_once() -> None:
    changed = desired(generate_update_log(file_size="1 KB"), update_strategy=UpdateStrategy.DROP)
    (change,) = plan(changed, group(run=RunState(running=3, sources_running=1, queued=40))).changes
    assert isinstance(change, ReplaceFlow) and change.drop_queued and "queues emptied" in change.summary()


def test_parameters_are_set_removed_and_a_changed_secret_is_set_again_without_showing_it() -> None:
    flow = desired(parameters={"source": "prod"}, sensitive={"token": "n3w"})
    observed = group()
    parameters = {**observed.context.parameters, "old": ObservedParameter("x", False)}  # type: ignore[union-attr]
    observed = replace(observed, context=replace(observed.context, parameters=parameters))  # type: ignore[type-var]
    (change,) = plan(flow, observed, applied_sensitive_version="secret-v0").changes
    assert isinstance(change, UpdateParameters)
    assert change.values == {"source": "prod", "token": "n3w", "old": None}
    assert change.sensitive == {"token"}
    shown = change.summary() + repr(change.drift())
    assert "n3w" not in shown and HIDDEN in shown
    assert "parameter source test -> prod" in change.summary() and "parameter old x -> removed" in change.summary()


def test_an_unchanged_secret_is_not_set_again() -> None:
    assert plan(desired(), group(), applied_sensitive_version="secret-v1").changes == ()


def test_the_run_state_follows_the_spec() -> None:
    (start,) = plan(desired(), group(run=RunState(stopped=3))).changes
    assert isinstance(start, SetRunState) and start.state is FlowState.RUNNING
    (stop,) = plan(desired(state=FlowState.STOPPED), group()).changes
    assert (
        isinstance(stop, SetRunState)
        and stop.state is FlowState.STOPPED
        and stop.summary() == "flow Running -> Stopped"
    )


def test_invalid_components_stall_naming_each_with_nifis_message() -> None:
    problems = (ComponentProblem("processor Log", ("'Log Level' is invalid because it must be one of ...",)),)
    result = plan(desired(), group(run=RunState(running=2, invalid=1), problems=problems))
    assert result.blocker is not None and result.blocker.reason == INVALID_FLOW
    assert "processor Log: 'Log Level' is invalid" in result.blocker.message


def test_a_service_disabled_in_nifi_is_enabled_again_rather_than_stalling_on_the_processors_it_left_invalid() -> None:
    problems = (ComponentProblem("processor Convert", ("'Record Reader' ... Controller Service is disabled",)),)
    observed = group(run=RunState(running=2, invalid=1), problems=problems, services_disabled=1)
    result = plan(desired(), observed)
    assert result.blocker is None
    (start,) = result.changes
    assert isinstance(start, SetRunState) and start.state is FlowState.RUNNING


def test_a_replacement_is_undone_by_replacing_with_the_flow_it_replaced_in_its_run_state() -> None:
    before = {"flowContents": {"name": "ingest"}, "parameterContexts": {}}
    (change,) = plan(desired(generate_update_log(file_size="1 KB")), replace(group(), definition=before)).changes
    assert isinstance(change, ReplaceFlow)
    undo = change.undo()
    assert isinstance(undo, ReplaceFlow)
    assert undo.desired.definition == before and undo.desired.state is FlowState.RUNNING
    assert "processor Generate: properties.File Size 1 KB -> 0B" in undo.summary()
    assert not undo.drop_queued


def test_plain_parameters_go_back_and_sensitive_ones_cannot() -> None:
    plain = UpdateParameters("group-1", CONTEXT, {"source": "new"}, frozenset(), {"source": "old"})
    assert plain.undo() == UpdateParameters("group-1", CONTEXT, {"source": "old"}, frozenset(), {"source": "new"})
    secret = UpdateParameters("group-1", CONTEXT, {"token": "x"}, frozenset({"token"}), {"token": HIDDEN})
    assert isinstance(secret.undo(), str)
