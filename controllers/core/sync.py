"""The reconcile every kind shares: the seed design's reconciler (desired state, actual state, apply).

For one object: reach its service, observe the resource, settle who owns it,
plan, then either report the difference (driftPolicy: Report, once the spec
was applied) or apply it, verify that the service shows it, and say what came
of it in an Outcome. The kind supplies the service-specific steps (see
controllers.core.kind); the words of the Events and the rules for ownership,
adoption and drift live here, once.

Events a pass is about to earn are written into the status before the service
is changed (`pendingEvents`) and each carries a stable id: a pass cut short
(a crash, a failed status write) announces them on the next pass, exactly
once, and a resource the operator created is never reported as adopted.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from controllers.core.approval import (
    APPROVAL_STALE,
    APPROVED,
    AWAITING_APPROVAL,
    CHANGE_APPROVAL,
    Approval,
    ApprovalPhase,
    approval_required,
    change_digest,
    plan_digest,
    plan_lines,
    stale,
    usable,
)
from controllers.core.claims import RESOURCE_CONFLICT, owner_other_than
from controllers.core.connections import ClusterRefInvalid, ConnectionSecretMissing
from controllers.core.kind import Change, Kind, ReconcileRequest, SpecT, StatusT
from controllers.core.kube import KubeError
from controllers.core.model import DriftPolicy
from controllers.core.outcome import (
    CLUSTER_REF_INVALID,
    DRIFT_CORRECTED,
    RETAINED,
    EventNote,
    KindCondition,
    Outcome,
    Phase,
)
from controllers.core.policy import NOT_PERMITTED
from controllers.core.tasks import settle

CREATED = "Created"
ADOPTED = "Adopted"
UPDATED = "Updated"
DELETED = "Deleted"
ROLLED_BACK = "RolledBack"
ROLLBACK_INCOMPLETE = "RollbackIncomplete"

# Services show a change a moment after accepting it (Kafka brokers learn from
# the controller); the check after applying waits for that rather than writing
# "in progress" and costing a second status write. Usually a few milliseconds
# suffice, so the first checks come quickly: about 1.4 s in all.
VERIFY_DELAYS_SECONDS = (0.01, 0.03, 0.1, 0.25, 0.5, 0.5)


def event_id(uid: str, *parts: object) -> str:
    """A stable id for an Event: the same change announced twice is one Event."""
    return hashlib.sha256("/".join((uid, *map(str, parts))).encode()).hexdigest()[:16]


async def sync(kind: Kind[SpecT, StatusT], request: ReconcileRequest[SpecT, StatusT]) -> Outcome:
    """Observe, plan and apply one object; every failure ends as an Outcome."""
    name = kind.claim(request.body)
    try:
        client = await kind.client(request.key.namespace, request.spec, fresh=False)
    except ClusterRefInvalid as error:
        return Outcome.stalled(CLUSTER_REF_INVALID, f"{error}.", kind.facts(request, None, None))
    except KubeError as error:
        return Outcome.retrying(f"Could not read the clusterRef Secret: {error}")
    try:
        return await _sync(kind, request, name, client)
    except ClusterRefInvalid as error:
        return Outcome.stalled(CLUSTER_REF_INVALID, f"{error}.", kind.facts(request, None, None))
    except kind.service_errors as error:
        return kind.failure(client, name, None, error)
    except KubeError as error:
        # A ConfigMap or Secret the spec refers to, read while the API server is away.
        return Outcome.retrying(f"A read from the Kubernetes API failed: {error}")


async def _sync(
    kind: Kind[SpecT, StatusT], request: ReconcileRequest[SpecT, StatusT], name: str, client: Any
) -> Outcome:
    observation = await kind.observe(client, request, applied=())
    references = kind.references_version(observation)
    if request.spec_applied and references != request.status.last_applied_references:
        # A referenced ConfigMap or Secret changed: the spec did, though its generation did not.
        request = replace(request, spec_applied=False)
    plan = kind.plan(request, observation)
    facts = _facts(kind, request, observation, plan)
    owner = owner_other_than(request.body, request.peers, observation.instance)
    if owner is not None:
        return Outcome.stalled(
            RESOURCE_CONFLICT,
            f"{kind.noun.capitalize()} '{name}' on {observation.instance} is managed by {kind.resource.kind} "
            f"{owner}, which claimed it first; this one changes nothing while that one exists.",
            facts,
        )
    protected = kind.protected(observation)
    if protected is not None:
        return Outcome.stalled(NOT_PERMITTED, f"Not permitted: {kind.noun} '{name}' {protected}.", facts)

    # Events an earlier pass recorded before changing the service, for changes now done.
    events = _earlier_intent_done(request, observation, plan.changes)
    if plan.changes and request.spec_applied and request.spec.drift_policy is DriftPolicy.REPORT:
        drift = tuple(item for change in plan.changes for item in change.drift())
        fields = ", ".join(f"{d.field} (spec {d.desired}, actual {d.actual})" for d in drift)
        drifted = Outcome.drifted(
            f"{kind.noun.capitalize()} '{name}' was changed outside this object: {fields}; left as is "
            "(driftPolicy: Report).",
            drift,
            facts,
        )
        return replace(drifted, events=events, conditions=kind.conditions(observation))

    done: list[Change] = []
    failure: Outcome | None = None
    # A resource an earlier pass created (and recorded so before creating it) is not adopted.
    adopting = not any(entry.reason == CREATED for entry in request.status.pending_events)
    approval: Approval | None = None
    if plan.changes:
        gate = await _approval_gate(kind, request, name, plan.changes)
        if isinstance(gate, Outcome):
            return _with(gate, events, facts, kind.conditions(observation))
        approval, approved_note = gate
        intent = change_events(kind, request, name, observation, plan.changes, adopting=adopting)
        # Events an earlier pass earned but has not said yet stay recorded, so a crash now loses none.
        intent = [(note, frozenset[str]()) for note in events + approved_note] + intent
        recorded: dict[str, Any] = {"pendingEvents": [_intent_entry(note, fields) for note, fields in intent]}
        if approval is not None:
            recorded["lastApproval"] = {
                "name": approval.name,
                "digest": approval.digest,
                "approvedBy": approval.approved_by,
                "generation": request.body["metadata"]["generation"],
            }
        if not await request.record_intent(recorded):
            return Outcome.retrying(
                f"Could not record the changes about to be made to {kind.noun} '{name}' in the status; "
                "nothing was changed.",
            )
        events += approved_note
        if approval is not None and approval.phase is not ApprovalPhase.APPLIED:
            await request.settle_approval(
                approval, ApprovalPhase.APPLIED, f"Applied to {kind.resource.kind} {request.key.name}."
            )
        # Independent changes go out together; each joins its own batch in the client.
        results = await settle(*(kind.apply(client, change) for change in plan.changes))
        for change, result in zip(plan.changes, results, strict=True):
            if result is None:
                done.append(change)
            elif isinstance(result, ClusterRefInvalid):
                failure = failure or Outcome.stalled(CLUSTER_REF_INVALID, f"{result}.")
            elif isinstance(result, kind.service_errors):
                failure = failure or kind.failure(client, name, change, result)
            else:
                raise result  # a bug, not a service answer: the core's guard reports it
    said = change_events(kind, request, name, observation, done, adopting=adopting)
    events = _once_each(events + tuple(note for note, _ in said))
    blocked_before = plan.blocker is not None
    if plan.changes:
        try:
            observation = await _observe_until_shown(kind, client, request, done)
        except kind.service_errors as error:
            # What was applied is said even when the check after it fails.
            return _with(
                failure or kind.failure(client, name, None, error), events, facts, kind.conditions(observation)
            )
        plan = kind.plan(request, observation)
        facts = _facts(kind, request, observation, plan)
    undoable = any(not isinstance(change.undo(), str) for change in done)
    if failure is None and plan.blocker is not None and undoable and not blocked_before:
        # The service took the changes and now shows what they broke (a flow NiFi cannot run). Steps that
        # undo themselves (a migration stops itself at the next pass) are left to do so.
        failure = Outcome.stalled(plan.blocker.reason, plan.blocker.message)
    if failure is not None and failure.phase is Phase.STALLED and done:
        # Refused or broken halfway: what was done goes back where the service allows it.
        try:
            rolled_back, note, observation = await _roll_back(kind, client, request, name, done, failure)
        except kind.service_errors:
            return _with(failure, events, facts, kind.conditions(observation))
        facts = _facts(kind, request, observation, kind.plan(request, observation))
        if undoable:
            # Applying the same spec again would break the same way and be undone again: not until asked.
            facts["rolledBackGeneration"] = request.body["metadata"]["generation"]
        failure = replace(failure, message=f"{failure.message} {rolled_back}")
        return _with(failure, (*events, note), facts, kind.conditions(observation))
    if failure is not None:
        if not done:
            # Nothing changed: the intent stays recorded, so retrying the same refused change
            # (a refusal rechecked every resync) writes nothing new.
            facts = {key: value for key, value in facts.items() if key != "pendingEvents"}
        return _with(failure, events, facts, kind.conditions(observation))
    if plan.blocker is not None:
        return _with(
            Outcome.stalled(plan.blocker.reason, plan.blocker.message), events, facts, kind.conditions(observation)
        )
    if observation.resource_id is None or _unsettled(plan.changes):
        if observation.resource_id is None:
            # Made, and not shown yet (a replica behind the service's own record): its creation stays recorded,
            # so the pass that sees it says Created again (the same Event) and does not adopt what it made.
            creations = [_intent_entry(note, fields) for note, fields in said if note.reason == CREATED]
            facts["pendingEvents"] = creations or None
        waiting = Outcome.progressing(
            f"Waiting for the service to show the changes to {kind.noun} '{name}'.",
            {},
            1.0,
            unconfirmed_changes=bool(done),
        )
        return _with(waiting, events, facts, kind.conditions(observation))
    verdict = kind.verdict(request, observation, plan, applied=done)
    if verdict.phase is Phase.READY:
        facts["lastAppliedReferences"] = references  # as read when this pass planned what it applied
    return _with(verdict, events, facts, kind.conditions(observation))


async def _roll_back(
    kind: Kind[SpecT, StatusT],
    client: Any,
    request: ReconcileRequest[SpecT, StatusT],
    name: str,
    done: Sequence[Change],
    failure: Outcome,
) -> tuple[str, EventNote, Any]:
    """Undo the changes made, newest first, where the service allows it: what went back and what could not
    (a sentence and its Event), and the service as observed afterwards."""
    undos: list[Change] = []
    kept: list[str] = []
    for change in reversed(done):
        undo = change.undo()
        if isinstance(undo, str):
            kept.append(f"{change.summary()} ({undo})")
        else:
            undos.append(undo)
    results = await settle(*(kind.apply(client, undo) for undo in undos))
    reverted: list[str] = []
    for undo, result in zip(undos, results, strict=True):
        if result is None:
            reverted.append(undo.summary())
        elif isinstance(result, (ClusterRefInvalid, *kind.service_errors)):
            kept.append(f"{undo.summary()} (the service refused it: {result})")
        else:
            raise result
    observation = await kind.observe(client, request, applied=undos)
    parts = []
    if reverted:
        parts.append(f"Rolled back to the state before this change: {'; '.join(reverted)}.")
    if kept:
        parts.append(f"Not undone: {'; '.join(kept)}.")
    message = " ".join(parts)
    reason = ROLLBACK_INCOMPLETE if kept else ROLLED_BACK
    uid, generation = request.body["metadata"]["uid"], request.body["metadata"]["generation"]
    note = EventNote(
        reason,
        f"{kind.noun.capitalize()} '{name}' ({failure.reason}): {message}",
        warning=True,
        event_id=event_id(uid, reason, generation, message),
    )
    return message, note, observation


def _facts(
    kind: Kind[SpecT, StatusT], request: ReconcileRequest[SpecT, StatusT], observation: Any, plan: Any
) -> dict[str, Any]:
    facts = kind.facts(request, observation, plan)
    facts["clusterId"] = observation.instance
    facts["pendingEvents"] = None  # a pass that gets this far announces (or drops) what an intent recorded
    facts["plan"] = None  # shown only while it waits for an approval
    facts["rolledBackGeneration"] = None  # set only by a pass that rolled its changes back
    return facts


async def _approval_gate(
    kind: Kind[SpecT, StatusT], request: ReconcileRequest[SpecT, StatusT], name: str, changes: Sequence[Change]
) -> Outcome | tuple[Approval | None, tuple[EventNote, ...]]:
    """The approval these changes may go on under (None: they need none) and its Event, or the Outcome of
    waiting for one."""
    required = _required_approval(
        request,
        spec_applied=request.spec_applied,
        destructive=[why for change in changes if (why := change.destructive()) is not None],
    )
    if required is None:
        return None, ()
    generation = request.body["metadata"]["generation"]
    uid = request.body["metadata"]["uid"]
    lines = plan_lines(changes)
    return await _approved_or_waiting(kind, request, name, required, lines, change_digest(uid, generation, changes))


def _required_approval(
    request: ReconcileRequest[SpecT, StatusT], *, spec_applied: bool, destructive: list[str]
) -> str | None:
    """Why this object's changes wait for an approval (None: they need none)."""
    return approval_required(
        request.key.namespace,
        request.spec,
        request.status,
        request.policy,
        generation=request.body["metadata"]["generation"],
        spec_applied=spec_applied,
        destructive=destructive,
    )


async def _approved_or_waiting(
    kind: Kind[SpecT, StatusT],
    request: ReconcileRequest[SpecT, StatusT],
    name: str,
    required: str,
    lines: list[str],
    digest: str,
) -> Outcome | tuple[Approval, tuple[EventNote, ...]]:
    uid = request.body["metadata"]["uid"]
    what = "; ".join(lines)
    approval = usable(request.approvals, digest)
    if approval is not None:
        message = (
            f"Plan {digest} for {kind.noun} '{name}', approved by {approval.approved_by} (ChangeApproval "
            f"{approval.name}), is being applied: {what}."
        )
        return approval, (EventNote(APPROVED, message, event_id=event_id(uid, APPROVED, digest)),)
    outdated = stale(request.approvals, digest)
    for earlier in outdated:
        if earlier.phase is not ApprovalPhase.STALE:
            await request.settle_approval(
                earlier,
                ApprovalPhase.STALE,
                f"Not applied: the spec or the service changed after it was approved; the plan is now {digest}.",
            )
    how = (
        f"create a {CHANGE_APPROVAL.kind} naming {kind.resource.kind} {request.key.name} and planDigest {digest} "
        "(the infometis-change-approver role may)"
    )
    unsigned = next((a for a in request.approvals if a.digest == digest and not a.approved_by), None)
    if unsigned is not None:
        how = (
            f"{CHANGE_APPROVAL.kind} {unsigned.name} names no approver (spec.approvedBy), so it approves nothing: "
            f"the admission policies of config/kustomize/base/approval must be installed; then {how}"
        )
    message = f"Waiting for approval of plan {digest} ({required}): {what}. To approve it, {how}."
    reason = AWAITING_APPROVAL
    if outdated:
        reason = APPROVAL_STALE
        message = (
            f"{CHANGE_APPROVAL.kind} {outdated[0].name} approved plan {outdated[0].digest}, which is no longer the "
            f"plan: the spec or the service changed after it was approved, so it was not applied. {message}"
        )
    shown = request.status.plan
    # Said once per plan: a resync finding the same plan still waiting says nothing new.
    news = shown is None or shown.digest != digest
    plan = {"digest": digest, "changes": lines, "approvalRequiredBecause": required}
    return Outcome(
        Phase.PROGRESSING,
        reason,
        message,
        {"plan": plan},
        events=(EventNote(AWAITING_APPROVAL, message, event_id=event_id(uid, AWAITING_APPROVAL, digest)),)
        if news
        else (),
    )


def _with(
    outcome: Outcome, events: tuple[EventNote, ...], facts: Mapping[str, Any], conditions: tuple[KindCondition, ...]
) -> Outcome:
    return replace(
        outcome,
        events=events + outcome.events,
        facts={**facts, **outcome.facts},
        conditions=conditions + outcome.conditions,
    )


def _unsettled(changes: Sequence[Change]) -> bool:
    return any(not change.settles_later for change in changes)


async def _observe_until_shown(
    kind: Kind[SpecT, StatusT], client: Any, request: ReconcileRequest[SpecT, StatusT], applied: Sequence[Change]
) -> Any:
    for delay in VERIFY_DELAYS_SECONDS:
        observation = await kind.observe(client, request, applied=applied)
        if not _unsettled(kind.plan(request, observation).changes):
            break
        await asyncio.sleep(delay)
    return observation


def change_events(
    kind: Kind[SpecT, StatusT],
    request: ReconcileRequest[SpecT, StatusT],
    name: str,
    observation: Any,
    changes: Sequence[Change],
    *,
    adopting: bool,
) -> list[tuple[EventNote, frozenset[str]]]:
    """The Events these changes earn (and an adoption's), each with the fields of the changes it announces."""
    uid = request.body["metadata"]["uid"]
    generation = request.body["metadata"]["generation"]
    noun, title = kind.noun, kind.noun.capitalize()

    def note(
        reason: str, message: str, covers: Sequence[Change], *id_parts: object
    ) -> tuple[EventNote, frozenset[str]]:
        fields = frozenset(item.field for change in covers for item in change.drift())
        return EventNote(reason, message, event_id=event_id(uid, *(id_parts or (generation, message)))), fields

    if request.spec_applied:
        if not changes:
            return []
        what = "; ".join((f"the {noun} was missing and was " if c.creates else "") + c.summary() for c in changes)
        return [
            note(DRIFT_CORRECTED, f"Corrected changes made outside this object to {noun} '{name}': {what}.", changes)
        ]
    notes = []
    if adopting and observation.resource_id is not None and kind.recorded_id(request.status) is None:
        # Once per object and resource, however often the pass is repeated.
        message = f"Adopted the existing {noun} '{name}' (id {observation.resource_id})."
        notes.append(note(ADOPTED, message, (), ADOPTED, observation.resource_id))
    updates = []
    for change in changes:
        if change.creates:
            notes.append(note(CREATED, f"{title} '{name}' {change.summary()}.", (change,), CREATED))
        elif change.event_reason is not None:
            notes.append(note(change.event_reason, f"{title} '{name}': {change.summary()}.", (change,)))
        else:
            updates.append(change)
    if updates:
        notes.append(note(UPDATED, f"{title} '{name}': {'; '.join(c.summary() for c in updates)}.", updates))
    return notes


def _intent_entry(note: EventNote, fields: frozenset[str]) -> dict[str, Any]:
    return {"reason": note.reason, "message": note.message, "eventId": note.event_id, "fields": sorted(fields)}


def _earlier_intent_done(
    request: ReconcileRequest[Any, Any], observation: Any, changes: Sequence[Change]
) -> tuple[EventNote, ...]:
    """The Events recorded before an earlier pass changed the service, whose changes are now done.

    A creation is done when the resource exists; another change when its fields are
    no longer planned. A change still planned was not made (or does not show yet);
    its Event is left for the pass that makes it.
    """
    still_planned = {item.field for change in changes for item in change.drift()}

    def done(entry: Any) -> bool:
        if entry.reason == CREATED:
            return observation.resource_id is not None
        return not set(entry.fields) & still_planned

    return tuple(
        EventNote(entry.reason, entry.message, event_id=entry.event_id)
        for entry in request.status.pending_events
        if done(entry)
    )


def _once_each(events: Sequence[EventNote]) -> tuple[EventNote, ...]:
    seen: set[str | None] = set()
    unique = []
    for note in events:
        if note.event_id is None or note.event_id not in seen:
            seen.add(note.event_id)
            unique.append(note)
    return tuple(unique)


async def remove(kind: Kind[SpecT, StatusT], request: ReconcileRequest[SpecT, StatusT]) -> Outcome:
    """Delete the external resource (deletionPolicy: Delete); READY when the object may go."""
    name = kind.claim(request.body)
    uid = request.body["metadata"]["uid"]
    noun = kind.noun

    def retained(why: str, warning: bool) -> Outcome:
        note = EventNote(RETAINED, f"Left {noun} '{name}' in place: {why}.", warning)
        return Outcome.ready("", {}, (replace(note, event_id=event_id(uid, RETAINED)),))

    try:
        # Read the Secret now: one deleted a moment ago (its namespace going) must not lend its credentials.
        client = await kind.client(request.key.namespace, request.spec, fresh=True)
    except ConnectionSecretMissing as error:
        # Holding the finalizer would hang the deletion (a namespace's Secrets go first) for good.
        return retained(f"{error}, so it cannot be deleted", warning=True)
    except ClusterRefInvalid as error:
        return Outcome.stalled(
            CLUSTER_REF_INVALID,
            f"Cannot delete {noun} '{name}': {error}. Fix it, or set deletionPolicy: Retain to let this object go "
            f"without deleting the {noun}.",
        )
    except KubeError as error:
        return Outcome.retrying(f"Could not read the clusterRef Secret to delete {noun} '{name}': {error}")
    try:
        observation = await kind.observe(client, request, applied=())
        owner = owner_other_than(request.body, request.peers, observation.instance)
        if owner is not None:
            return retained(f"{kind.resource.kind} {owner} manages it", warning=False)
        protected = kind.protected(observation)
        if protected is not None:
            return retained(protected, warning=True)
        approval: Approval | None = None
        approved: tuple[EventNote, ...] = ()
        if observation.resource_id is not None:
            gate = await _deletion_gate(kind, request, name)
            if isinstance(gate, Outcome):
                return gate
            approval, approved = gate
        await kind.delete(client, request, observation)
    except kind.service_errors as error:
        failed = kind.failure(client, name, None, error)
        return replace(failed, message=f"Deleting {noun} '{name}' failed: {failed.message}")
    except KubeError as error:
        return Outcome.retrying(f"Deleting {noun} '{name}' waits for the Kubernetes API: {error}")
    if approval is not None:
        await request.settle_approval(approval, ApprovalPhase.APPLIED, f"Deleted {noun} '{name}'.")
    note = EventNote(DELETED, f"Deleted {noun} '{name}' (deletionPolicy: Delete).")
    return Outcome.ready("", {}, (*approved, replace(note, event_id=event_id(uid, DELETED))))


async def _deletion_gate(
    kind: Kind[SpecT, StatusT], request: ReconcileRequest[SpecT, StatusT], name: str
) -> Outcome | tuple[Approval | None, tuple[EventNote, ...]]:
    """A deletion is destructive: under the tenancy policy (or spec.approval: Manual) it waits for approval."""
    required = _required_approval(
        request,
        spec_applied=True,  # no rollout to continue: a deletion is approved on its own
        destructive=[f"deleting {kind.noun} '{name}'"],
    )
    if required is None:
        return None, ()
    generation = request.body["metadata"]["generation"]
    lines = [f"delete {kind.noun} '{name}' (deletionPolicy: Delete)"]
    digest = plan_digest(request.body["metadata"]["uid"], generation, ["Delete", *lines])
    return await _approved_or_waiting(kind, request, name, required, lines, digest)
