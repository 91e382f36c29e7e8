"""The work queue: one reconcile per object at a time, none lost, backoff per object."""

from __future__ import annotations

import asyncio

import pytest

from controllers.core.workqueue import WorkQueue


def new_queue() -> WorkQueue[str]:
    return WorkQueue(base_backoff=0.01, max_backoff=0.04)


async def test_a_key_added_twice_is_queued_once() -> None:
    queue = new_queue()
    queue.add("a")
    queue.add("a")
    queue.add("b")
    assert len(queue) == 2
    assert await queue.get() == "a"
    assert await queue.get() == "b"


async def test_a_key_added_while_processing_comes_back_after_done_not_before() -> None:
    queue = new_queue()
    queue.add("a")
    key = await queue.get()
    queue.add("a")
    assert len(queue) == 0  # never handed out twice at once
    queue.done(key)
    assert await asyncio.wait_for(queue.get(), 1) == "a"


async def test_add_after_queues_the_key_later() -> None:
    queue = new_queue()
    queue.add_after("a", 0.05)
    assert len(queue) == 0
    assert await asyncio.wait_for(queue.get(), 1) == "a"


async def test_an_immediate_add_overrides_a_pending_delay() -> None:
    queue = new_queue()
    queue.add_after("a", 10)
    queue.add("a")
    assert await asyncio.wait_for(queue.get(), 0.5) == "a"


async def test_backoff_doubles_per_failure_up_to_the_maximum_and_resets_on_success() -> None:
    queue = new_queue()
    delays = []
    for _ in range(4):
        delays.append(queue.add_with_backoff("a"))
        key = await asyncio.wait_for(queue.get(), 1)
        queue.done(key)
    assert delays == [0.01, 0.02, 0.04, 0.04]
    queue.forget("a")
    assert queue.add_with_backoff("a") == 0.01


async def test_discard_drops_a_pending_retry() -> None:
    queue = new_queue()
    queue.add_after("a", 0.02)
    queue.discard("a")
    await asyncio.sleep(0.05)
    assert len(queue) == 0


async def test_urgent_and_background_keys_are_taken_from_their_own_lanes() -> None:
    queue = new_queue()
    queue.add("resync-1", urgent=False)
    queue.add("resync-2", urgent=False)
    queue.add("change")
    assert len(queue) == 3
    assert await asyncio.wait_for(queue.get(), 1) == "change"
    assert await asyncio.wait_for(queue.get(urgent=False), 1) == "resync-1"


async def test_a_background_key_made_urgent_moves_up_and_is_handed_out_once() -> None:
    queue = new_queue()
    queue.add("a", urgent=False)
    queue.add("b", urgent=False)
    queue.add("b")  # a change to b while its resync waits
    assert len(queue) == 2
    assert await asyncio.wait_for(queue.get(), 1) == "b"
    assert await asyncio.wait_for(queue.get(urgent=False), 1) == "a"
    with pytest.raises(TimeoutError):  # b's old place in the background lane is not handed out again
        await asyncio.wait_for(queue.get(urgent=False), 0.05)


async def test_an_urgent_add_while_processing_comes_back_urgent() -> None:
    queue = new_queue()
    queue.add("a", urgent=False)
    key = await queue.get(urgent=False)
    queue.add("a", urgent=False)
    queue.add("a")
    queue.done(key)
    assert await asyncio.wait_for(queue.get(), 1) == "a"
