"""A change's Kafka requests and a resync's go over connections of their own.

A broker answers the requests of one connection in order: over a shared one, a
change's describe waited behind a resync's describe of hundreds of topics (the
figures are in docs/benchmarks.md). No server is needed: clients connect only
when a request is made.
"""

from __future__ import annotations

from controllers.core.batching import URGENT
from controllers.core.connections import Connection
from controllers.kafkatopic.admin import KafkaAdmin


def test_the_resync_lane_uses_a_librdkafka_client_of_its_own() -> None:
    admin = KafkaAdmin(Connection("default", {"bootstrap.servers": "127.0.0.1:1"}, frozenset()), linger=0.01)
    urgent = admin._client()
    token = URGENT.set(False)
    try:
        background = admin._client()
        assert admin._client() is background  # made once per lane
    finally:
        URGENT.reset(token)
    assert background is not urgent
    assert admin._client() is urgent
