"""settle: results and exceptions in order, and no task left that ended in an exception."""

from __future__ import annotations

import asyncio

import pytest

from controllers.core.tasks import settle


async def test_results_and_exceptions_come_back_in_order() -> None:
    async def answer() -> int:
        return 42

    async def fail() -> int:
        raise ValueError("refused")

    results = await settle(answer(), fail(), answer())
    assert results[0] == 42 and results[2] == 42
    assert isinstance(results[1], ValueError) and str(results[1]) == "refused"


async def test_the_task_of_a_failed_awaitable_ends_without_an_exception() -> None:
    """kopf re-raises, at shutdown, the exception of any task it finds ended with one."""
    tasks: list[asyncio.Task[object]] = []

    async def fail() -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.append(task)
        raise ConnectionError("Kafka went away")

    await settle(fail(), fail())
    assert len(tasks) == 2
    assert all(task.done() and not task.cancelled() and task.exception() is None for task in tasks)


async def test_cancelling_the_caller_cancels_the_awaitables() -> None:
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def wait_forever() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    caller = asyncio.create_task(settle(wait_forever()))
    await started.wait()
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert cancelled.is_set()
