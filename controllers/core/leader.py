"""Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection does it.

Several replicas of a controller run; the one holding the Lease reconciles, the
others wait. The rules and timings are client-go's defaults:

- A candidate takes the Lease when there is none (create), when it is released
  (empty holder), or when its record has not changed for leaseDurationSeconds
  as measured by the candidate's own clock since it last saw it change (no
  trust in another machine's clock). Every write carries the resourceVersion
  read, so two candidates cannot both win: one gets 409.
- The leader renews every RETRY_PERIOD. A leader that has not renewed within
  RENEW_DEADLINE of its last renewal stops: it must be gone before the others
  see the Lease expire (LEASE_DURATION after they last saw it renewed, which is
  after the leader sent that renewal), so two never reconcile at once.
- A leader that stops on SIGTERM releases the Lease (empty holder, 1 s), as
  client-go's ReleaseOnCancel, so a waiting candidate takes over at its next
  retry instead of after the lease duration.

The decisions are pure functions of the record and the clocks (tested alone);
`LeaderElector` does the reads and writes through the core's kube client.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from controllers.core import metrics
from controllers.core.kube import KubeApi, KubeError

LEASE_DURATION_SECONDS = 15
RENEW_DEADLINE_SECONDS = 10.0
RETRY_PERIOD_SECONDS = 2.0
# What a released Lease says it lasts (client-go's ReleaseOnCancel writes 1).
RELEASED_LEASE_DURATION_SECONDS = 1

log = logging.getLogger("infometis.leader")


@dataclass(frozen=True)
class LeaseRecord:
    """The Lease's spec, as leaders write it."""

    holder: str  # "" once released
    duration_seconds: int
    acquire_time: str | None
    renew_time: str | None
    transitions: int

    @staticmethod
    def of(spec: Mapping[str, Any]) -> LeaseRecord:
        return LeaseRecord(
            holder=str(spec.get("holderIdentity") or ""),
            duration_seconds=int(spec.get("leaseDurationSeconds") or 0),
            acquire_time=spec.get("acquireTime"),
            renew_time=spec.get("renewTime"),
            transitions=int(spec.get("leaseTransitions") or 0),
        )

    def spec(self) -> dict[str, Any]:
        return {
            "holderIdentity": self.holder,
            "leaseDurationSeconds": self.duration_seconds,
            "acquireTime": self.acquire_time,
            "renewTime": self.renew_time,
            "leaseTransitions": self.transitions,
        }


def may_take(record: LeaseRecord, identity: str, *, observed_at: float, now: float) -> bool:
    """Whether `identity` may write the Lease now: it holds it, or nobody does, or the holder's
    record has not changed for its duration since this candidate last saw it change."""
    if record.holder in ("", identity):
        return True
    return observed_at + record.duration_seconds <= now


def taken(record: LeaseRecord | None, identity: str, now: str) -> LeaseRecord:
    """The record `identity` writes to acquire or renew the Lease at wall time `now`."""
    if record is not None and record.holder == identity:
        return LeaseRecord(identity, LEASE_DURATION_SECONDS, record.acquire_time or now, now, record.transitions)
    transitions = 0 if record is None else record.transitions + (1 if record.holder else 0)
    return LeaseRecord(identity, LEASE_DURATION_SECONDS, now, now, transitions)


def released(record: LeaseRecord, now: str) -> LeaseRecord:
    """What a leader writes on its way out: nobody holds it, and it lasts a second."""
    return LeaseRecord("", RELEASED_LEASE_DURATION_SECONDS, now, now, record.transitions)


def renewal_overdue(last_renewed: float, now: float) -> bool:
    """A leader that has not renewed within the renew deadline must stop leading."""
    return now - last_renewed > RENEW_DEADLINE_SECONDS


def _micro_time(clock: Callable[[], datetime.datetime]) -> str:
    # A Lease's times are MicroTime: RFC 3339 with microseconds.
    return clock().strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class LeaderElector:
    def __init__(
        self,
        kube: KubeApi,
        *,
        namespace: str,
        name: str,
        identity: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._kube = kube
        self._namespace = namespace
        self._name = name
        self.identity = identity
        self._clock = clock
        # The record as last read, when this process saw it change, and the Lease's resourceVersion.
        self._observed: LeaseRecord | None = None
        self._observed_at = 0.0
        self._version = ""
        self._last_renewed: float | None = None
        metrics.LEADER.labels(name).set(0)

    @property
    def where(self) -> str:
        return f"Lease {self._namespace}/{self._name}"

    async def acquire(self) -> None:
        """Return once this process holds the Lease; try every retry period until then."""
        log.info("%s: waiting to lead as %s", self.where, self.identity)
        while True:
            started = self._clock()
            try:
                async with asyncio.timeout(RENEW_DEADLINE_SECONDS):
                    won = await self._try_take()
            except (KubeError, TimeoutError) as error:
                log.warning("%s: could not read or take it: %s", self.where, error or "no answer in time")
                won = False
            if won:
                self._last_renewed = started
                metrics.LEADER.labels(self._name).set(1)
                log.info("%s: leading as %s", self.where, self.identity)
                return
            await asyncio.sleep(RETRY_PERIOD_SECONDS)

    async def keep_leading(self) -> None:
        """Renew every retry period; return when the renew deadline passed without a renewal.

        Each attempt may take only what is left of the deadline, so a request that hangs
        cannot keep this process leading past it.
        """
        assert self._last_renewed is not None, "keep_leading before acquire"
        while True:
            await asyncio.sleep(RETRY_PERIOD_SECONDS)
            started = self._clock()
            left = self._last_renewed + RENEW_DEADLINE_SECONDS - started
            try:
                async with asyncio.timeout(max(left, 0.0)):
                    renewed = await self._try_take()
            except (KubeError, TimeoutError) as error:
                log.warning("%s: renewal failed: %s", self.where, error or "no answer in time")
                renewed = False
            if renewed:
                self._last_renewed = started
            elif renewal_overdue(self._last_renewed, self._clock()):
                metrics.LEADER.labels(self._name).set(0)
                log.error(
                    "%s: not renewed for %.0fs (deadline %.0fs): no longer leading",
                    self.where,
                    self._clock() - self._last_renewed,
                    RENEW_DEADLINE_SECONDS,
                )
                return

    async def release(self) -> None:
        """Give the Lease up (if still ours) so another candidate takes it at once."""
        metrics.LEADER.labels(self._name).set(0)
        if self._observed is None or self._observed.holder != self.identity:
            return
        try:
            async with asyncio.timeout(RETRY_PERIOD_SECONDS):
                await self._kube.replace_lease(
                    self._namespace,
                    self._name,
                    self._version,
                    released(self._observed, _micro_time(_utc_now)).spec(),
                )
        except (KubeError, TimeoutError) as error:
            log.warning("%s: could not release it (it expires by itself): %s", self.where, error or "no answer")
            return
        log.info("%s: released", self.where)

    async def _try_take(self) -> bool:
        """One read and, if the rules allow, one write; whether this process now holds the Lease."""
        lease = await self._kube.read_lease(self._namespace, self._name)
        now = _micro_time(_utc_now)
        if lease is None:
            try:
                created = await self._kube.create_lease(
                    self._namespace, self._name, taken(None, self.identity, now).spec()
                )
            except KubeError as error:
                if error.status == 409:  # another candidate created it first
                    return False
                raise
            if created is None:
                return False
            self._observe(created)
            return True
        self._observe(lease)
        assert self._observed is not None
        if not may_take(self._observed, self.identity, observed_at=self._observed_at, now=self._clock()):
            return False
        try:
            written = await self._kube.replace_lease(
                self._namespace, self._name, self._version, taken(self._observed, self.identity, now).spec()
            )
        except KubeError as error:
            if error.status == 409:  # written by another since our read
                return False
            raise
        if written is None:  # deleted since our read
            return False
        self._observe(written)
        return True

    def _observe(self, lease: Mapping[str, Any]) -> None:
        record = LeaseRecord.of(lease.get("spec") or {})
        if record != self._observed:
            if record.holder not in ("", self.identity) and (
                self._observed is None or self._observed.holder != record.holder
            ):
                log.info("%s: held by %s", self.where, record.holder)
            self._observed, self._observed_at = record, self._clock()
        self._version = str(lease["metadata"]["resourceVersion"])
