"""The leader-election rules on their own: who may take the Lease, what is written, when a leader must stop."""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Mapping
from typing import Any

import pytest

from controllers.core import leader
from controllers.core.kube import KubeError
from controllers.core.leader import (
    LEASE_DURATION_SECONDS,
    RELEASED_LEASE_DURATION_SECONDS,
    RENEW_DEADLINE_SECONDS,
    RETRY_PERIOD_SECONDS,
    LeaderElector,
    LeaseRecord,
    may_take,
    released,
    renewal_overdue,
    taken,
)

NOW = "2026-11-27T20:00:00.000000Z"
LATER = "2026-11-27T20:00:02.000000Z"


def held_by(holder: str, transitions: int = 3) -> LeaseRecord:
    return LeaseRecord(holder, LEASE_DURATION_SECONDS, NOW, NOW, transitions)


def test_the_timings_are_client_gos_and_a_leader_stops_before_others_may_take_over() -> None:
    assert (LEASE_DURATION_SECONDS, RENEW_DEADLINE_SECONDS, RETRY_PERIOD_SECONDS) == (15, 10.0, 2.0)
    # The last renewal attempt may start a retry period after the deadline's check began: still inside the lease.
    assert RENEW_DEADLINE_SECONDS + RETRY_PERIOD_SECONDS < LEASE_DURATION_SECONDS


def test_a_lease_held_by_another_is_taken_only_once_unchanged_for_its_duration_as_seen_here() -> None:
    other = held_by("pod-a")
    assert not may_take(other, "pod-b", observed_at=100.0, now=100.0)
    assert not may_take(other, "pod-b", observed_at=100.0, now=100.0 + LEASE_DURATION_SECONDS - 0.001)
    assert may_take(other, "pod-b", observed_at=100.0, now=100.0 + LEASE_DURATION_SECONDS)


def test_the_holder_renews_at_any_time_and_a_released_lease_is_free_at_once() -> None:
    assert may_take(held_by("pod-a"), "pod-a", observed_at=100.0, now=100.0)
    assert may_take(released(held_by("pod-a"), NOW), "pod-b", observed_at=100.0, now=100.0)


def test_the_duration_that_counts_is_the_one_the_record_says() -> None:
    short = LeaseRecord("pod-a", 1, NOW, NOW, 0)
    assert may_take(short, "pod-b", observed_at=100.0, now=101.0)


def test_renewing_keeps_the_acquire_time_and_the_transitions() -> None:
    renewed = taken(held_by("pod-a", transitions=3), "pod-a", LATER)
    assert renewed == LeaseRecord("pod-a", LEASE_DURATION_SECONDS, NOW, LATER, 3)


def test_taking_over_counts_a_transition_and_starts_a_new_acquire_time() -> None:
    assert taken(held_by("pod-a", transitions=3), "pod-b", LATER) == LeaseRecord(
        "pod-b", LEASE_DURATION_SECONDS, LATER, LATER, 4
    )


def test_taking_a_released_or_new_lease_counts_no_transition() -> None:
    assert taken(released(held_by("pod-a", 3), NOW), "pod-b", LATER).transitions == 3
    assert taken(None, "pod-b", LATER) == LeaseRecord("pod-b", LEASE_DURATION_SECONDS, LATER, LATER, 0)


def test_releasing_empties_the_holder_and_shortens_the_lease() -> None:
    assert released(held_by("pod-a", 3), LATER) == LeaseRecord("", RELEASED_LEASE_DURATION_SECONDS, LATER, LATER, 3)


def test_a_leader_past_the_renew_deadline_must_stop() -> None:
    assert not renewal_overdue(last_renewed=100.0, now=100.0 + RENEW_DEADLINE_SECONDS)
    assert renewal_overdue(last_renewed=100.0, now=100.0 + RENEW_DEADLINE_SECONDS + 0.001)


def test_a_record_reads_back_as_written() -> None:
    record = held_by("pod-a")
    assert LeaseRecord.of(record.spec()) == record
    assert LeaseRecord.of({}) == LeaseRecord("", 0, None, None, 0)


class Leases:
    """Leases held in memory as the API server keeps them: a resourceVersion per write, 409 on a stale one."""

    def __init__(self) -> None:
        self.leases: dict[str, dict[str, Any]] = {}
        self.version = 0
        self.failing = False

    def _stored(self, name: str, spec: Mapping[str, Any]) -> dict[str, Any]:
        self.version += 1
        self.leases[name] = {"metadata": {"name": name, "resourceVersion": str(self.version)}, "spec": dict(spec)}
        return copy.deepcopy(self.leases[name])

    async def read_lease(self, namespace: str, name: str) -> dict[str, Any] | None:
        if self.failing:
            raise KubeError(0, "no answer")
        return copy.deepcopy(self.leases.get(name))

    async def create_lease(self, namespace: str, name: str, spec: Mapping[str, Any]) -> dict[str, Any]:
        if name in self.leases:
            raise KubeError(409, "already exists")
        return self._stored(name, spec)

    async def replace_lease(
        self, namespace: str, name: str, resource_version: str, spec: Mapping[str, Any]
    ) -> dict[str, Any]:
        if self.failing:
            raise KubeError(0, "no answer")
        if self.leases[name]["metadata"]["resourceVersion"] != resource_version:
            raise KubeError(409, "the object has been modified")
        return self._stored(name, spec)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def elector(leases: Leases, identity: str, clock: Clock) -> LeaderElector:
    return LeaderElector(leases, namespace="ns", name="infometis-kafka", identity=identity, clock=clock)  # type: ignore[arg-type]


async def test_a_candidate_takes_a_lease_left_unrenewed_for_its_duration_and_never_two_at_once() -> None:
    leases, clock_a, clock_b = Leases(), Clock(), Clock()
    a, b = elector(leases, "pod-a", clock_a), elector(leases, "pod-b", clock_b)
    assert await a._try_take()
    assert not await b._try_take()
    clock_b.now += LEASE_DURATION_SECONDS - 1
    assert not await b._try_take()  # unchanged, but not for long enough
    assert await a._try_take()  # a renews: b sees a change and starts counting again
    clock_b.now += LEASE_DURATION_SECONDS - 1
    assert not await b._try_take()
    clock_b.now += LEASE_DURATION_SECONDS
    assert await b._try_take()
    assert leases.leases["infometis-kafka"]["spec"]["holderIdentity"] == "pod-b"
    assert leases.leases["infometis-kafka"]["spec"]["leaseTransitions"] == 1
    assert not await a._try_take()  # a sees b's record as new: it must wait a whole duration


async def test_a_released_lease_is_taken_at_the_next_try() -> None:
    leases, clock = Leases(), Clock()
    a, b = elector(leases, "pod-a", clock), elector(leases, "pod-b", clock)
    assert await a._try_take()
    a._last_renewed = clock.now
    assert not await b._try_take()
    await a.release()
    assert leases.leases["infometis-kafka"]["spec"]["holderIdentity"] == ""
    assert await b._try_take()


async def test_a_leader_that_cannot_renew_stops_leading_within_the_renew_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(leader, "RETRY_PERIOD_SECONDS", 0.01)
    leases = Leases()
    a = elector(leases, "pod-a", Clock())
    a._clock = time.monotonic  # real time, with a short deadline
    monkeypatch.setattr(leader, "RENEW_DEADLINE_SECONDS", 0.2)
    # The deadline runs from the start of the last renewal, inside acquire: timed from before it.
    started = time.monotonic()
    await a.acquire()
    leases.failing = True
    await asyncio.wait_for(a.keep_leading(), timeout=5)
    assert 0.2 <= time.monotonic() - started < 1.0
    assert not a.leading()
