"""What the operator observes of a NiFi and a flow's process group, as plain values (no client types)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from controllers.nififlow.normalise import FlowContent


@dataclass(frozen=True)
class NiFiFacts:
    root_group_id: str  # the instance's identity: claims conflict only on one NiFi
    version: str
    # The processor and controller service types NiFi marks restricted (they run commands or touch files).
    restricted_types: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ObservedParameter:
    value: str | None  # None for a sensitive one: NiFi never shows it
    sensitive: bool


@dataclass(frozen=True)
class ComponentProblem:
    """A component NiFi cannot run, with its validation messages."""

    component: str  # 'processor Generate'
    messages: tuple[str, ...]

    def shown(self) -> str:
        return f"{self.component}: {'; '.join(self.messages)}"


@dataclass(frozen=True)
class RunState:
    """How the group's processors (all levels) are scheduled."""

    running: int = 0
    stopped: int = 0
    invalid: int = 0
    disabled: int = 0
    sources_running: int = 0  # processors without incoming connections that run
    queued: int = 0  # flowfiles waiting in the group's connections

    @property
    def summary(self) -> str:
        """Running, Stopped or Invalid: what status.state and the printer column show."""
        if self.invalid:
            return "Invalid"
        return "Running" if self.running and not self.stopped else "Stopped"


@dataclass(frozen=True)
class ObservedContext:
    name: str
    parameters: Mapping[str, ObservedParameter]


@dataclass(frozen=True)
class ObservedGroup:
    id: str
    name: str
    parent_id: str
    content: FlowContent
    context: ObservedContext | None  # the parameter context bound to the group
    run: RunState
    problems: tuple[ComponentProblem, ...] = ()
    services_disabled: int = 0  # controller services of the flow not enabled
    # The group as NiFi exports it (a flow definition bound to its context): what a rollback replaces it with.
    definition: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Observation:
    nifi: NiFiFacts
    group: ObservedGroup | None
    # The owned parameter context when it exists but is bound to no group here (a deployment cut short).
    context: ObservedContext | None = None
    sibling_names: tuple[str, ...] = field(default_factory=tuple)

    @property
    def instance(self) -> str:
        return self.nifi.root_group_id

    @property
    def resource_id(self) -> str | None:
        return self.group.id if self.group else None
