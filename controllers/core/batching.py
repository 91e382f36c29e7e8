"""Coalesce the service calls of many concurrent reconciles into one request.

Each reconcile awaits `submit(item)` for its own object; the batcher waits a
short linger after the first item (or until `max_items` are waiting), then
runs one call for all of them and hands each caller its own result. This is
how a thousand objects cost a handful of Admin requests instead of a
thousand.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Hashable, Mapping
from typing import Generic, TypeVar

Item = TypeVar("Item", bound=Hashable)
Result = TypeVar("Result")

BatchCall = Callable[[list[Item]], Awaitable[Mapping[Item, "Result | BaseException"]]]


class Batcher(Generic[Item, Result]):
    def __init__(self, call: BatchCall[Item, Result], *, linger: float, max_items: int) -> None:
        self._call = call
        self._linger = linger
        self._max_items = max_items
        self._waiting: dict[Item, list[asyncio.Future[Result]]] = {}
        self._full = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> Result:
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(item, []).append(future)
        if len(self._waiting) >= self._max_items:
            self._full.set()
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush_after_linger())
        return await future

    async def _flush_after_linger(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._full.wait(), timeout=self._linger)
        batch, self._waiting = self._waiting, {}
        self._full.clear()
        self._flusher = None  # items submitted from now on start the next batch
        try:
            results = await self._call(list(batch))
        except Exception as error:
            results = dict.fromkeys(batch, error)
        for item, futures in batch.items():
            result = results.get(item, RuntimeError(f"the batched call returned no result for {item!r}"))
            for future in futures:
                if future.done():
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)
