"""Crash points for the crash-safety tests: the operator SIGKILLs itself where a test asks.

A test starts an operator with INFOMETIS_CRASH_AT=<point>[,<point>...]; when the
operator reaches a named point it dies at once, as if killed from outside at that
instant (no cleanup, no status write). Unset, every point is a no-op.
"""

from __future__ import annotations

import os
import signal

CRASH_AT_ENV = "INFOMETIS_CRASH_AT"
_POINTS = frozenset(point for point in os.environ.get(CRASH_AT_ENV, "").split(",") if point)


def crash_point(name: str) -> None:
    if name in _POINTS:
        os.kill(os.getpid(), signal.SIGKILL)
