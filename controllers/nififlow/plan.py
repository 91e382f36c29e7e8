"""Which changes make a NiFi process group match its NiFiFlow (pure).

A missing group is deployed whole (parameter context, upload, controller
services, start). An existing one is changed in place: its contents replaced
through NiFi's replace requests (never deleted and created again, so its id
and queued data stay), its parameter context's values updated, and its
processors started or stopped. A replacement follows `updateStrategy`: Drop
empties the queues first; Drain stops the sources and replaces once the
queues are empty, stalling when they are not within the timeout.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from controllers.core.kind import Blocker
from controllers.core.model import DriftItem
from controllers.nififlow.model import FlowState, UpdateStrategy
from controllers.nififlow.normalise import Difference, FlowContent, differences
from controllers.nififlow.state import Observation, ObservedContext, ObservedGroup

INVALID_FLOW = "InvalidFlow"
DRAIN_TIMED_OUT = "DrainTimedOut"
# Shown for a sensitive value wherever a value would be: the value itself never leaves the operator.
HIDDEN = "(sensitive)"


@dataclass(frozen=True)
class DesiredFlow:
    group_name: str
    parent_id: str | None  # None: NiFi's root group
    definition: Mapping[str, Any]  # bound to the owned context (controllers.nififlow.definition)
    content: FlowContent
    context_name: str
    parameters: Mapping[str, str]  # plain values, the definition's defaults under the spec's
    sensitive: Mapping[str, str]  # name -> value, from Secrets; never shown
    # Which Secret versions the sensitive values were read from: NiFi never shows a sensitive value,
    # so a changed Secret is noticed by its version, not by comparing values.
    sensitive_version: str
    state: FlowState
    update_strategy: UpdateStrategy
    # The versions of every ConfigMap and Secret the spec took values from (None: none).
    references_version: str | None = None


@dataclass(frozen=True)
class DeployFlow:
    creates: ClassVar[bool] = True
    settles_later: ClassVar[bool] = False
    event_reason: ClassVar[str | None] = None

    desired: DesiredFlow
    context: ObservedContext | None  # the owned context left by a deployment cut short, reused

    def undo(self) -> Change | str:
        return "a flow just deployed is kept: there is no earlier flow to go back to"

    def destructive(self) -> str | None:
        return None

    def summary(self) -> str:
        components = len(self.desired.content.components) - 1
        state = "started" if self.desired.state is FlowState.RUNNING else "left stopped"
        return (
            f"process group '{self.desired.group_name}' deployed with {components} component(s) and "
            f"{len(self.desired.parameters) + len(self.desired.sensitive)} parameter(s), {state}"
        )

    def drift(self) -> tuple[DriftItem, ...]:
        return (DriftItem(field="processGroup", desired="exists", actual="missing"),)


@dataclass(frozen=True)
class ReplaceFlow:
    creates: ClassVar[bool] = False
    settles_later: ClassVar[bool] = False
    event_reason: ClassVar[str | None] = None

    group_id: str
    desired: DesiredFlow
    differences: tuple[Difference, ...]
    drop_queued: bool  # Drop: empty the queues before replacing
    # The flow it replaces, as NiFi exported it, and whether it ran: what a rollback puts back.
    previous: Mapping[str, Any] | None = None
    previous_running: bool = False

    def undo(self) -> Change | str:
        if self.previous is None:
            return "the flow it replaced was not read"
        state = FlowState.RUNNING if self.previous_running else FlowState.STOPPED
        return ReplaceFlow(
            group_id=self.group_id,
            desired=replace(self.desired, definition=self.previous, state=state),
            differences=tuple(replace(d, desired=d.actual, actual=d.desired) for d in self.differences),
            drop_queued=False,
        )

    def destructive(self) -> str | None:
        return "emptying the flow's queues (their flowfiles are lost)" if self.drop_queued else None

    def summary(self) -> str:
        listed = "; ".join(d.shown() for d in self.differences[:10])
        more = f" and {len(self.differences) - 10} more" if len(self.differences) > 10 else ""
        how = "queues emptied, " if self.drop_queued else ""
        return f"flow replaced in place ({how}{len(self.differences)} difference(s): {listed}{more})"

    def drift(self) -> tuple[DriftItem, ...]:
        return tuple(DriftItem(field=f"flow.{d.key}", desired=d.desired, actual=d.actual) for d in self.differences)


@dataclass(frozen=True)
class StopSources:
    """Drain's first step: no new data enters the group; what is queued flows out."""

    creates: ClassVar[bool] = False
    settles_later: ClassVar[bool] = True
    event_reason: ClassVar[str | None] = "DrainStarted"

    group_id: str
    queued: int

    def undo(self) -> Change | str:
        return "the sources run again when the drain ends or times out"

    def destructive(self) -> str | None:
        return None

    def summary(self) -> str:
        return f"sources stopped to drain {self.queued} queued flowfile(s) before the flow is replaced"

    def drift(self) -> tuple[DriftItem, ...]:
        return ()


@dataclass(frozen=True)
class UpdateParameters:
    creates: ClassVar[bool] = False
    settles_later: ClassVar[bool] = False
    event_reason: ClassVar[str | None] = None

    group_id: str  # the group bound to the context, which names the context's id
    context_name: str
    values: Mapping[str, str | None]  # name -> value; None removes it
    sensitive: frozenset[str]  # names among `values` set as sensitive
    before: Mapping[str, str | None]
    sensitive_version: str | None = None  # the Secret versions the sensitive values come from, when any are set

    def undo(self) -> Change | str:
        if any(name in self.sensitive or self.before.get(name) == HIDDEN for name in self.values):
            return "NiFi never shows a sensitive value, so the earlier one cannot be set again"
        return UpdateParameters(
            group_id=self.group_id,
            context_name=self.context_name,
            values={name: self.before.get(name) for name in self.values},
            sensitive=frozenset(),
            before={name: value for name, value in self.values.items()},
        )

    def destructive(self) -> str | None:
        return None

    def summary(self) -> str:
        return "; ".join(
            f"parameter {name} {self._shown(name, self.before.get(name), 'unset')} -> "
            f"{self._shown(name, value, 'removed')}"
            for name, value in sorted(self.values.items())
        )

    def _shown(self, name: str, value: str | None, absent: str) -> str:
        if value is None:
            return absent
        return HIDDEN if name in self.sensitive else value

    def drift(self) -> tuple[DriftItem, ...]:
        return tuple(
            DriftItem(
                field=f"parameters.{name}",
                desired=self._shown(name, value, "removed"),
                actual=self._shown(name, self.before.get(name), "unset"),
            )
            for name, value in sorted(self.values.items())
        )


@dataclass(frozen=True)
class SetRunState:
    creates: ClassVar[bool] = False
    settles_later: ClassVar[bool] = False
    event_reason: ClassVar[str | None] = None

    group_id: str
    state: FlowState
    before: str

    def undo(self) -> Change | str:
        return "the flow's run state is left as it was set"

    def destructive(self) -> str | None:
        return None

    def summary(self) -> str:
        return f"flow {self.before} -> {self.state.value}"

    def drift(self) -> tuple[DriftItem, ...]:
        return (DriftItem(field="state", desired=self.state.value, actual=self.before),)


Change = DeployFlow | ReplaceFlow | StopSources | UpdateParameters | SetRunState


@dataclass(frozen=True)
class FlowPlan:
    changes: tuple[Change, ...] = ()
    blocker: Blocker | None = None
    # Drain waits for the queues to empty: the flowfiles still queued (None when not draining).
    draining: int | None = None
    differences: tuple[Difference, ...] = field(default_factory=tuple)


def plan_flow(
    desired: DesiredFlow,
    observation: Observation,
    *,
    applied_sensitive_version: str | None,
    drain_expired: bool,
) -> FlowPlan:
    """`applied_sensitive_version`: the Secret versions the status says were last set in NiFi;
    `drain_expired`: a drain began and has run longer than the spec allows."""
    group = observation.group
    if group is None:
        return FlowPlan(changes=(DeployFlow(desired=desired, context=observation.context),))
    found = tuple(differences(desired.content, group.content))
    changes: list[Change] = []
    parameters = _parameters_change(desired, group, applied_sensitive_version)
    if parameters is not None:
        changes.append(parameters)
    if found:
        # Drain waits only while something downstream of the sources runs to empty the queues.
        drains = group.run.running > group.run.sources_running
        if desired.update_strategy is UpdateStrategy.DRAIN and group.run.queued > 0 and drains:
            if drain_expired:
                run = _run_change(desired, group)  # the sources run again: the flow goes on as it was
                return FlowPlan(
                    changes=tuple(changes) + ((run,) if run else ()),
                    blocker=Blocker(
                        DRAIN_TIMED_OUT,
                        f"{group.run.queued} flowfile(s) were still queued in '{group.name}' at the end of the "
                        "drain timeout: the flow was not replaced and runs as it was. Fix what holds the data, "
                        "raise drainTimeoutSeconds, or set updateStrategy: Drop to discard it.",
                    ),
                    differences=found,
                )
            if group.run.sources_running:
                changes.append(StopSources(group_id=group.id, queued=group.run.queued))
            return FlowPlan(changes=tuple(changes), draining=group.run.queued, differences=found)
        changes.append(
            ReplaceFlow(
                group_id=group.id,
                desired=desired,
                differences=found,
                drop_queued=desired.update_strategy is UpdateStrategy.DROP and group.run.queued > 0,
                previous=group.definition,
                previous_running=group.run.summary == "Running",
            )
        )
        return FlowPlan(changes=tuple(changes), differences=found)
    if group.problems and not (desired.state is FlowState.RUNNING and group.services_disabled):
        # A service disabled in NiFi leaves its processors invalid: enabling it (below) is the fix.
        listed = "; ".join(p.shown() for p in group.problems)
        return FlowPlan(
            changes=tuple(changes),
            blocker=Blocker(INVALID_FLOW, f"NiFi cannot run {len(group.problems)} component(s): {listed}"),
        )
    run = _run_change(desired, group)
    if run is not None:
        changes.append(run)
    return FlowPlan(changes=tuple(changes))


def _parameters_change(
    desired: DesiredFlow, group: ObservedGroup, applied_sensitive_version: str | None
) -> UpdateParameters | None:
    context = group.context
    if context is None:
        return None  # replacing the flow binds the owned context again
    values: dict[str, str | None] = {}
    for name, value in desired.parameters.items():
        have = context.parameters.get(name)
        if have is None or have.sensitive or have.value != value:
            values[name] = value
    secrets_changed = applied_sensitive_version != desired.sensitive_version
    for name, value in desired.sensitive.items():
        have = context.parameters.get(name)
        if have is None or not have.sensitive or secrets_changed:
            values[name] = value
    for name in context.parameters.keys() - desired.parameters.keys() - desired.sensitive.keys():
        values[name] = None  # the context is the object's: a parameter the spec no longer has goes
    if not values:
        return None
    before = {name: _before(context, name) for name in values}
    sensitive = frozenset(desired.sensitive) | frozenset(n for n, p in context.parameters.items() if p.sensitive)
    return UpdateParameters(
        group_id=group.id,
        context_name=context.name,
        values=values,
        sensitive=sensitive & values.keys(),
        before=before,
        sensitive_version=desired.sensitive_version if desired.sensitive.keys() & values.keys() else None,
    )


def _before(context: ObservedContext, name: str) -> str | None:
    have = context.parameters.get(name)
    if have is None:
        return None
    return HIDDEN if have.sensitive else have.value


def _run_change(desired: DesiredFlow, group: ObservedGroup) -> SetRunState | None:
    state = group.run.summary
    if desired.state is FlowState.RUNNING and (group.run.stopped or group.services_disabled):
        return SetRunState(group_id=group.id, state=FlowState.RUNNING, before=state)
    if desired.state is FlowState.STOPPED and group.run.running:
        return SetRunState(group_id=group.id, state=FlowState.STOPPED, before=state)
    return None
