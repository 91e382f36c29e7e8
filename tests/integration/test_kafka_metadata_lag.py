"""Kafka's controller, not a broker's copy of the metadata, says whether a topic exists.

At 10,000 new topics a broker behind the controller answered a describe of topics
created seconds before as unknown, and the operator took them for deleted (the
unit tests in tests/unit/kafkatopic/test_broker_lag.py follow what it does then).
Here the question it asks instead, on the real brokers.
"""

from __future__ import annotations

from confluent_kafka.admin import AdminClient, NewTopic

from controllers.kafkatopic.admin import KafkaAdmin
from tests.integration.helpers import unique


async def test_the_controller_says_whether_a_topic_exists_and_the_question_creates_nothing(
    operator_kafka_admin: KafkaAdmin, kafka_admin: AdminClient
) -> None:
    name = unique("lag")
    try:
        assert not await operator_kafka_admin.known_to_controller(name)
        assert name not in kafka_admin.list_topics(timeout=15).topics  # asking validated a creation, made none
        kafka_admin.create_topics([NewTopic(name, 1, 1)])[name].result(timeout=30)
        assert await operator_kafka_admin.known_to_controller(name)
    finally:
        kafka_admin.delete_topics([name])[name].exception(timeout=30)
