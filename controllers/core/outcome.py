"""What one reconcile of one object came to, as a value.

A kind's reconciler returns an Outcome; the core turns it into conditions,
status and Events (controllers.core.status) in one place. Errors are values
here, not exceptions, so every path ends in a status a user can read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from controllers.core.model import DriftItem


class Phase(Enum):
    READY = "Ready"  # the service matches the spec
    PROGRESSING = "Progressing"  # work is under way (e.g. a replica reassignment); check again soon
    RETRYING = "Retrying"  # a transient failure; retry with backoff
    STALLED = "Stalled"  # the spec cannot be applied as it is; a user must act
    DRIFTED = "Drifted"  # the service differs from the spec and driftPolicy is Report
    SUSPENDED = "Suspended"  # spec.suspend is true
    ROLLED_BACK = "RolledBack"  # the service matches an earlier revision, as a rollback request asks


# Ready-condition reasons that are not kind-specific.
SUCCEEDED = "Succeeded"
PROGRESSING = "Progressing"
PROGRESSING_WITH_RETRY = "ProgressingWithRetry"
DRIFT_DETECTED = "DriftDetected"
DRIFT_CORRECTED = "DriftCorrected"
SUSPENDED = "Suspended"
RETAINED = "Retained"  # an object deleted, its external resource kept
INVALID_SPEC = "InvalidSpec"
NOT_CONVERGING = "NotConverging"
CLUSTER_REF_INVALID = "ClusterRefInvalid"


@dataclass(frozen=True)
class EventNote:
    """An Event to record: what changed or what failed, in a sentence with values."""

    reason: str
    message: str
    warning: bool = False
    # A stable id for Events that must be said once even if posted again (a pass
    # repeated after a crash); None for state transitions, said as they happen.
    event_id: str | None = None


@dataclass(frozen=True)
class KindCondition:
    """A condition only one kind has (an index's Healthy); kept as last set until the kind sets it again."""

    type: str
    status: str  # True, False or Unknown
    reason: str
    message: str


@dataclass(frozen=True)
class Outcome:
    phase: Phase
    reason: str
    message: str
    # Kind-specific status fields observed this time (e.g. topicId); a None
    # value removes the field. Absent keys keep their previous value.
    facts: Mapping[str, Any] = field(default_factory=dict)
    drift: tuple[DriftItem, ...] = ()
    events: tuple[EventNote, ...] = ()
    requeue_after: float | None = None
    # Changes were applied this pass but the service does not show them yet; the
    # core stalls an object that stays so for several passes (NotConverging).
    unconfirmed_changes: bool = False
    # The kind's own conditions observed this time; those not given keep their last value.
    conditions: tuple[KindCondition, ...] = ()

    @staticmethod
    def ready(message: str, facts: Mapping[str, Any], events: tuple[EventNote, ...] = ()) -> Outcome:
        return Outcome(Phase.READY, SUCCEEDED, message, facts, events=events)

    @staticmethod
    def progressing(
        message: str,
        facts: Mapping[str, Any],
        requeue_after: float,
        events: tuple[EventNote, ...] = (),
        *,
        unconfirmed_changes: bool = False,
    ) -> Outcome:
        return Outcome(
            Phase.PROGRESSING,
            PROGRESSING,
            message,
            facts,
            events=events,
            requeue_after=requeue_after,
            unconfirmed_changes=unconfirmed_changes,
        )

    @staticmethod
    def retrying(message: str, events: tuple[EventNote, ...] = ()) -> Outcome:
        return Outcome(Phase.RETRYING, PROGRESSING_WITH_RETRY, message, events=events)

    @staticmethod
    def stalled(
        reason: str, message: str, facts: Mapping[str, Any] | None = None, events: tuple[EventNote, ...] = ()
    ) -> Outcome:
        return Outcome(Phase.STALLED, reason, message, facts or {}, events=events)

    @staticmethod
    def drifted(message: str, drift: tuple[DriftItem, ...], facts: Mapping[str, Any]) -> Outcome:
        return Outcome(Phase.DRIFTED, DRIFT_DETECTED, message, facts, drift=drift)

    @staticmethod
    def suspended() -> Outcome:
        return Outcome(
            Phase.SUSPENDED,
            SUSPENDED,
            "Reconciliation is suspended (spec.suspend: true); the service is neither read nor changed.",
        )
