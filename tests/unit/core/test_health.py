"""Liveness follows the operator's own loops; readiness follows what its dependencies last said."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import pytest

from controllers.core.health import Health, Reachability, Report, serve


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def reachability(clock: Clock, max_age: float = 30) -> Reachability:
    return Reachability("Test API", max_age=max_age, logger=logging.getLogger("test.health"), clock=clock)


async def wait_forever() -> None:
    await asyncio.Event().wait()


async def test_liveness_holds_while_every_kept_task_runs() -> None:
    health = Health()
    task = asyncio.create_task(wait_forever())
    health.keep_running("worker", task)
    await asyncio.sleep(0)
    assert health.liveness() == Report({"worker": None})
    task.cancel()


async def test_a_loop_that_dies_fails_liveness_naming_it_and_its_error(caplog: pytest.LogCaptureFixture) -> None:
    async def die() -> None:
        raise RuntimeError("the queue broke")

    health = Health()
    health.keep_running("kafkatopic-worker", asyncio.create_task(wait_forever()))
    health.keep_running("kafkatopic-resync", asyncio.create_task(die()))
    await asyncio.sleep(0.01)

    body = health.liveness().body()
    assert body["status"] == "failing"
    assert body["failing"] == ["kafkatopic-resync"]
    assert body["checks"]["kafkatopic-resync"] == "stopped: RuntimeError('the queue broke')"
    assert body["checks"]["kafkatopic-worker"] == "ok"
    # Logged once, with its traceback, when it happened.
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "kafkatopic-resync stopped" in errors[0].getMessage() and errors[0].exc_info


async def test_a_loop_cancelled_at_shutdown_is_not_logged_as_an_error(caplog: pytest.LogCaptureFixture) -> None:
    health = Health()
    task = asyncio.create_task(wait_forever())
    health.keep_running("worker", task)
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert health.liveness().checks == {"worker": "stopped (cancelled)"}
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_not_ready_before_the_first_answer() -> None:
    api = reachability(Clock())
    assert api.check() == "not asked yet"
    api.answered()
    assert api.check() is None


def test_an_outage_is_logged_when_it_starts_and_when_it_ends_not_at_every_retry(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "test.health")
    clock = Clock()
    api = reachability(clock)
    api.answered()
    for second in range(5):
        clock.now += 1
        api.failed(f"connection refused (attempt {second})")
    clock.now += 10
    api.answered()
    api.answered()

    lines = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert lines == [
        ("WARNING", "Test API unreachable: connection refused (attempt 0); retrying until it answers"),
        ("INFO", "Test API answers again after 14s"),
    ]


def test_readiness_during_an_outage_names_how_long_and_the_latest_error() -> None:
    clock = Clock()
    api = reachability(clock)
    api.answered()
    api.failed("connection refused")
    clock.now += 12
    api.failed("TLS handshake timed out")
    assert api.check() == "failing for 12s: TLS handshake timed out"


def test_an_answer_older_than_max_age_does_not_count() -> None:
    clock = Clock()
    api = reachability(clock, max_age=30)
    api.answered()
    clock.now += 31
    assert api.check() == "last answer 31s ago"


async def test_a_probe_that_raises_or_hangs_is_a_failure_in_its_own_words() -> None:
    api = reachability(Clock())
    calls = 0

    async def refused_then_hanging() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("cannot connect to api:6443")
        await wait_forever()

    task = asyncio.create_task(api.probe_forever(refused_then_hanging, interval=0.01, timeout=0.05))
    await asyncio.sleep(0.005)
    assert api.check() == "failing for 0s: cannot connect to api:6443"
    for _ in range(500):  # a timeout is believed the second time in a row (below)
        if api.check() != "failing for 0s: cannot connect to api:6443":
            break
        await asyncio.sleep(0.01)
    assert api.check() == "failing for 0s: no answer within 0s"
    task.cancel()


async def test_a_probe_timed_out_once_is_asked_again_at_once_and_not_an_outage(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The event loop held up for longer than the timeout (the process starved of CPU, a write to a busy disk)
    makes every probe time out at once although each dependency answered: asked again at once, it answers.
    Modelled as the prober sees it, a first ask with no answer in time, so that it does not hang on how the
    event loop orders a late answer and a late timeout."""
    api = reachability(Clock())
    calls = 0

    async def silent_once_then_answering() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            await wait_forever()

    task = asyncio.create_task(api.probe_forever(silent_once_then_answering, interval=10, timeout=0.01))
    for _ in range(500):  # until the second ask has been answered
        if api.check() is None:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    assert calls == 2 and api.check() is None
    assert "unreachable" not in caplog.text


async def test_the_endpoints_answer_200_or_503_with_a_body_naming_what_fails(unused_tcp_port: int) -> None:
    health = Health()
    health.keep_running("worker", asyncio.create_task(wait_forever()))
    api = reachability(Clock())
    api.answered()
    kafka = reachability(Clock())
    kafka.failed("all brokers are down")
    health.add_readiness("kubernetes-api", api.check)
    health.add_readiness("kafka-default", kafka.check)
    server = asyncio.create_task(serve(health, unused_tcp_port, {}))
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(100):  # until it listens
                try:
                    live = await session.get(f"http://127.0.0.1:{unused_tcp_port}/healthz")
                    break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.01)
            ready = await session.get(f"http://127.0.0.1:{unused_tcp_port}/readyz")
            assert live.status == 200
            assert await live.json() == {"status": "ok", "failing": [], "checks": {"worker": "ok"}}
            assert ready.status == 503
            assert await ready.json() == {
                "status": "failing",
                "failing": ["kafka-default"],
                "checks": {"kafka-default": "failing for 0s: all brokers are down", "kubernetes-api": "ok"},
            }
    finally:
        server.cancel()
        await asyncio.gather(server, return_exceptions=True)
