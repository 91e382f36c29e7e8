"""kafka-python's admin client (replication-factor changes) never stalls the operator or leaks threads.

Its constructor connects and waits for the cluster; against an unreachable
address it waits out the whole bootstrap timeout. No server is needed: the
`unreachable` loopback port refuses every connection.
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from kafka.errors import ClusterAuthorizationFailedError

from controllers.core.connections import Connection
from controllers.kafkatopic import admin as admin_module
from controllers.kafkatopic.admin import KafkaAdmin, KafkaRefused, KafkaUnavailable
from controllers.kafkatopic.connection import KAFKA_CONNECTION
from controllers.kafkatopic.plan import ReassignReplicas

TIMEOUT_SECONDS = 0.5  # the admin's request (and bootstrap) timeout, shortened so a failed call ends quickly


@pytest.fixture
def admin(unreachable: str, monkeypatch: pytest.MonkeyPatch) -> KafkaAdmin:
    monkeypatch.setattr(admin_module, "REQUEST_TIMEOUT_SECONDS", TIMEOUT_SECONDS)
    return KafkaAdmin(Connection("default", {"bootstrap.servers": unreachable}, KAFKA_CONNECTION.secret), linger=0.0)


def kafka_python_io_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("kafka-io-")]  # kafka-python names them so


async def test_a_reassignment_against_an_unreachable_cluster_leaves_the_event_loop_responsive(
    admin: KafkaAdmin,
) -> None:
    worst_gap = 0.0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal worst_gap
        last = time.monotonic()
        while not done.is_set():
            await asyncio.sleep(0.01)
            worst_gap = max(worst_gap, time.monotonic() - last)
            last = time.monotonic()

    ticking = asyncio.create_task(ticker())
    started = time.monotonic()
    with pytest.raises(KafkaUnavailable):
        await admin.reassign(ReassignReplicas(name="orders", assignment=((0, (1, 2)),), current=1, desired=2))
    took = time.monotonic() - started
    done.set()
    await ticking
    # The ticker sleeps 10 ms at a time; a gap near the call's length means the loop waited for it.
    assert worst_gap < TIMEOUT_SECONDS / 5, f"the event loop stood still for {worst_gap:.2f}s of the {took:.2f}s call"


async def test_failed_reassignment_clients_leave_no_threads_behind(admin: KafkaAdmin) -> None:
    before = kafka_python_io_threads()
    for _ in range(2):
        with pytest.raises(KafkaUnavailable):
            await admin.partitions_being_reassigned("orders")
    leaked = [t.name for t in kafka_python_io_threads() if t not in before]
    assert not leaked, f"{len(leaked)} kafka-python I/O thread(s) still running after two failed calls"


def test_a_kafka_python_refusal_keeps_its_code_and_not_its_request_dump() -> None:
    admin = KafkaAdmin(Connection("default", {"bootstrap.servers": "127.0.0.1:1"}, frozenset()), linger=0.01)
    error = admin._kafka_python_error(ClusterAuthorizationFailedError("ClientRequest(listener=CONTROLLER, ...)"))
    assert isinstance(error, KafkaRefused)
    assert error.code == "CLUSTER_AUTHORIZATION_FAILED" and "ClientRequest" not in str(error)
