"""One service client per distinct connection, kept while used and closed when idle.

Every object that shares a connection (the default, or Secrets with equal
settings) shares one client, so their calls batch together; a client no
object has used for a while is closed, so connections to clusters nobody
names any more do not linger. Kinds give the factory; the pool is the same
for every service.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

from controllers.core.connections import Connection

log = logging.getLogger("infometis.clients")


class PooledClient(Protocol):
    last_used: float  # time.monotonic() of the last call

    def poll(self) -> None:
        """Serve the client library's callbacks (statistics, logs); called every second."""
        ...

    def close(self) -> None: ...


ClientT = TypeVar("ClientT", bound=PooledClient)


class ClientPool(Generic[ClientT]):
    def __init__(self, service: str, factory: Callable[[Connection], ClientT], *, idle_seconds: float) -> None:
        self._service = service
        self._factory = factory
        self._idle_seconds = idle_seconds
        self._clients: dict[tuple[tuple[str, str], ...], ClientT] = {}

    def in_use(self) -> list[ClientT]:
        return list(self._clients.values())

    def for_connection(self, connection: Connection) -> ClientT:
        client = self._clients.get(connection.identity)
        if client is None:
            client = self._factory(connection)
            self._clients[connection.identity] = client
            log.info("connected a %s client for %s", self._service, connection.name)
        return client

    async def maintain(self) -> None:
        """Every second: serve each client's callbacks; close those unused for idle_seconds."""
        while True:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            for identity, client in list(self._clients.items()):
                client.poll()
                if now - client.last_used > self._idle_seconds:
                    client.close()
                    del self._clients[identity]

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()
