"""Automatic rollback, on the core's toy service (tests/unit/core/test_controller.py): a change the service
takes and then shows broken goes back, and the same spec is not tried again until asked.

The same on the real servers, per kind, in tests/integration/test_rollback.py.
"""

from __future__ import annotations

import asyncio
from typing import Any

from controllers.core.controller import RECONCILE_REQUEST_ANNOTATION
from controllers.core.revisions import HISTORY, ROLLBACK_ANNOTATION
from tests.unit.core.test_controller import (
    KEY,
    RecordingKube,
    SetValue,
    ToyService,
    WidgetKind,
    controller_with,
    ready_reason,
    reconcile,
    widget,
)


async def test_a_change_the_service_shows_broken_is_rolled_back_and_both_are_said() -> None:
    service = ToyService(values={"a": "v1"})
    kube = RecordingKube()
    controller = controller_with(WidgetKind(service), kube)
    controller.on_watch_event(None, widget("a", value="poison"))
    await reconcile(controller, kube, KEY)

    assert service.values["a"] == "v1"
    assert service.writes == 2  # the change, and its undo
    assert ready_reason(controller, KEY) == ("False", "Poisoned")
    status = controller._store[KEY]["status"]
    message = status["conditions"][0]["message"]
    assert message == (
        "The widget cannot work with value poison. Rolled back to the state before this change: value poison -> v1."
    )
    assert status["rolledBackGeneration"] == 1
    assert kube.reasons() == ["Adopted", "Updated", "RolledBack", "Poisoned"]


async def test_a_rolled_back_generation_is_not_tried_again_until_a_reconcile_is_requested() -> None:
    service = ToyService(values={"a": "v1"})
    kube = RecordingKube()
    controller = controller_with(WidgetKind(service), kube)
    controller.on_watch_event(None, widget("a", value="poison"))
    await reconcile(controller, kube, KEY)
    await reconcile(controller, kube, KEY)
    await reconcile(controller, kube, KEY)
    assert service.writes == 2  # no flapping between the new value and the old

    annotations = controller._store[KEY]["metadata"].setdefault("annotations", {})
    annotations[RECONCILE_REQUEST_ANNOTATION] = "now"
    await reconcile(controller, kube, KEY)
    assert service.writes == 4


async def test_a_breakage_after_changes_that_cannot_be_undone_is_a_plain_stall_tried_again() -> None:
    """Nothing to put back (a widget just made): no rollback is claimed, and the next pass tries again (a
    migration step that broke is stopped by the migration's own next step)."""
    service = ToyService()
    kube = RecordingKube()
    controller = controller_with(WidgetKind(service), kube)
    controller.on_watch_event(None, widget("a", value="poison"))
    await reconcile(controller, kube, KEY)

    assert service.values["a"] == "poison"
    assert kube.reasons() == ["Created", "Poisoned"]
    assert "rolledBackGeneration" not in controller._store[KEY]["status"]
    assert not controller._stalled_until_new_generation(controller._store[KEY], None)


async def test_a_change_that_works_is_not_rolled_back() -> None:
    service = ToyService(values={"a": "v1"})
    kube = RecordingKube()
    controller = controller_with(WidgetKind(service), kube)
    controller.on_watch_event(None, widget("a", value="v2"))
    await reconcile(controller, kube, KEY)
    assert service.values["a"] == "v2" and service.writes == 1
    assert "rolledBackGeneration" not in controller._store[KEY]["status"]


def test_an_undo_returns_to_the_value_before() -> None:
    assert SetValue("a", "v1", "v2").undo() == SetValue("a", "v2", "v1")


# --- on request: the history of applied specs, and going back to one ------------------------------------


def next_generation(controller: Any, value: str) -> None:
    """The spec changed, as the watch brings it."""
    held = controller._store[KEY]
    meta = held["metadata"]
    changed = widget("a", generation=meta["generation"] + 1, version=int(meta["resourceVersion"]) + 1, value=value)
    changed["status"] = dict(held["status"])
    changed["metadata"]["annotations"] = dict(meta.get("annotations") or {})
    controller.on_watch_event("MODIFIED", changed)


def request_revision(controller: Any, revision: str | None) -> None:
    annotations = controller._store[KEY]["metadata"].setdefault("annotations", {})
    if revision is None:
        annotations.pop(ROLLBACK_ANNOTATION, None)
    else:
        annotations[ROLLBACK_ANNOTATION] = revision


async def applied_twice() -> tuple[ToyService, RecordingKube, Any]:
    service = ToyService()
    kube = RecordingKube()
    controller = controller_with(WidgetKind(service), kube)
    controller.on_watch_event(None, widget("a", value="v1"))
    await reconcile(controller, kube, KEY)
    next_generation(controller, "v2")
    await reconcile(controller, kube, KEY)
    return service, kube, controller


async def test_a_spec_replaced_after_it_was_applied_is_recorded_as_a_revision_owned_by_the_object() -> None:
    _, kube, controller = await applied_twice()
    await reconcile(controller, kube, KEY)  # a no-op resync records nothing
    assert sorted(kube.revisions) == ["a-widget-1"]  # the current spec is recorded once it is replaced
    first = kube.revisions["a-widget-1"]
    assert first["revision"] == 1 and first["data"] == {"spec": {"value": "v1"}}
    assert first["metadata"]["ownerReferences"][0]["uid"] == "uid-a"


async def test_creating_objects_records_nothing() -> None:
    kube = RecordingKube()
    controller = controller_with(WidgetKind(ToyService()), kube)
    controller.on_watch_event(None, widget("a", value="v1"))
    await reconcile(controller, kube, KEY)
    assert kube.revisions == {}


async def test_deleting_an_object_records_nothing() -> None:
    """The API server bumps a custom resource's generation when its deletion starts; the spec did not change,
    so nothing joins the history (a namespace being deleted refuses every new object, the revision too)."""
    _, kube, controller = await applied_twice()
    kube.revisions.clear()
    held = controller._store[KEY]
    deleting = widget("a", generation=held["metadata"]["generation"] + 1, version=99, value="v2")
    deleting["status"] = dict(held["status"])
    deleting["metadata"]["deletionTimestamp"] = "2026-11-28T09:00:00Z"
    controller.on_watch_event("MODIFIED", deleting)
    await asyncio.gather(*controller._tasks)
    assert kube.revisions == {}


async def test_a_spec_replaced_before_it_was_applied_is_not_recorded() -> None:
    service = ToyService(down=True)
    kube = RecordingKube()
    controller = controller_with(WidgetKind(service), kube)
    controller.on_watch_event(None, widget("a", value="v1"))
    await reconcile(controller, kube, KEY)
    next_generation(controller, "v2")
    await reconcile(controller, kube, KEY)
    assert kube.revisions == {}


async def test_a_revision_that_could_not_be_recorded_is_recorded_at_the_next_pass() -> None:
    service = ToyService()
    kube = RecordingKube()
    controller = controller_with(WidgetKind(service), kube)
    controller.on_watch_event(None, widget("a", value="v1"))
    await reconcile(controller, kube, KEY)
    kube.fail_revisions = True
    next_generation(controller, "v2")
    await reconcile(controller, kube, KEY)
    assert kube.revisions == {} and ready_reason(controller, KEY) == ("True", "Succeeded")
    kube.fail_revisions = False
    writes = len(kube.statuses)
    await reconcile(controller, kube, KEY)
    assert sorted(kube.revisions) == ["a-widget-1"] and len(kube.statuses) == writes


async def test_only_the_last_revisions_are_kept() -> None:
    service = ToyService()
    kube = RecordingKube()
    controller = controller_with(WidgetKind(service), kube)
    controller.on_watch_event(None, widget("a", value="v1"))
    await reconcile(controller, kube, KEY)
    for generation in range(2, HISTORY + 4):
        next_generation(controller, f"v{generation}")
        await reconcile(controller, kube, KEY)
    # Generations 1 to HISTORY + 2 were replaced; the last HISTORY of them are kept.
    assert sorted(r["revision"] for r in kube.revisions.values()) == list(range(3, HISTORY + 3))


async def test_a_requested_revision_is_applied_and_shown_until_the_request_goes() -> None:
    service, kube, controller = await applied_twice()
    request_revision(controller, "1")
    assert controller._needs_reconcile(controller._store[KEY])
    await reconcile(controller, kube, KEY)

    assert service.values["a"] == "v1"
    assert ready_reason(controller, KEY) == ("True", "RolledBackToRevision")
    status = controller._store[KEY]["status"]
    assert status["rolledBackTo"] == 1 and status["lastAppliedGeneration"] == 2
    assert kube.reasons()[-2:] == ["Updated", "RolledBackToRevision"]
    assert not controller._needs_reconcile(controller._store[KEY])

    service.values["a"] = "changed outside"  # drift from the revision served is corrected to it
    await reconcile(controller, kube, KEY)
    assert service.values["a"] == "v1"

    request_revision(controller, None)
    await reconcile(controller, kube, KEY)
    assert service.values["a"] == "v2"
    assert ready_reason(controller, KEY) == ("True", "Succeeded")
    assert "rolledBackTo" not in controller._store[KEY]["status"]


async def test_a_revision_not_recorded_changes_nothing_and_names_those_that_are() -> None:
    service, kube, controller = await applied_twice()
    request_revision(controller, "7")
    await reconcile(controller, kube, KEY)
    assert service.values["a"] == "v2"
    assert ready_reason(controller, KEY) == ("False", "RevisionNotFound")
    assert "(recorded: 1)" in controller._store[KEY]["status"]["conditions"][0]["message"]
