"""kopf wiring, the same for every kind: each watch event goes to the kind's controller.

Only `on.event` is used: kopf's change-detection handlers would store their
progress and a diff base in annotations, which is a write on every change and
breaks "a no-op resync writes nothing". The controller decides what needs work.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, cast

import kopf

from controllers.core.approval import CHANGE_APPROVAL
from controllers.core.controller import Controller


def watch(registry: kopf.OperatorRegistry, controller: Controller[Any, Any]) -> None:
    resource = controller.kind.resource

    @kopf.on.event(resource.group, resource.version, resource.plural, registry=registry, id=resource.plural)
    async def on_event(event: kopf.RawEvent, **_: Any) -> None:
        controller.on_watch_event(event.get("type"), event["object"])


def watch_approvals(registry: kopf.OperatorRegistry, controllers: Sequence[Controller[Any, Any]]) -> None:
    """ChangeApprovals go to the controller of the kind they name; those naming a kind not run here, nowhere."""
    by_kind = {controller.kind.resource.kind: controller for controller in controllers}
    resource = CHANGE_APPROVAL

    @kopf.on.event(resource.group, resource.version, resource.plural, registry=registry, id=resource.plural)
    async def on_event(event: kopf.RawEvent, **_: Any) -> None:
        body = event["object"]
        controller = by_kind.get(str(((body.get("spec") or {}).get("target") or {}).get("kind")))
        if controller is not None:
            controller.on_approval_event(event.get("type"), body)


class NoDiffBase(kopf.DiffBaseStorage):
    """No diff base: kopf builds one (a deep copy of the object) on every watch event for change-detection
    handlers, which are not used here. Measured: about 7 % of the operator's CPU while creating topics."""

    def build(self, *, body: kopf.Body, extra_fields: Iterable[Any] | None = None) -> kopf.BodyEssence:
        return cast(kopf.BodyEssence, {})

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        pass
