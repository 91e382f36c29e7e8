"""Automatic rollback, on the core's toy service (tests/unit/core/test_controller.py): a change the service
takes and then shows broken goes back, and the same spec is not tried again until asked.

The same on the real servers, per kind, in tests/integration/test_rollback.py.
"""

from __future__ import annotations

from controllers.core.controller import RECONCILE_REQUEST_ANNOTATION
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


async def test_what_cannot_be_undone_is_said_not_hidden() -> None:
    service = ToyService()
    kube = RecordingKube()
    controller = controller_with(WidgetKind(service), kube)
    controller.on_watch_event(None, widget("a", value="poison"))  # created as poison: there is no before
    await reconcile(controller, kube, KEY)

    assert service.values["a"] == "poison"
    assert kube.reasons() == ["Created", "RollbackIncomplete", "Poisoned"]
    message = controller._store[KEY]["status"]["conditions"][0]["message"]
    assert message.endswith("Not undone: created with value poison (a widget just made is kept).")


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
