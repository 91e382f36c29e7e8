"""A Kafka client that never answers fails its call at the operator's own deadline instead of holding it.

librdkafka and kafka-python are asked to end every request within REQUEST_TIMEOUT_SECONDS, and the
operator waits for them at most CLIENT_DEADLINE_SECONDS: a client whose I/O thread is wedged must cost
one failed, retried call, not the batch it is in and every object behind it for good. The wedged
clients here are stand-ins for the libraries' objects, since a real one cannot be made to wedge on
purpose; each blocks exactly as the library's own call does (a future never completed, a thread
waiting on an event that only closing the client sets).
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import Future
from typing import Any

import pytest

from controllers.core.connections import Connection
from controllers.kafkatopic import admin as admin_module
from controllers.kafkatopic.admin import KafkaAdmin, KafkaUnavailable
from controllers.kafkatopic.connection import KAFKA_CONNECTION
from controllers.kafkatopic.plan import CreateTopic

DEADLINE_SECONDS = 0.2


class SilentLibrdkafka:
    """confluent-kafka's AdminClient, if its background thread never completed a request's futures."""

    def __init__(self) -> None:
        self.requests = 0

    def describe_topics(self, topics: Any, request_timeout: float) -> dict[str, Future[Any]]:
        self.requests += 1
        return {name: Future() for name in topics.topic_names}

    def describe_cluster(self, request_timeout: float) -> Future[Any]:
        self.requests += 1
        return Future()

    def create_topics(self, topics: list[Any], **_: Any) -> dict[str, Future[Any]]:
        self.requests += 1
        return {topic.topic: Future() for topic in topics}


class WedgedKafkaPython:
    """kafka-python's KafkaAdminClient with its I/O thread wedged: a call's thread waits until close()."""

    def __init__(self) -> None:
        self.closed = threading.Event()

    def list_partition_reassignments(self) -> Any:
        self.closed.wait()
        raise ConnectionError("Event loop stopped")  # what kafka-python's close tells the threads waiting

    def close(self) -> None:
        self.closed.set()


@pytest.fixture
def admin(unreachable: str, monkeypatch: pytest.MonkeyPatch) -> KafkaAdmin:
    monkeypatch.setattr(admin_module, "CLIENT_DEADLINE_SECONDS", DEADLINE_SECONDS)
    return KafkaAdmin(Connection("default", {"bootstrap.servers": unreachable}, KAFKA_CONNECTION.secret), linger=0.0)


async def test_a_request_librdkafka_never_answers_fails_at_the_deadline_and_the_next_one_is_sent(
    admin: KafkaAdmin,
) -> None:
    silent = SilentLibrdkafka()
    admin._client = silent  # type: ignore[assignment]
    for _ in range(2):  # the first failure must not hold the cluster facts' lock or the batch for the second
        started = time.monotonic()
        with pytest.raises(KafkaUnavailable, match="no answer within"):
            await asyncio.wait_for(admin.observe("orders", frozenset()), 5)
        assert time.monotonic() - started < 2
    assert silent.requests == 4  # each observe: one DescribeTopics and one DescribeCluster


async def test_a_creation_librdkafka_never_answers_fails_at_the_deadline(admin: KafkaAdmin) -> None:
    admin._client = SilentLibrdkafka()  # type: ignore[assignment]
    with pytest.raises(KafkaUnavailable, match="no answer within"):
        await asyncio.wait_for(
            admin.create(CreateTopic(name="orders", partitions=1, replication_factor=1, config=())), 5
        )
    assert await asyncio.wait_for(admin.known_to_controller("orders"), 5) is False


async def test_a_wedged_kafka_python_client_is_closed_at_the_deadline_and_a_new_one_made_next_time(
    admin: KafkaAdmin,
) -> None:
    wedged = WedgedKafkaPython()
    admin._kafka_python = wedged
    with pytest.raises(KafkaUnavailable, match="no answer within"):
        await asyncio.wait_for(admin.partitions_being_reassigned("orders"), 5)
    assert wedged.closed.wait(5), "the wedged client was not closed: its waiting thread would never end"
    assert admin._kafka_python is None


async def test_callers_queued_behind_an_unanswered_request_fail_at_their_own_deadline_not_in_turn(
    admin: KafkaAdmin,
) -> None:
    """Twenty batches wait for the cluster facts one DescribeCluster is fetching: each fails once its own
    deadline is over, not one deadline after the one before (twenty deadlines, 4 s here)."""
    admin._client = SilentLibrdkafka()  # type: ignore[assignment]
    started = time.monotonic()
    callers = []
    for n in range(20):  # one at a time, so that each goes out in a batch of its own
        callers.append(asyncio.ensure_future(admin.observe(f"topic-{n}", frozenset())))
        await asyncio.sleep(0.001)
    results = await asyncio.wait_for(asyncio.gather(*callers, return_exceptions=True), 10)
    assert all(isinstance(result, KafkaUnavailable) for result in results), results
    assert time.monotonic() - started < 2
