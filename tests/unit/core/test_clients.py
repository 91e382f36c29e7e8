"""One client per distinct connection; idle ones are closed, used ones kept."""

from __future__ import annotations

import asyncio
import time

from controllers.core.clients import ClientPool
from controllers.core.connections import Connection


class Client:
    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.last_used = time.monotonic()
        self.polls = 0
        self.closed = False

    def poll(self) -> None:
        self.polls += 1

    def close(self) -> None:
        self.closed = True


def connection(name: str, servers: str) -> Connection:
    return Connection(name, {"bootstrap.servers": servers}, frozenset())


def test_objects_whose_connections_have_equal_settings_share_one_client() -> None:
    pool = ClientPool("Example", Client, idle_seconds=60)
    one = pool.for_connection(connection("secret a/x", "b:1"))
    assert pool.for_connection(connection("secret b/y", "b:1")) is one
    assert pool.for_connection(connection("default", "c:1")) is not one


async def test_a_client_unused_for_the_idle_time_is_closed_and_a_used_one_kept() -> None:
    pool = ClientPool("Example", Client, idle_seconds=60)
    idle, used = pool.for_connection(connection("idle", "b:1")), pool.for_connection(connection("used", "c:1"))
    idle.last_used -= 61
    maintenance = asyncio.create_task(pool.maintain())
    await asyncio.sleep(1.2)
    maintenance.cancel()
    assert idle.closed and not used.closed
    assert pool.in_use() == [used] and used.polls >= 1
