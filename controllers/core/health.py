"""Liveness and readiness, served as /healthz and /readyz on the health port.

Liveness asks whether the operator's own machinery runs: every loop registered
with `keep_running` (a controller's worker and resync loops, the service
clients' callbacks, the probes below) must still be running. A failing
liveness probe gets the process restarted, so no liveness check depends on the
API server or a service: an outage must not become a restart loop.

Readiness asks whether the operator can do its work now: the Kubernetes API
server and each registered service answered recently. A failing readiness
probe restarts nothing; it shows in `kubectl get pods` and holds back a
rollout.

Both answer 200 or 503 with a JSON body naming each check and what fails.
Kinds and components register their checks; the operator wires them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

log = logging.getLogger("infometis.health")

# Each dependency is asked every PROBE_INTERVAL; an answer older than STALE_AFTER does not count.
PROBE_INTERVAL_SECONDS = 5.0
PROBE_TIMEOUT_SECONDS = 5.0
STALE_AFTER_SECONDS = 30.0

Check = Callable[[], str | None]
"""None when all is well; otherwise what is wrong, in words."""


@dataclass(frozen=True)
class Report:
    checks: Mapping[str, str | None]

    @property
    def ok(self) -> bool:
        return all(problem is None for problem in self.checks.values())

    def body(self) -> dict[str, Any]:
        return {
            "status": "ok" if self.ok else "failing",
            "failing": sorted(name for name, problem in self.checks.items() if problem is not None),
            "checks": {name: problem or "ok" for name, problem in sorted(self.checks.items())},
        }


class Health:
    def __init__(self) -> None:
        self._liveness: dict[str, Check] = {}
        self._readiness: dict[str, Check] = {}

    def add_liveness(self, name: str, check: Check) -> None:
        self._liveness[name] = check

    def add_readiness(self, name: str, check: Check) -> None:
        self._readiness[name] = check

    def keep_running(self, name: str, task: asyncio.Task[Any]) -> None:
        """Liveness fails once `task` ends: it is meant to run until the operator stops."""
        self.add_liveness(name, lambda: _ended(task))
        task.add_done_callback(lambda done: _log_unexpected_end(name, done))

    def liveness(self) -> Report:
        return Report({name: check() for name, check in self._liveness.items()})

    def readiness(self) -> Report:
        return Report({name: check() for name, check in self._readiness.items()})


def _ended(task: asyncio.Task[Any]) -> str | None:
    if not task.done():
        return None
    if task.cancelled():
        return "stopped (cancelled)"
    error = task.exception()
    return f"stopped: {error!r}" if error is not None else "stopped"


def _log_unexpected_end(name: str, task: asyncio.Task[Any]) -> None:
    if task.cancelled():
        return  # the operator is stopping
    error = task.exception()
    # Nothing else reports it: the task's owner does not await it until shutdown.
    log.error("%s stopped; /healthz fails from now on", name, exc_info=error)


class Reachability:
    """Whether a dependency answered recently, as its probe (`probe_forever`) finds.

    One probe is the only source, so the state cannot flap between callers that
    see different things. An outage is logged twice: when the first probe
    fails, and when one succeeds again. The failures in between are not
    logged; the readiness body carries the latest error instead.
    """

    def __init__(
        self,
        what: str,
        *,
        logger: logging.Logger,
        max_age: float = STALE_AFTER_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._what = what
        self._max_age = max_age
        self._log = logger
        self._clock = clock
        self._last_answer: float | None = None
        self._outage: tuple[float, str] | None = None  # since, latest error

    def answered(self) -> None:
        now = self._clock()
        if self._outage is not None:
            self._log.info("%s answers again after %.0fs", self._what, now - self._outage[0])
            self._outage = None
        self._last_answer = now

    def failed(self, error: str) -> None:
        if self._outage is None:
            self._log.warning("%s unreachable: %s; retrying until it answers", self._what, error)
            self._outage = (self._clock(), error)
        else:
            self._outage = (self._outage[0], error)

    def check(self) -> str | None:
        now = self._clock()
        if self._outage is not None:
            since, error = self._outage
            return f"failing for {now - since:.0f}s: {error}"
        if self._last_answer is None:
            return "not asked yet"
        if now - self._last_answer > self._max_age:
            # The probe itself is stuck or gone; liveness reports a gone one.
            return f"last answer {now - self._last_answer:.0f}s ago"
        return None

    async def probe_forever(
        self,
        probe: Callable[[], Awaitable[object]],
        *,
        interval: float = PROBE_INTERVAL_SECONDS,
        timeout: float = PROBE_TIMEOUT_SECONDS,
    ) -> None:
        """Call `probe` every `interval` seconds; an exception (or `timeout`) counts as a failure, in its words.

        A timeout is believed the second time in a row only: when the operator's own event loop is held up
        for longer than `timeout` (the process starved of CPU, a log write waiting on a busy disk), every
        probe times out at once though each dependency had answered; asked again at once, it answers."""
        while True:
            try:
                try:
                    async with asyncio.timeout(timeout):
                        await probe()
                except TimeoutError:
                    async with asyncio.timeout(timeout):  # asked again at once: see above
                        await probe()
            except TimeoutError:
                self.failed(f"no answer within {timeout:.0f}s")
            except Exception as error:
                self.failed(str(error) or repr(error))
            else:
                self.answered()
            await asyncio.sleep(interval)


async def serve(health: Health, port: int, unmanaged: Mapping[str, Mapping[str, Sequence[str]]]) -> None:
    """Serve /healthz (liveness), /readyz (readiness) and /unmanaged on `port` until cancelled.

    /unmanaged lists, per kind (plural) and service instance, the resources no
    object manages as of the last resync: the seed design's orphan report.
    """

    async def list_unmanaged(_: web.Request) -> web.Response:
        return web.json_response({plural: dict(by_instance) for plural, by_instance in unmanaged.items()})

    def endpoint(report: Callable[[], Report]) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def answer(_: web.Request) -> web.Response:
            result = report()
            return web.json_response(result.body(), status=200 if result.ok else 503)

        return answer

    app = web.Application()
    app.add_routes(
        [
            web.get("/healthz", endpoint(health.liveness)),
            web.get("/readyz", endpoint(health.readiness)),
            web.get("/unmanaged", list_unmanaged),
        ]
    )
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)  # no line per probe request
    await runner.setup()
    try:
        await web.TCPSite(runner, "0.0.0.0", port).start()
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
