"""Concurrent submits share one call; each caller gets its own result or error."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Mapping

import pytest

from controllers.core.batching import RESULTS_PER_TURN, URGENT, Batcher


class Recorder:
    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    async def __call__(self, items: list[str]) -> Mapping[str, str | BaseException]:
        self.calls.append(sorted(items))
        return {item: (ValueError(item) if item.startswith("bad") else item.upper()) for item in items}


async def test_concurrent_submits_make_one_call() -> None:
    recorder = Recorder()
    batcher: Batcher[str, str] = Batcher(recorder, linger=0.02, max_items=100)
    results = await asyncio.gather(*(batcher.submit(name) for name in ["a", "b", "c"]))
    assert results == ["A", "B", "C"]
    assert recorder.calls == [["a", "b", "c"]]


async def test_a_lone_submit_waits_for_no_linger() -> None:
    recorder = Recorder()
    batcher: Batcher[str, str] = Batcher(recorder, linger=10, max_items=100)
    assert await asyncio.wait_for(batcher.submit("a"), 0.5) == "A"


async def test_a_full_batch_goes_out_without_waiting_for_the_linger() -> None:
    recorder = Recorder()
    batcher: Batcher[str, str] = Batcher(recorder, linger=10, max_items=2)
    results = await asyncio.wait_for(asyncio.gather(batcher.submit("a"), batcher.submit("b")), 1)
    assert results == ["A", "B"]


async def test_the_same_item_twice_is_asked_once_and_both_callers_answered() -> None:
    recorder = Recorder()
    batcher: Batcher[str, str] = Batcher(recorder, linger=0.01, max_items=100)
    assert await asyncio.gather(batcher.submit("a"), batcher.submit("a")) == ["A", "A"]
    assert recorder.calls == [["a"]]


async def test_a_per_item_error_reaches_only_its_caller() -> None:
    batcher: Batcher[str, str] = Batcher(Recorder(), linger=0.01, max_items=100)
    good, bad = await asyncio.gather(batcher.submit("a"), batcher.submit("bad"), return_exceptions=True)
    assert good == "A"
    assert isinstance(bad, ValueError)


async def test_a_failed_call_fails_every_caller_of_that_batch() -> None:
    async def broken(items: list[str]) -> Mapping[str, str]:
        raise ConnectionError("service down")

    batcher: Batcher[str, str] = Batcher(broken, linger=0.01, max_items=100)
    results = await asyncio.gather(batcher.submit("a"), batcher.submit("b"), return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)


async def test_items_submitted_during_a_call_form_the_next_batch() -> None:
    started = asyncio.Event()
    release = asyncio.Event()
    calls: list[list[str]] = []

    async def slow(items: list[str]) -> Mapping[str, str]:
        calls.append(sorted(items))
        started.set()
        await release.wait()
        return {i: i for i in items}

    batcher: Batcher[str, str] = Batcher(slow, linger=0.01, max_items=100)
    first = asyncio.ensure_future(batcher.submit("a"))
    await started.wait()
    second = asyncio.ensure_future(batcher.submit("b"))
    release.set()
    assert await asyncio.wait_for(asyncio.gather(first, second), 1) == ["a", "b"]
    assert calls == [["a"], ["b"]]


class Gate:
    """A batch call that holds each call until released, recording what each carried."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self, items: list[str]) -> Mapping[str, str]:
        self.calls.append(sorted(items))
        self.started.set()
        await self.release.wait()
        return {i: i for i in items}


async def test_submits_during_a_call_wait_for_it_and_go_as_one_batch() -> None:
    gate = Gate()
    batcher: Batcher[str, str] = Batcher(gate, linger=10, max_items=100)
    first = asyncio.ensure_future(batcher.submit("a"))
    await gate.started.wait()
    later = [asyncio.ensure_future(batcher.submit(name)) for name in ("b", "c", "d")]
    await asyncio.sleep(0.05)
    assert gate.calls == [["a"]]  # nothing more goes out while the first call is in flight
    gate.release.set()
    assert await asyncio.wait_for(asyncio.gather(first, *later), 1) == ["a", "b", "c", "d"]
    assert gate.calls == [["a"], ["b", "c", "d"]]


async def test_a_batch_waits_for_a_slow_call_at_most_the_linger() -> None:
    gate = Gate()
    batcher: Batcher[str, str] = Batcher(gate, linger=0.05, max_items=100)
    first = asyncio.ensure_future(batcher.submit("a"))
    await gate.started.wait()
    second = asyncio.ensure_future(batcher.submit("b"))
    for _ in range(500):  # the first call is still held: the second goes out once the linger is over
        if len(gate.calls) == 2:
            break
        await asyncio.sleep(0.01)
    assert gate.calls == [["a"], ["b"]]
    gate.release.set()
    assert await asyncio.wait_for(asyncio.gather(first, second), 1) == ["a", "b"]


async def test_an_urgent_item_does_not_wait_for_a_background_call() -> None:
    gate = Gate()
    batcher: Batcher[str, str] = Batcher(gate, linger=10, max_items=100)

    async def background(item: str) -> str:
        URGENT.set(False)  # in this task's context only, as the controller sets it per reconcile
        return await batcher.submit(item)

    resync = asyncio.ensure_future(background("resync"))
    await gate.started.wait()
    urgent = asyncio.ensure_future(batcher.submit("change"))
    await asyncio.sleep(0.05)
    assert gate.calls == [["resync"], ["change"]]
    gate.release.set()
    assert await asyncio.wait_for(asyncio.gather(resync, urgent), 1) == ["resync", "change"]


@pytest.mark.parametrize("count", [1, 250])
async def test_every_caller_is_answered(count: int) -> None:
    batcher: Batcher[str, str] = Batcher(Recorder(), linger=0.005, max_items=100)
    names = [f"t{i}" for i in range(count)]
    assert await asyncio.gather(*(batcher.submit(n) for n in names)) == [n.upper() for n in names]


async def test_a_large_batch_wakes_its_submitters_a_slice_per_turn_so_other_work_runs_between() -> None:
    batcher: Batcher[str, str] = Batcher(Recorder(), linger=0.02, max_items=1000)
    submitters = [asyncio.ensure_future(batcher.submit(f"item-{i}")) for i in range(200)]
    done_at_each_turn: list[int] = []

    async def other_work() -> None:
        while len(done_at_each_turn) < 1000:
            done_at_each_turn.append(sum(s.done() for s in submitters))
            if done_at_each_turn[-1] == len(submitters):
                return
            await asyncio.sleep(0)

    await asyncio.gather(other_work(), *submitters)
    steps = [after - before for before, after in itertools.pairwise(done_at_each_turn)]
    assert done_at_each_turn[-1] == len(submitters)
    assert max(steps) <= RESULTS_PER_TURN
    assert [s.result() for s in submitters] == [f"ITEM-{i}" for i in range(200)]


async def test_items_submitted_while_a_batchs_results_are_handed_back_go_out_together() -> None:
    recorder = Recorder()
    batcher: Batcher[str, str] = Batcher(recorder, linger=1, max_items=1000)

    async def observe_then_verify(name: str) -> None:
        await batcher.submit(name)
        await batcher.submit(f"{name}-again")  # as a reconcile checks right after its first answer

    await asyncio.gather(*(observe_then_verify(f"item-{i}") for i in range(RESULTS_PER_TURN * 3)))
    assert [len(call) for call in recorder.calls] == [RESULTS_PER_TURN * 3, RESULTS_PER_TURN * 3]
