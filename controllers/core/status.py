"""The one place status and Events are derived from an Outcome (pure).

Conditions follow kstatus and Flux: Ready is always present; Reconciling and
Stalled are abnormal-true (present only while true, never both); Drifted
likewise. Every condition carries observedGeneration, and lastTransitionTime
moves only when that condition's status moves, so a reconcile that finds
nothing new produces a status equal to the previous one and nothing is
written.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from controllers.core.outcome import EventNote, Outcome, Phase

READY = "Ready"
RECONCILING = "Reconciling"
STALLED = "Stalled"
DRIFTED = "Drifted"

_READY_STATUS = {
    Phase.READY: "True",
    Phase.PROGRESSING: "False",
    Phase.RETRYING: "False",
    Phase.STALLED: "False",
    # A reported drift and a suspension are what the user asked for, so Flux,
    # Argo CD and `kubectl wait` must see them settled (kstatus Current), not
    # in progress until a timeout; the Drifted condition and the reason say why.
    Phase.DRIFTED: "True",
    Phase.SUSPENDED: "True",
    Phase.ROLLED_BACK: "True",
}


@dataclass(frozen=True)
class Summary:
    status: dict[str, Any]
    events: tuple[EventNote, ...]


CORE_CONDITIONS = frozenset({READY, RECONCILING, STALLED, DRIFTED})


def _conditions(outcome: Outcome) -> list[tuple[str, str, str, str]]:
    """(type, status, reason, message) of every core and kind condition this outcome sets."""
    conditions = [(READY, _READY_STATUS[outcome.phase], outcome.reason, outcome.message)]
    if outcome.phase in (Phase.PROGRESSING, Phase.RETRYING):
        conditions.append((RECONCILING, "True", outcome.reason, outcome.message))
    if outcome.phase is Phase.STALLED:
        conditions.append((STALLED, "True", outcome.reason, outcome.message))
    if outcome.phase is Phase.DRIFTED:
        conditions.append((DRIFTED, "True", outcome.reason, outcome.message))
    conditions.extend(
        (c.type, c.status, c.reason, c.message) for c in outcome.conditions if c.type not in CORE_CONDITIONS
    )
    return conditions


def summarize(
    previous: Mapping[str, Any],
    outcome: Outcome,
    *,
    generation: int,
    now: str,
    handled_reconcile_token: str | None,
) -> Summary:
    """The status to hold after this outcome, and the Events it is worth."""
    previous_conditions = {c["type"]: c for c in previous.get("conditions", [])}
    conditions = []
    for kind, truth, reason, message in _conditions(outcome):
        before = previous_conditions.get(kind)
        moved = before is None or before.get("status") != truth
        conditions.append(
            {
                "type": kind,
                "status": truth,
                "observedGeneration": generation,
                "lastTransitionTime": now if moved else before["lastTransitionTime"],  # type: ignore[index]
                "reason": reason,
                "message": message,
            }
        )
    # A kind's condition this outcome does not speak of (the service was not reached) stays as it was.
    given = {condition["type"] for condition in conditions}
    conditions.extend(
        condition
        for kind, condition in previous_conditions.items()
        if kind not in CORE_CONDITIONS and kind not in given
    )

    status: dict[str, Any] = dict(previous)
    for key, value in outcome.facts.items():
        if value is None:
            status.pop(key, None)
        else:
            status[key] = value
    status["observedGeneration"] = generation
    if outcome.phase is Phase.READY:
        # What drift is decided from: a difference found once this generation
        # was applied and confirmed was made outside the operator.
        status["lastAppliedGeneration"] = generation
    status["conditions"] = conditions
    if handled_reconcile_token is not None:
        status["lastHandledReconcileAt"] = handled_reconcile_token
    if outcome.phase is Phase.DRIFTED:
        status["drift"] = [item.model_dump(by_alias=True) for item in outcome.drift]
    else:
        status.pop("drift", None)

    return Summary(status=status, events=outcome.events + _transition_events(previous, outcome, status))


def _transition_events(
    previous: Mapping[str, Any], outcome: Outcome, status: Mapping[str, Any]
) -> tuple[EventNote, ...]:
    """One Event when the object's state changes; none while it stays the same."""
    before = next((c for c in previous.get("conditions", []) if c["type"] == READY), None)
    ready = status["conditions"][0]
    state_changed = before is None or (before["status"], before["reason"]) != (ready["status"], ready["reason"])
    if outcome.phase is Phase.DRIFTED:
        # A newly drifted field is news even when the object was drifted already.
        if state_changed or previous.get("drift") != status.get("drift"):
            return (EventNote(outcome.reason, outcome.message, warning=True),)
        return ()
    if not state_changed or outcome.phase is Phase.PROGRESSING:
        return ()
    if outcome.phase is Phase.READY:
        # Change Events already tell how it became ready; a bare recovery says so.
        return () if outcome.events or before is None else (EventNote(outcome.reason, outcome.message),)
    if outcome.phase in (Phase.SUSPENDED, Phase.ROLLED_BACK):
        return (EventNote(outcome.reason, outcome.message),)
    return (EventNote(outcome.reason, outcome.message, warning=True),)
