"""Concurrent submits share one call; each caller gets its own result or error."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import pytest

from controllers.core.batching import Batcher


class Recorder:
    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    async def __call__(self, items: list[str]) -> Mapping[str, str | BaseException]:
        self.calls.append(sorted(items))
        return {item: (ValueError(item) if item.startswith("bad") else item.upper()) for item in items}


async def test_concurrent_submits_within_the_linger_make_one_call() -> None:
    recorder = Recorder()
    batcher: Batcher[str, str] = Batcher(recorder, linger=0.02, max_items=100)
    results = await asyncio.gather(*(batcher.submit(name) for name in ["a", "b", "c"]))
    assert results == ["A", "B", "C"]
    assert recorder.calls == [["a", "b", "c"]]


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


@pytest.mark.parametrize("count", [1, 250])
async def test_every_caller_is_answered(count: int) -> None:
    batcher: Batcher[str, str] = Batcher(Recorder(), linger=0.005, max_items=100)
    names = [f"t{i}" for i in range(count)]
    assert await asyncio.gather(*(batcher.submit(n) for n in names)) == [n.upper() for n in names]
