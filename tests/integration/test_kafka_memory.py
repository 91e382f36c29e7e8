"""Observing a topic leaves nothing of it behind, on the real brokers.

confluent-kafka 2.16.1 leaks each described topic's id (a Uuid object) in its C
code: one object per topic per resync, for as long as the operator runs. The
operator gives the leaked reference back (release_leaked_topic_id); here the
objects are counted around many observations through the operator's own edge.
"""

from __future__ import annotations

import gc

from confluent_kafka import Uuid
from confluent_kafka.admin import AdminClient, NewTopic

from controllers.kafkatopic.admin import KafkaAdmin
from tests.integration.helpers import unique

OBSERVATIONS = 50


def topic_ids_in_memory() -> int:
    gc.collect()
    return sum(1 for held in gc.get_objects() if isinstance(held, Uuid))


async def test_observing_a_topic_again_and_again_keeps_no_object_of_it(
    operator_kafka_admin: KafkaAdmin, kafka_admin: AdminClient
) -> None:
    admin = operator_kafka_admin
    name = unique("memory")
    kafka_admin.create_topics([NewTopic(name, 1, 1)])[name].result(timeout=30)
    try:
        first = await admin.observe(name, frozenset({"retention.ms"}))  # clients made, cluster facts cached
        assert first.topic is not None
        before = topic_ids_in_memory()
        for _ in range(OBSERVATIONS):
            observation = await admin.observe(name, frozenset({"retention.ms"}))
            assert observation.topic is not None and observation.topic.topic_id == first.topic.topic_id
        assert topic_ids_in_memory() == before
    finally:
        kafka_admin.delete_topics([name])[name].exception(timeout=30)
