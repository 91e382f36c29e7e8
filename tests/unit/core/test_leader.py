"""The leader-election rules on their own: who may take the Lease, what is written, when a leader must stop."""

from __future__ import annotations

from controllers.core.leader import (
    LEASE_DURATION_SECONDS,
    RELEASED_LEASE_DURATION_SECONDS,
    RENEW_DEADLINE_SECONDS,
    RETRY_PERIOD_SECONDS,
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
