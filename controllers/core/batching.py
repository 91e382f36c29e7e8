"""Coalesce the service calls of many concurrent reconciles into one request.

Each reconcile awaits `submit(item)` for its own object and gets its own
result. When no call is in flight, what was submitted in the same turn of the
event loop goes out at once: a lone request waits for nobody. While a call is
in flight, new items gather and go out together when it returns (or as soon
as `max_items` wait, or after `linger` at most), so under load the batches
form by themselves: a thousand objects cost a handful of requests, not a
thousand, and one object costs one round trip.

Urgent work (a change someone just made) and background work (a resync) have
separate lanes: an urgent item never waits for a background batch to return.
The controller says which a reconcile is through `URGENT`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Hashable, Mapping
from contextvars import ContextVar
from typing import Generic, TypeVar

Item = TypeVar("Item", bound=Hashable)
Result = TypeVar("Result")

# Results handed back per turn of the event loop: a batch of hundreds wakes its reconciles a few at a
# time, so a change's reconcile, between two slices, never waits for hundreds of others' next steps.
RESULTS_PER_TURN = 10

BatchCall = Callable[[list[Item]], Awaitable[Mapping[Item, "Result | BaseException"]]]

# Set per reconcile by the controller (a context variable, so every call the reconcile makes
# inherits it without each kind passing it along); anything else counts as urgent.
URGENT: ContextVar[bool] = ContextVar("infometis_urgent_work", default=True)


class _Lane(Generic[Item, Result]):
    def __init__(self) -> None:
        self.waiting: dict[Item, list[asyncio.Future[Result]]] = {}
        self.flusher: asyncio.Task[None] | None = None
        self.calls_in_flight = 0
        # Set when a call returns or the batch fills up: what a flusher waiting on a call waits for.
        self.changed = asyncio.Event()


class Batcher(Generic[Item, Result]):
    def __init__(self, call: BatchCall[Item, Result], *, linger: float, max_items: int) -> None:
        self._call = call
        self._linger = linger
        self._max_items = max_items
        self._lanes: dict[bool, _Lane[Item, Result]] = {True: _Lane(), False: _Lane()}

    async def submit(self, item: Item) -> Result:
        lane = self._lanes[URGENT.get()]
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        lane.waiting.setdefault(item, []).append(future)
        if len(lane.waiting) >= self._max_items:
            lane.changed.set()
        if lane.flusher is None:
            lane.flusher = asyncio.create_task(self._flush(lane))
        return await future

    async def _flush(self, lane: _Lane[Item, Result]) -> None:
        await asyncio.sleep(0)  # the other reconciles woken in this turn of the loop join the batch
        deadline = asyncio.get_running_loop().time() + self._linger
        while lane.calls_in_flight and len(lane.waiting) < self._max_items:
            lane.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lane.changed.wait(), timeout=deadline - asyncio.get_running_loop().time())
            if asyncio.get_running_loop().time() >= deadline:
                break
        batch, lane.waiting = lane.waiting, {}
        lane.flusher = None  # items submitted from now on start the next batch
        lane.calls_in_flight += 1
        try:
            try:
                results = await self._call(list(batch))
            except Exception as error:
                results = dict.fromkeys(batch, error)
            for index, (item, futures) in enumerate(batch.items()):
                if index and index % RESULTS_PER_TURN == 0:
                    await asyncio.sleep(0)
                result = results.get(item, RuntimeError(f"the batched call returned no result for {item!r}"))
                for future in futures:
                    if future.done():
                        continue
                    if isinstance(result, BaseException):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
            await asyncio.sleep(0)  # the last ones handed back take their next step too
        finally:
            for futures in batch.values():  # cancelled mid-way (shutdown): no submitter waits forever
                for future in futures:
                    future.cancel()
            # In flight until its results are handed back: what arrives meanwhile joins the next batch
            # instead of going out alone.
            lane.calls_in_flight -= 1
            lane.changed.set()
