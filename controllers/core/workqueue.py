"""A deduplicating, delaying work queue of object keys (asyncio).

The same semantics as client-go's workqueue: a key is queued at most once; a
key added while it is being processed is processed again afterwards, never
twice at the same time; delayed adds wait on a timer; failures back off
exponentially per key until the key succeeds.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

Key = TypeVar("Key")


class WorkQueue(Generic[Key]):
    def __init__(self, *, base_backoff: float, max_backoff: float) -> None:
        self._ready: deque[Key] = deque()
        self._queued: set[Key] = set()
        self._processing: set[Key] = set()
        self._dirty: set[Key] = set()
        self._timers: dict[Key, asyncio.TimerHandle] = {}
        self._failures: dict[Key, int] = {}
        self._wakeup = asyncio.Event()
        self._base_backoff = base_backoff
        self._max_backoff = max_backoff

    def __len__(self) -> int:
        return len(self._ready)

    def add(self, key: Key) -> None:
        timer = self._timers.pop(key, None)
        if timer:
            timer.cancel()
        if key in self._processing:
            self._dirty.add(key)
        elif key not in self._queued:
            self._queued.add(key)
            self._ready.append(key)
            self._wakeup.set()

    def add_after(self, key: Key, delay: float) -> None:
        """Queue the key after `delay` seconds, unless it is queued sooner."""
        if key in self._queued:
            return
        existing = self._timers.get(key)
        loop = asyncio.get_running_loop()
        due = loop.time() + delay
        if existing and existing.when() <= due:
            return
        if existing:
            existing.cancel()
        self._timers[key] = loop.call_at(due, self._fire, key)

    def _fire(self, key: Key) -> None:
        self._timers.pop(key, None)
        self.add(key)

    def add_with_backoff(self, key: Key) -> float:
        """Queue the key after its next backoff delay; returns that delay."""
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        delay: float = min(self._base_backoff * 2**failures, self._max_backoff)
        self.add_after(key, delay)
        return delay

    def forget(self, key: Key) -> None:
        """The key succeeded: its next failure starts the backoff afresh."""
        self._failures.pop(key, None)

    def discard(self, key: Key) -> None:
        """The object is gone: drop timers and backoff state."""
        timer = self._timers.pop(key, None)
        if timer:
            timer.cancel()
        self._failures.pop(key, None)

    async def get(self) -> Key:
        while not self._ready:
            self._wakeup.clear()
            await self._wakeup.wait()
        key = self._ready.popleft()
        self._queued.discard(key)
        self._processing.add(key)
        return key

    def done(self, key: Key) -> None:
        self._processing.discard(key)
        if key in self._dirty:
            self._dirty.discard(key)
            self.add(key)
