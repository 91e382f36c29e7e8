"""kopf wiring for KafkaTopic: every watch event goes to the core controller.

Only `on.event` is used: kopf's change-detection handlers would store their
progress and a diff base in annotations, which is a write on every change and
breaks "a no-op resync writes nothing". The core decides what needs work.
"""

from __future__ import annotations

from typing import Any

import kopf

from controllers.core.controller import Controller
from controllers.kafkatopic.model import RESOURCE, KafkaTopicSpec


def register(registry: kopf.OperatorRegistry, controller: Controller[KafkaTopicSpec]) -> None:
    @kopf.on.event(RESOURCE.group, RESOURCE.version, RESOURCE.plural, registry=registry)
    async def kafka_topic_event(event: kopf.RawEvent, **_: Any) -> None:
        controller.on_watch_event(event.get("type"), event["object"])
