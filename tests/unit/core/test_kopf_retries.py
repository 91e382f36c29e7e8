"""What kopf 1.45's watch does when the API server is away longer than its retries, against a local HTTP server.

These run kopf's own watch loop (`infinite_watch`, what each kopf watcher task
iterates) with backoffs of milliseconds instead of seconds, so the outages
last a moment: the behaviour depends on the number of attempts, not on their
timing.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterable

import kopf
import pytest
from aiohttp import web
from kopf._cogs.clients import auth, errors, watching
from kopf._cogs.structs import credentials, references

from controllers.core.kopf_retries import DropUnavailableRetries, EndlessBackoffs

KOPF_ATTEMPTS = 9  # kopf's default error_backoffs hold 8 delays: 9 attempts
RESOURCE = references.Resource(group="infometis.io", version="v1alpha1", plural="kafkatopics", namespaced=True)
EVENT = {"type": "ADDED", "object": {"metadata": {"name": "t", "namespace": "n", "uid": "u", "resourceVersion": "2"}}}


class ApiServer:
    """Lists nothing; answers the first `failures` watch requests 503, then streams one event."""

    def __init__(self, port: int, failures: int) -> None:
        self.port = port
        self.failures = failures
        self.watch_requests = 0
        self._runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if "watch" not in request.query:
            return web.json_response({"kind": "List", "metadata": {"resourceVersion": "1"}, "items": []})
        self.watch_requests += 1
        if self.watch_requests <= self.failures:
            status = {"kind": "Status", "status": "Failure", "code": 503, "message": "unavailable"}
            return web.json_response(status, status=503)
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(json.dumps(EVENT).encode() + b"\n")
        await asyncio.Event().wait()  # an open stream until the client goes
        return response

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/apis/infometis.io/v1alpha1/kafkatopics", self.handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def kopf_context(unused_tcp_port: int) -> AsyncIterator[int]:
    """kopf's request functions find their credentials in a context variable; point them at the port."""
    vault = credentials.Vault()
    await vault.populate({"local": credentials.ConnectionInfo(server=f"http://127.0.0.1:{unused_tcp_port}")})
    auth.vault_var.set(vault)
    yield unused_tcp_port
    await vault.close()


def settings_with(backoffs: Iterable[float]) -> kopf.OperatorSettings:
    settings = kopf.OperatorSettings()
    settings.networking.error_backoffs = backoffs
    return settings


async def first_event(settings: kopf.OperatorSettings) -> object:
    stream = watching.infinite_watch(settings=settings, resource=RESOURCE, namespace=None)
    try:
        async for event in stream:
            if isinstance(event, dict):
                return event
    finally:
        await stream.aclose()
    raise AssertionError("the watch ended")


async def test_with_kopfs_default_attempts_a_longer_503_outage_ends_the_watch(kopf_context: int) -> None:
    server = ApiServer(kopf_context, failures=KOPF_ATTEMPTS)
    await server.start()
    try:
        with pytest.raises(errors.APIServerError):  # out of the watcher task: kopf stops the operator
            await first_event(settings_with([0.001] * (KOPF_ATTEMPTS - 1)))
    finally:
        await server.stop()
    assert server.watch_requests == KOPF_ATTEMPTS


async def test_with_endless_backoffs_the_watch_outlasts_a_503_outage(kopf_context: int) -> None:
    server = ApiServer(kopf_context, failures=5 * KOPF_ATTEMPTS)
    await server.start()
    try:
        event = await asyncio.wait_for(first_event(settings_with(EndlessBackoffs((0.001,), then=0.001))), 10)
    finally:
        await server.stop()
    assert event == EVENT
    assert server.watch_requests == 5 * KOPF_ATTEMPTS + 1


async def test_even_with_kopfs_default_attempts_a_refused_connection_does_not_end_the_watch(
    kopf_context: int,
) -> None:
    """kopf's watch loop swallows a connection error after the last attempt and starts a new request."""
    server = ApiServer(kopf_context, failures=0)
    watch = asyncio.create_task(first_event(settings_with([0.001] * (KOPF_ATTEMPTS - 1))))
    await asyncio.sleep(0.5)  # nothing listens: many times kopf's attempts
    assert not watch.done()
    await server.start()
    try:
        assert await asyncio.wait_for(watch, 10) == EVENT
    finally:
        await server.stop()


def test_endless_backoffs_start_afresh_for_each_request_and_never_end() -> None:
    backoffs = EndlessBackoffs((1, 2), then=10)
    first = iter(backoffs)
    assert [next(first) for _ in range(5)] == [1, 2, 10, 10, 10]
    assert next(iter(backoffs)) == 1


@pytest.mark.parametrize(
    ("message", "kept"),
    [
        ("Request attempt #3 failed; will retry: GET https://api/x -> ClientConnectorError(ConnectionKey())", False),
        ("Request attempt #2 failed; will retry: GET https://api/x -> ServerDisconnectedError('gone')", False),
        ("Request attempt #4 failed; will retry: GET https://api/x -> APIServerError('down', status=503)", False),
        ("Request attempt #2 failed; will retry: GET https://api/x -> APIForbiddenError('no', status=403)", True),
        ("Request attempt #1 failed; TCP closed; will re-authenticate: GET https://api/x", True),
        ("Watcher for kafkatopics has failed: boom", True),
    ],
)
def test_only_kopfs_retry_lines_for_an_unavailable_api_server_are_dropped(message: str, kept: bool) -> None:
    record = logging.LogRecord("kopf._cogs.clients.watching", logging.ERROR, __file__, 1, message, None, None)
    assert DropUnavailableRetries().filter(record) is kept
