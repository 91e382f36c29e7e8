"""Spec and status fields every kind shares.

These pydantic models are the single source of truth for the common part of
each CRD schema (see controllers.crdgen) and for parsing objects at runtime.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class CamelModel(BaseModel):
    """Fields are snake_case in Python and camelCase in Kubernetes."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class DeletionPolicy(StrEnum):
    RETAIN = "Retain"
    DELETE = "Delete"


class DriftPolicy(StrEnum):
    CORRECT = "Correct"
    REPORT = "Report"


class ApprovalMode(StrEnum):
    AUTOMATIC = "Automatic"
    MANUAL = "Manual"


class ClusterRef(CamelModel):
    name: str = Field(
        min_length=1,
        max_length=253,
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
        description="Name of a Secret in this object's namespace that holds the connection to the service.",
    )


class CommonSpec(CamelModel):
    suspend: bool = Field(
        default=False,
        description="Stop reconciling this object: the service is neither read nor changed until false again.",
    )
    deletion_policy: DeletionPolicy = Field(
        default=DeletionPolicy.RETAIN,
        description=(
            "What deleting this object does to the real resource. Retain (default) leaves it and adds no "
            "finalizer; Delete removes it, guarded by a finalizer."
        ),
    )
    drift_policy: DriftPolicy = Field(
        default=DriftPolicy.CORRECT,
        description=(
            "What to do about changes made outside this object. Correct (default) reverts them; Report "
            "lists them in status.drift and the Drifted condition and changes nothing."
        ),
    )
    cluster_ref: ClusterRef | None = Field(
        default=None,
        description="A Secret naming the service connection; the operator's default connection when absent.",
    )
    approval: ApprovalMode = Field(
        default=ApprovalMode.AUTOMATIC,
        description=(
            "Automatic (default) applies changes as they come; Manual shows each plan in status.plan and "
            "waits for a ChangeApproval of its digest before changing the service. The tenancy policy can "
            "require Manual for a namespace, and approval of destructive changes for every object."
        ),
    )


ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(CamelModel):
    type: str = Field(description="Ready, Reconciling, Stalled or Drifted.")
    status: ConditionStatus
    observed_generation: int = Field(ge=0, description="The metadata.generation this condition was computed for.")
    last_transition_time: str = Field(description="When status last changed (RFC 3339).")
    reason: str = Field(pattern=r"^[A-Z][A-Za-z0-9]*$", description="CamelCase, stable; what alerts match on.")
    message: str = Field(description="A human sentence with the values involved.")


class DriftItem(CamelModel):
    field: str = Field(description="The drifted field, e.g. partitions or config.retention.ms.")
    desired: str = Field(description="The value the spec declares.")
    actual: str = Field(description="The value the service has.")


class PendingEvent(CamelModel):
    reason: str
    message: str
    event_id: str = Field(description="Stable id: posting it again is the same Event.")
    fields: list[str] = Field(default_factory=list, description="The fields of the changes it announces.")


class PendingPlan(CamelModel):
    digest: str = Field(description="What a ChangeApproval names to approve exactly this plan.")
    changes: list[str] = Field(description="The changes, in the words of the Events that will announce them.")
    approval_required_because: str = Field(description="Why this plan waits for an approval.")


class AppliedApproval(CamelModel):
    name: str = Field(description="The ChangeApproval.")
    digest: str = Field(description="The plan it approved.")
    approved_by: str = Field(description="Who created it, as the API server authenticated them.")
    generation: int = Field(description="The metadata.generation whose rollout it approved.")


class CommonStatus(CamelModel):
    # Read back from the API server at every reconcile: a field an older operator
    # wrote is no reason to fail.
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")
    observed_generation: int | None = Field(
        default=None, description="The last metadata.generation the operator handled, failed ones included."
    )
    last_applied_generation: int | None = Field(
        default=None,
        description=(
            "The last metadata.generation whose spec was applied and confirmed on the service; a difference "
            "found at this generation was made outside the operator (drift)."
        ),
    )
    last_applied_references: str | None = Field(
        default=None,
        description=(
            "With lastAppliedGeneration: a digest of the versions of the ConfigMaps and Secrets the spec took "
            "values from when it was applied (absent for kinds that take none)."
        ),
    )
    cluster_id: str | None = Field(
        default=None,
        description=(
            "The identity of the service instance this object was last seen on (a Kafka cluster id); objects "
            "claiming the same resource conflict only on the same instance."
        ),
    )
    conditions: list[Condition] = Field(default_factory=list)
    last_handled_reconcile_at: str | None = Field(
        default=None,
        description="The value of the infometis.io/reconcile-requested-at annotation last acted upon.",
    )
    drift: list[DriftItem] = Field(
        default_factory=list,
        description="Differences made outside this object and left in place (driftPolicy: Report).",
    )
    pending_events: list[PendingEvent] = Field(
        default_factory=list,
        description=(
            "Events a reconcile recorded before changing the service, announced once the changes show; "
            "present only while a change is under way."
        ),
    )
    rolled_back_generation: int | None = Field(
        default=None,
        description=(
            "The generation whose changes were rolled back after the service refused or broke on them; it is "
            "not applied again until the spec changes or a reconcile is requested."
        ),
    )
    rolled_back_to: int | None = Field(
        default=None,
        description=(
            "The revision whose spec the service has, as infometis.io/rollback-to-revision asks; absent when it "
            "has this object's own spec."
        ),
    )
    plan: PendingPlan | None = Field(
        default=None, description="The changes waiting for an approval; absent when nothing waits."
    )
    last_approval: AppliedApproval | None = Field(
        default=None,
        description=(
            "The last approval applied; later steps of that generation's rollout (an index migration's "
            "catch-up) go on under it, destructive ones excepted."
        ),
    )
