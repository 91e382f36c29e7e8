"""Awaiting several things at once without leaving a task that ended in an exception.

kopf counts every task created after the operator started as its own: at
shutdown it waits briefly for those still running and re-raises whatever
exception they end with, even one that gather() already handed to its caller.
A reconcile in flight at SIGTERM whose Kafka call then fails would turn a
clean stop into a crash with a traceback. Here each exception is caught inside
its own task and returned as a value instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any


async def settle(*awaitables: Awaitable[Any]) -> list[Any]:
    """Each awaitable's result or the Exception it raised, in order; cancellation still propagates."""

    async def capture(awaitable: Awaitable[Any]) -> Any:
        try:
            return await awaitable
        except Exception as error:
            return error

    return list(await asyncio.gather(*(capture(awaitable) for awaitable in awaitables)))
