"""Two replicas, one Lease: exactly one reconciles, and a new leader takes over when the leader dies or stops.

Each replica is a real operator process under the operator's ServiceAccount and its Lease Role
(config/kustomize/base/rbac/kafka.yaml, bound here in the test's namespace), electing on the stack's API server.
Which one works is read from each process's own metrics. Handover is timed from the signal to the
new leader's first reconcile, and printed (pytest -s shows it).
"""

from __future__ import annotations

import signal
import time
import urllib.error
from pathlib import Path

from kubernetes import client

from controllers.core.leader import LEASE_DURATION_SECONDS, RETRY_PERIOD_SECONDS
from controllers.operator import LOST_LEADERSHIP_EXIT_CODE
from tests.integration.conftest import OPERATOR_NAMESPACE, OPERATOR_SA, RunningOperator
from tests.integration.helpers import apply, events, kafka_topic, unique, wait_for, wait_ready
from tests.integration.operators import Process, grant_lease_role, start

LEASE = "infometis-kafka"
# What a new leader takes, once it holds the Lease, to start kopf, list and finish its first reconcile.
START_SLACK_SECONDS = 4.0
# SIGKILL: the standby waits until the Lease has not changed for its duration since it last saw it change,
# which it sees at its next retry at the latest; then it takes it at its next retry.
KILL_HANDOVER_BOUND = LEASE_DURATION_SECONDS + 2 * RETRY_PERIOD_SECONDS + START_SLACK_SECONDS
# SIGTERM: the leader releases the Lease; the standby takes it at its next retry.
TERM_HANDOVER_BOUND = 2 * RETRY_PERIOD_SECONDS + START_SLACK_SECONDS


def replica(operator: RunningOperator, namespace: str, log: Path) -> Process:
    return start(
        operator.kubeconfig,
        namespace,
        log,
        "--controllers", "kafka",
        "--leader-election", "true",
        "--leader-election-namespace", namespace,
    )  # fmt: skip


def leading(process: Process) -> bool:
    try:
        return process.metric("infometis_leader", lease=LEASE) == 1
    except urllib.error.URLError:  # not serving yet
        return False


def reconciles(process: Process) -> float:
    return process.metric("infometis_reconciles_total")


def handover_seconds(signalled_at: float, successor: Process, timeout: float) -> float:
    """Seconds from the signal to the successor's first reconcile."""
    first = wait_for(
        lambda: time.monotonic() if reconciles(successor) > 0 else None,
        timeout=timeout + 10,
        interval=0.1,
        what="the new leader's first reconcile",
    )
    return first - signalled_at


def created_once(namespace: str, name: str) -> None:
    created = [e for e in events(namespace, name) if e["reason"] == "Created"]
    assert len(created) == 1 and created[0].get("count", 1) == 1, f"Created Events of {name}: {created}"


def holder(namespace: str) -> str:
    lease = client.CoordinationV1Api().read_namespaced_lease(LEASE, namespace)
    return str(lease.spec.holder_identity or "")


def test_one_replica_reconciles_and_another_takes_over_on_sigkill_and_sigterm(
    operator: RunningOperator, session_operator_paused: None, namespace: str, tmp_path: Path
) -> None:
    grant_lease_role(namespace, OPERATOR_SA, OPERATOR_NAMESPACE)
    replicas = [replica(operator, namespace, tmp_path / f"replica-{n}.log") for n in range(2)]
    try:
        wait_for(lambda: sum(leading(r) for r in replicas) == 1, timeout=30, what="one leader")
        [leader] = [r for r in replicas if leading(r)]
        [standby] = [r for r in replicas if r is not leader]
        # A replica waiting for the Lease is alive and ready, and does nothing.
        wait_for(lambda: standby.probe("/readyz") == 200, timeout=30, what="the standby ready")
        assert standby.probe("/healthz") == 200

        topics = {step: unique(step) for step in ("before-handover", "after-sigkill", "after-sigterm")}
        apply(namespace, kafka_topic(topics["before-handover"], partitions=1))
        wait_ready(namespace, topics["before-handover"])
        assert reconciles(leader) > 0
        time.sleep(3)  # a resync or more
        assert leading(leader) and not leading(standby)
        assert (reconciles(standby), standby.metric("infometis_kube_writes_total")) == (0, 0)

        leader.process.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        apply(namespace, kafka_topic(topics["after-sigkill"], partitions=1))
        kill_handover = handover_seconds(killed_at, standby, KILL_HANDOVER_BOUND)
        wait_ready(namespace, topics["after-sigkill"])
        assert leading(standby)

        successor = replica(operator, namespace, tmp_path / "replica-2.log")
        replicas.append(successor)
        wait_for(lambda: successor.probe("/readyz") == 200, timeout=30, what="the third replica ready")
        assert not leading(successor)
        standby.process.send_signal(signal.SIGTERM)
        terminated_at = time.monotonic()
        term_handover = handover_seconds(terminated_at, successor, TERM_HANDOVER_BOUND)
        assert standby.process.wait(timeout=20) == 0, "the leader did not stop cleanly on SIGTERM"
        assert "Lease" in standby.log() and "released" in standby.log()
        apply(namespace, kafka_topic(topics["after-sigterm"], partitions=1))
        wait_ready(namespace, topics["after-sigterm"])
        assert holder(namespace) != "", "the Lease has no holder after the handover"

        print(f"\nhandover after SIGKILL {kill_handover:.1f}s, after SIGTERM {term_handover:.1f}s")
        assert kill_handover <= KILL_HANDOVER_BOUND
        assert term_handover <= TERM_HANDOVER_BOUND
        for name in topics.values():
            created_once(namespace, name)
    finally:
        for process in replicas:
            process.stop(signal.SIGKILL if process.process.poll() is None else signal.SIGTERM, timeout=5)


def test_a_leader_paused_past_the_renew_deadline_exits_without_reconciling(
    operator: RunningOperator, session_operator_paused: None, namespace: str, tmp_path: Path
) -> None:
    """A leader that could not renew in time (here: stopped by SIGSTOP, as a long pause would) must not
    reconcile once it runs again, but exit non-zero; the other replica leads meanwhile."""
    grant_lease_role(namespace, OPERATOR_SA, OPERATOR_NAMESPACE)
    first = replica(operator, namespace, tmp_path / "first.log")
    replicas = [first]
    try:
        wait_for(lambda: leading(first), timeout=30, what="the first replica leading")
        second = replica(operator, namespace, tmp_path / "second.log")
        replicas.append(second)
        wait_for(lambda: second.probe("/readyz") == 200, timeout=30, what="the second replica ready")
        first.process.send_signal(signal.SIGSTOP)
        wait_for(lambda: leading(second), timeout=KILL_HANDOVER_BOUND + 10, what="the second replica leading")
        topic = unique("while-paused")
        apply(namespace, kafka_topic(topic, partitions=1))
        wait_ready(namespace, topic)
        paused_log = len(first.log())
        first.process.send_signal(signal.SIGCONT)
        assert first.process.wait(timeout=10) == LOST_LEADERSHIP_EXIT_CODE, "the paused leader did not exit"
        after_pause = first.log()[paused_log:]
        assert "no longer leading" in after_pause
        assert topic not in after_pause, f"the paused leader acted after its deadline:\n{after_pause}"
        assert leading(second)
        created_once(namespace, topic)
    finally:
        for process in replicas:
            if process.process.poll() is None:
                process.process.send_signal(signal.SIGCONT)
            process.stop(signal.SIGKILL, timeout=5)
