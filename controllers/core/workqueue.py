"""A deduplicating, delaying work queue of object keys (asyncio).

The same semantics as client-go's workqueue: a key is queued at most once; a
key added while it is being processed is processed again afterwards, never
twice at the same time; delayed adds wait on a timer; failures back off
exponentially per key until the key succeeds.

Two lanes: urgent work (a change someone just made, a retry) and background
work (the periodic resync of every object). Each lane is taken by its own
consumer, so a resync of thousands of objects never makes a change wait
behind it; a key queued in the background is moved up when it becomes urgent.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

Key = TypeVar("Key")


class WorkQueue(Generic[Key]):
    def __init__(self, *, base_backoff: float, max_backoff: float) -> None:
        self._lanes: dict[bool, deque[Key]] = {True: deque(), False: deque()}
        # Queued keys -> whether urgent. A key moved up to the urgent lane leaves a stale
        # entry in the background one, skipped when reached (no O(n) removal).
        self._queued: dict[Key, bool] = {}
        self._processing: set[Key] = set()
        self._dirty: dict[Key, bool] = {}  # added while processing -> whether urgent
        self._timers: dict[Key, asyncio.TimerHandle] = {}
        self._failures: dict[Key, int] = {}
        self._wakeups = {True: asyncio.Event(), False: asyncio.Event()}
        self._base_backoff = base_backoff
        self._max_backoff = max_backoff

    def __len__(self) -> int:
        return len(self._queued)

    def add(self, key: Key, *, urgent: bool = True) -> None:
        """Queue the key now; `urgent=False` for background work (a resync)."""
        timer = self._timers.pop(key, None)
        if timer:
            timer.cancel()
        if key in self._processing:
            self._dirty[key] = self._dirty.get(key, False) or urgent
        elif key not in self._queued:
            self._queued[key] = urgent
            self._lanes[urgent].append(key)
            self._wakeups[urgent].set()
        elif urgent and not self._queued[key]:
            self._queued[key] = True
            self._lanes[True].append(key)
            self._wakeups[True].set()

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

    async def get(self, *, urgent: bool = True) -> Key:
        """The next key of one lane, waiting for one if it is empty."""
        lane, wakeup = self._lanes[urgent], self._wakeups[urgent]
        while True:
            while not lane:
                wakeup.clear()
                await wakeup.wait()
            key = lane.popleft()
            if self._queued.get(key) is urgent:  # else a stale entry: moved up, or taken already
                del self._queued[key]
                self._processing.add(key)
                return key

    def done(self, key: Key) -> None:
        self._processing.discard(key)
        if key in self._dirty:
            self.add(key, urgent=self._dirty.pop(key))
