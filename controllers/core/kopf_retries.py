"""kopf's requests to the API server: retried without end, and not logged once per retry.

kopf retries a failed request 8 times, 1 to 21 s apart (54 s in all), then
raises (kopf/_cogs/clients/api.py, `request`). Its watch loop takes a
connection error or a 429 after that as a reason to start a new request
(_cogs/clients/watching.py, `watch_objs`, `infinite_watch`), but any other HTTP
error ends the watcher task, and the operator with it (_core/reactor/
orchestration.py re-raises it, running.py then stops every task). A starting
kube-apiserver answers 503 ("the request has been made before all known HTTP
paths have been installed") and 403 (before its RBAC is loaded) for a moment,
a load balancer in front of stopped API servers 502 or 503: if kopf's last
attempt lands there, the operator exits. Backoffs that never end keep every request trying; kopf's watch
inactivity timeout (70 s) still starts a fresh watch request now and then.

kopf logs every failed attempt as an ERROR line. While the API server cannot be
reached or answers 5xx/429, the operator's own probe (controllers.core.health)
logs the outage once when it starts and once when it ends, so those lines are
dropped; any other failure (403, 404, ...) is kopf's to report.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator

# The logger kopf's watch and list requests log their attempts on.
KOPF_WATCH_LOGGER = "kopf._cogs.clients.watching"

# How kopf words (repr) the errors that mean "the API server is not there":
# aiohttp's connection errors, timeouts, and kopf's 5xx and 429 errors.
UNAVAILABLE_ERRORS = (
    "ClientConnectorError(",
    "ClientConnectionError(",
    "ClientOSError(",
    "ServerDisconnectedError(",
    "ServerTimeoutError(",
    "ConnectionTimeoutError(",
    "SocketTimeoutError(",
    "TimeoutError(",
    "APIServerError(",
    "APITooManyRequestsError(",
)


class EndlessBackoffs:
    """Seconds between attempts for kopf's `settings.networking.error_backoffs`: `first`, then `then` forever.

    An iterable, not an iterator: kopf iterates it afresh for every request, so
    each request starts again from the first backoff.
    """

    def __init__(self, first: tuple[float, ...], then: float) -> None:
        self._first = first
        self._then = then

    def __iter__(self) -> Iterator[float]:
        return itertools.chain(self._first, itertools.repeat(self._then))


class DropUnavailableRetries(logging.Filter):
    """Drops kopf's "Request attempt #N failed" lines whose error means the API server is unavailable."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if not (message.startswith("Request attempt") and " failed" in message):
            return True
        _, _, error = message.rpartition(" -> ")
        return not error.startswith(UNAVAILABLE_ERRORS)


# kopf's own first backoffs, then every 10 s for as long as it takes.
RETRY_FOREVER = EndlessBackoffs((1, 1, 2, 3, 5, 8), then=10)


def quiet_unavailable_retries() -> None:
    logging.getLogger(KOPF_WATCH_LOGGER).addFilter(DropUnavailableRetries())
