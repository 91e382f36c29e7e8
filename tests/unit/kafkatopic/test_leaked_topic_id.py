"""A topic id nobody leaked is left alone (the leak itself is counted on real brokers in
tests/integration/test_kafka_memory.py)."""

from __future__ import annotations

import sys

from confluent_kafka import Uuid
from confluent_kafka.admin import TopicDescription

from controllers.kafkatopic.admin import release_leaked_topic_id


def test_a_description_made_without_a_leak_keeps_every_reference_of_its_topic_id() -> None:
    description = TopicDescription("orders", Uuid(1, 2), False, [])
    references = sys.getrefcount(description.topic_id)
    release_leaked_topic_id(description)
    release_leaked_topic_id(description)
    after = sys.getrefcount(description.topic_id)  # counted outside the assert, which holds values of its own
    assert after == references
    assert str(description.topic_id) == str(Uuid(1, 2))
