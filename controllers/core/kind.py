"""What the core loop needs from each kind (KafkaTopic, and later others)."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from controllers.core.model import CommonSpec
from controllers.core.objects import ObjectKey, ResourceInfo
from controllers.core.outcome import Outcome
from controllers.core.policy import KindPolicy

SpecT = TypeVar("SpecT", bound=CommonSpec)


@dataclass(frozen=True)
class ReconcileRequest(Generic[SpecT]):
    key: ObjectKey
    body: Mapping[str, Any]
    spec: SpecT
    status: Mapping[str, Any]
    # True when the current generation was already applied and confirmed, so
    # any difference found now was made outside the operator: drift.
    spec_applied: bool
    # Other objects claiming the same external resource (see Kind.claim).
    peers: tuple[Mapping[str, Any], ...]


class Kind(Protocol[SpecT]):
    resource: ResourceInfo
    noun: str  # what the external resource is called in messages: "topic"
    spec_model: type[SpecT]
    finalizer: str
    policy_model: type[KindPolicy]  # this kind's section of the tenancy policy file
    # Stall reasons that come from the service refusing a request: retrying
    # the same spec would be refused again, so only a new generation (or a
    # manual reconcile request) tries again.
    sticky_stall_reasons: frozenset[str]

    def claim(self, body: Mapping[str, Any]) -> Hashable:
        """The external resource this object manages (e.g. the topic name)."""
        ...

    async def reconcile(self, request: ReconcileRequest[SpecT]) -> Outcome:
        """Observe, plan and apply; never raises for service or spec problems."""
        ...

    async def delete(self, request: ReconcileRequest[SpecT]) -> Outcome:
        """Delete the external resource (deletionPolicy: Delete); READY when it is gone."""
        ...
