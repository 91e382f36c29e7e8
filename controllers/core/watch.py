"""kopf wiring, the same for every kind: each watch event goes to the kind's controller.

Only `on.event` is used: kopf's change-detection handlers would store their
progress and a diff base in annotations, which is a write on every change and
breaks "a no-op resync writes nothing". The controller decides what needs work.
"""

from __future__ import annotations

from typing import Any

import kopf

from controllers.core.controller import Controller


def watch(registry: kopf.OperatorRegistry, controller: Controller[Any, Any]) -> None:
    resource = controller.kind.resource

    @kopf.on.event(resource.group, resource.version, resource.plural, registry=registry, id=resource.plural)
    async def on_event(event: kopf.RawEvent, **_: Any) -> None:
        controller.on_watch_event(event.get("type"), event["object"])
