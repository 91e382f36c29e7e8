"""What the core needs from each kind: a model, a pure plan, a thin service client, and this small class.

The core (controllers.core.sync) does everything kinds share: resolving the
connection, ownership of contested resources, adoption, the report-or-apply
decision, applying and verifying, the Event vocabulary, and turning failures
into conditions. A kind answers the questions only it can: how to reach its
service, what the resource looks like there, which changes make it match the
spec, and what the result means.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from controllers.core.approval import Approval, ApprovalPhase
from controllers.core.model import CommonSpec, CommonStatus, DriftItem
from controllers.core.objects import ObjectKey, ResourceInfo
from controllers.core.outcome import KindCondition, Outcome
from controllers.core.policy import KindPolicy

SpecT = TypeVar("SpecT", bound=CommonSpec)
StatusT = TypeVar("StatusT", bound=CommonStatus)


@dataclass(frozen=True)
class Blocker:
    """Why (part of) the spec cannot be applied until a user acts."""

    reason: str
    message: str


class Change(Protocol):
    """One change to the service, as a pure plan proposes it."""

    # It makes the resource exist: announced as Created.
    creates: ClassVar[bool]
    # It completes after the call returns (a data copy): verification does not wait for it.
    settles_later: ClassVar[bool]
    # The Event reason announcing it, when not part of an Updated Event (e.g. ReassignmentStarted).
    event_reason: ClassVar[str | None]

    def summary(self) -> str:
        """What the change does, with old and new values: 'partitions 2 -> 4'."""
        ...

    def drift(self) -> tuple[DriftItem, ...]:
        """The differences this change removes, field by field."""
        ...

    def undo(self) -> Change | str:
        """The change that returns the service to how it was before this one, or why there is none
        ('Kafka cannot remove partitions'): what a pass refused or broken halfway rolls back."""
        ...

    def destructive(self) -> str | None:
        """What this change does that cannot be undone ('migrating the index by reindexing'), or None; the
        tenancy policy can make such changes wait for an approval."""
        ...


class Plan(Protocol):
    @property
    def changes(self) -> Sequence[Change]: ...

    @property
    def blocker(self) -> Blocker | None: ...


class Observation(Protocol):
    @property
    def instance(self) -> str:
        """The service instance's identity (a Kafka cluster id): claims conflict only on one instance."""
        ...

    @property
    def resource_id(self) -> str | None:
        """The resource's own id on the service (a topic id); None when it does not exist."""
        ...


@dataclass(frozen=True)
class ReconcileRequest(Generic[SpecT, StatusT]):
    key: ObjectKey
    body: Mapping[str, Any]
    spec: SpecT
    status: StatusT
    # True when the current generation was already applied and confirmed, so
    # any difference found now was made outside the operator: drift.
    spec_applied: bool
    # Other objects claiming the same external resource (see Kind.claim).
    peers: tuple[Mapping[str, Any], ...]
    # Writes status fields before the service is changed: the Events a pass is about to earn
    # (pendingEvents), so a crash in between neither loses nor mislabels them, and the approval it
    # applies (lastApproval). False when the write failed.
    record_intent: Callable[[Mapping[str, Any]], Awaitable[bool]]
    # The tenancy policy of this kind, for limits only the service's answers can check (the core
    # applies the rest before any service call).
    policy: KindPolicy
    # The ChangeApprovals naming this object.
    approvals: tuple[Approval, ...]
    # Records in a ChangeApproval's status what became of it.
    settle_approval: Callable[[Approval, ApprovalPhase, str], Awaitable[None]]


class Kind(Protocol[SpecT, StatusT]):
    resource: ResourceInfo
    noun: str  # what the external resource is called in messages: "topic"
    nouns: str  # and more than one: "topics"
    spec_model: type[SpecT]
    status_model: type[StatusT]
    finalizer: str
    policy_model: type[KindPolicy]  # this kind's section of the tenancy policy file
    # Stall reasons that come from the service refusing a request: retrying
    # the same spec would be refused again, so only a new generation (or a
    # manual reconcile request) tries again.
    sticky_stall_reasons: frozenset[str]
    # The errors its client raises for service failures (unreachable, refused).
    service_errors: tuple[type[Exception], ...]

    def claim(self, body: Mapping[str, Any]) -> str:
        """The name of the external resource this object manages (e.g. the topic name)."""
        ...

    async def client(self, namespace: str, spec: SpecT, *, fresh: bool) -> Any:
        """The service client for this object's connection; raises ClusterRefInvalid or KubeError.
        `fresh` reads a clusterRef Secret now instead of from the cache (deletions)."""
        ...

    async def observe(
        self, client: Any, request: ReconcileRequest[SpecT, StatusT], *, applied: Sequence[Any]
    ) -> Observation:
        """The resource as the service has it (`applied`: the changes just made, if any)."""
        ...

    def plan(self, request: ReconcileRequest[SpecT, StatusT], observation: Any) -> Plan:
        """Pure: the changes that make the service match the spec, and what blocks the rest."""
        ...

    def apply(self, client: Any, change: Any) -> Awaitable[None]:
        """Make one change; raises one of service_errors."""
        ...

    def failure(self, client: Any, name: str, change: Any | None, error: Exception) -> Outcome:
        """What a service error means: while observing (`change` None) or making `change`."""
        ...

    def verdict(
        self, request: ReconcileRequest[SpecT, StatusT], observation: Any, plan: Any, *, applied: Sequence[Any]
    ) -> Outcome:
        """The outcome once the service was observed after applying `applied`: ready, in progress
        or stalled (the core adds the Events of the changes and the facts)."""
        ...

    def facts(self, request: ReconcileRequest[SpecT, StatusT], observation: Any, plan: Any) -> dict[str, Any]:
        """Kind-specific status fields as observed (None values remove fields); observation and plan
        are None when the service was not reached."""
        ...

    def conditions(self, observation: Any) -> tuple[KindCondition, ...]:
        """The kind's own conditions as observed (an index's health); () for none."""
        ...

    def references_version(self, observation: Any) -> str | None:
        """A digest of the versions of the ConfigMaps and Secrets the spec takes values from (None: it
        takes none). When it differs from the one last applied, the spec has changed although its
        generation has not: the changes that follow are the user's, not drift."""
        ...

    def recorded_id(self, status: StatusT) -> str | None:
        """The resource id this object's status recorded (None: it never managed the resource)."""
        ...

    def protected(self, observation: Any) -> str | None:
        """Why the observed resource must never be touched (a service's internal resource), or None."""
        ...

    def inventories(self) -> list[Awaitable[tuple[str, frozenset[str]]]]:
        """One listing per service instance the operator reaches: its id and the names of every resource
        of this kind on it (internal ones left out), for the unmanaged-resource report. A listing raises
        one of service_errors when its instance cannot be listed."""
        ...

    def delete(self, client: Any, request: ReconcileRequest[SpecT, StatusT], observation: Any) -> Awaitable[None]:
        """Delete the external resource as spec.deletionPolicy says (a kind may refuse, e.g. an index
        that holds documents under DeleteIfEmpty); raises one of service_errors."""
        ...
