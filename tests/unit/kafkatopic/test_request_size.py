"""Creations are split into requests Kafka's controller accepts (at most 10,000 metadata records each)."""

from __future__ import annotations

from controllers.kafkatopic.admin import MAX_RECORDS_PER_REQUEST, creation_records, record_bounded_chunks
from controllers.kafkatopic.plan import CreateTopic


def topic(name: str, partitions: int, config_keys: int = 1) -> CreateTopic:
    return CreateTopic(name, partitions, 1, tuple((f"key{i}", "1") for i in range(config_keys)))


def test_a_thousand_topics_of_twelve_partitions_go_in_requests_each_below_the_controllers_limit() -> None:
    changes = [topic(f"t{i}", 12) for i in range(1000)]  # 14,000 records: one request would be refused whole
    chunks = record_bounded_chunks(changes, creation_records)
    assert [change for chunk in chunks for change in chunk] == changes  # none lost, order kept
    assert len(chunks) == 3
    assert all(sum(map(creation_records, chunk)) <= MAX_RECORDS_PER_REQUEST for chunk in chunks)
    assert MAX_RECORDS_PER_REQUEST < 10_000


def test_small_creations_share_one_request() -> None:
    changes = [topic(f"t{i}", 1) for i in range(1000)]
    assert len(record_bounded_chunks(changes, creation_records)) == 1


def test_a_creation_larger_than_the_limit_goes_alone_for_kafka_to_answer() -> None:
    huge, small = topic("huge", 20_000), topic("small", 1)
    assert record_bounded_chunks([small, huge, small], creation_records) == [[small], [huge], [small]]
