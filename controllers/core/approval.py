"""Changes that wait for a person's approval before they touch a service (pure).

A plan is the list of changes one pass would make, in the words of the Events
that will announce them, and a digest: of the object's uid and generation and
of every change's type, summary and field-by-field old and new values. A
ChangeApproval names an object and a digest and approves exactly that plan:
when the spec or the service changes, so do the plan and its digest, and an
approval of the old one no longer applies.

Who may approve is for RBAC to decide (only the infometis-change-approver role
may create ChangeApprovals; the namespace edit role may not), and admission
policies set spec.approvedBy to the user who created the approval, so the
Events name who approved (config/kustomize/base/approval).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from controllers.core.crd import CrdInfo, PrinterColumn
from controllers.core.model import ApprovalMode, CamelModel, CommonSpec, CommonStatus
from controllers.core.objects import ObjectKey, ResourceInfo
from controllers.core.policy import KindPolicy

if TYPE_CHECKING:
    from controllers.core.kind import Change

CHANGE_APPROVAL = ResourceInfo("infometis.io", "v1alpha1", "changeapprovals", "ChangeApproval")

# Ready-condition reasons while a plan waits, and the Event reason when an approved plan is applied.
AWAITING_APPROVAL = "AwaitingApproval"
APPROVAL_STALE = "ApprovalStale"
APPROVED = "Approved"

DIGEST_PATTERN = r"^[0-9a-f]{16}$"


class ApprovalPhase(StrEnum):
    APPLIED = "Applied"  # its plan was applied
    STALE = "Stale"  # its plan is no longer the object's plan


class ApprovalTarget(CamelModel):
    kind: str = Field(
        pattern=r"^[A-Z][A-Za-z0-9]*$", description="The object's kind: KafkaTopic, ElasticsearchIndex or NiFiFlow."
    )
    name: str = Field(min_length=1, max_length=253, description="The object's name, in this namespace.")


class ChangeApprovalSpec(CamelModel):
    target: ApprovalTarget
    plan_digest: str = Field(
        pattern=DIGEST_PATTERN, description="The digest of the plan approved, as the object's status.plan shows it."
    )
    approved_by: str | None = Field(
        default=None,
        description="Set on creation by an admission policy to the user who created the approval; never by hand.",
    )


class ChangeApprovalStatus(CamelModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")
    phase: ApprovalPhase | None = Field(default=None, description="Applied or Stale; absent while it waits.")
    message: str | None = Field(default=None, description="What became of it, in a sentence.")


@dataclass(frozen=True)
class Approval:
    """One ChangeApproval as the operator reads it."""

    name: str
    uid: str
    target_kind: str
    target: ObjectKey
    digest: str
    approved_by: str | None
    phase: ApprovalPhase | None
    message: str | None

    @staticmethod
    def of(body: Mapping[str, Any]) -> Approval | None:
        """None for an approval the schema would not have let in (an older CRD): it approves nothing."""
        try:
            spec = ChangeApprovalSpec.model_validate(body.get("spec") or {})
            status = ChangeApprovalStatus.model_validate(body.get("status") or {})
        except ValidationError:
            return None
        meta = body["metadata"]
        return Approval(
            name=meta["name"],
            uid=meta["uid"],
            target_kind=spec.target.kind,
            target=ObjectKey(meta["namespace"], spec.target.name),
            digest=spec.plan_digest,
            approved_by=spec.approved_by,
            phase=status.phase,
            message=status.message,
        )


def plan_lines(changes: Sequence[Change]) -> list[str]:
    return [change.summary() for change in changes]


def plan_digest(uid: str, generation: int, items: Sequence[str]) -> str:
    """The digest of a plan: the same object, generation and changes give the same digest."""
    text = "\n".join((uid, str(generation), *items))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def change_digest(uid: str, generation: int, changes: Sequence[Change]) -> str:
    """Every change's type, summary and old and new values, so that any change on the service shows."""
    items = [
        f"{type(change).__name__}: {change.summary()} | "
        + "; ".join(f"{d.field}: {d.actual} -> {d.desired}" for d in change.drift())
        for change in changes
    ]
    return plan_digest(uid, generation, items)


def approval_required(
    namespace: str,
    spec: CommonSpec,
    status: CommonStatus,
    policy: KindPolicy,
    *,
    generation: int,
    spec_applied: bool,
    destructive: Sequence[str],
) -> str | None:
    """Why a pass with changes (`destructive`: why each destructive one is) must wait for an approval; None
    when it may go on."""
    if destructive and policy.destructive_changes_need_approval:
        return f"{destructive[0]} cannot be undone, and the tenancy policy requires approval of such changes"
    if namespace in policy.manual_approval_namespaces:
        why = f"the tenancy policy requires approval of every change in namespace {namespace}"
    elif spec.approval is ApprovalMode.MANUAL:
        why = "spec.approval is Manual"
    else:
        return None
    last = status.last_approval
    if last is not None and last.generation == generation and not spec_applied:
        return None  # a later step of a rollout approved at this generation (an index migration's catch-up)
    return why


def usable(approvals: Sequence[Approval], digest: str) -> Approval | None:
    """The approval of exactly this plan, by a user the admission policy named."""
    return next((a for a in approvals if a.digest == digest and a.approved_by), None)


def stale(approvals: Sequence[Approval], digest: str) -> list[Approval]:
    """Approvals of an earlier plan that were never applied."""
    return [a for a in approvals if a.digest != digest and a.phase is not ApprovalPhase.APPLIED]


CRD = CrdInfo(
    resource=CHANGE_APPROVAL,
    singular="changeapproval",
    short_names=("cha",),
    categories=("infometis",),
    spec_model=ChangeApprovalSpec,
    status_model=ChangeApprovalStatus,
    description=(
        "Approves one plan of one object (its status.plan.digest): the operator applies that plan, and only "
        "that one. Created by a holder of the infometis-change-approver role; spec.approvedBy is set by admission."
    ),
    printer_columns=(
        PrinterColumn("Kind", "string", ".spec.target.kind"),
        PrinterColumn("Target", "string", ".spec.target.name"),
        PrinterColumn("Plan", "string", ".spec.planDigest"),
        PrinterColumn("Approved By", "string", ".spec.approvedBy"),
        PrinterColumn("Phase", "string", ".status.phase"),
        PrinterColumn("Age", "date", ".metadata.creationTimestamp"),
    ),
    root_validations=(
        {"rule": "self.spec == oldSelf.spec", "message": "a ChangeApproval cannot be changed; create another"},
    ),
)
