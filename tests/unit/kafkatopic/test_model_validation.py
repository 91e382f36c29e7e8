"""The spec refuses what Kafka would misread or what no object may touch, even if admission was bypassed."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from controllers.kafkatopic.model import KafkaTopicSpec


@pytest.mark.parametrize("key", ["retention.ms\u0000", "retention.ms ", "retention ms", "", "a" * 256])
def test_config_keys_that_are_not_kafka_config_names_are_refused(key: str) -> None:
    with pytest.raises(ValidationError, match="Kafka config names"):
        KafkaTopicSpec(partitions=1, replication_factor=1, config={key: "1000"})


@pytest.mark.parametrize("name", ["__consumer_offsets", "__transaction_state", "__anything"])
def test_internal_topic_names_are_refused(name: str) -> None:
    with pytest.raises(ValidationError, match="internal topic"):
        KafkaTopicSpec(topic_name=name, partitions=1, replication_factor=1)
