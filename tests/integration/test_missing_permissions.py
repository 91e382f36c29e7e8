"""A controller whose role is missing says which calls it may not make, and goes on once it may.

The operator runs as a ServiceAccount of its own with no role at first, as a
Deployment does whose ClusterRoleBinding is gone: /readyz fails naming the
denied calls, one log line says the same, liveness holds (no restart loop),
and once the controller's real ClusterRole (config/kustomize/base/rbac) is
bound it becomes ready and reconciles without a restart.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import (
    RESYNC_SECONDS,
    RunningOperator,
    _free_port,
    service_account_kubeconfig,
)
from tests.integration.helpers import REPO, apply, kubectl, unique, wait_for, wait_ready

ACCOUNT = "kafka-controller"


@pytest.fixture
def unprivileged_kafka_controller(
    namespace: str, tmp_path: Path, session_operator_paused: None
) -> Iterator[RunningOperator]:
    """The kafka controller for one namespace, as a ServiceAccount bound to nothing (yet)."""
    kubectl("create", "serviceaccount", ACCOUNT, "-n", namespace)
    kubeconfig = tmp_path / "kubeconfig"
    service_account_kubeconfig(kubeconfig, ACCOUNT, namespace)
    log_path, port = tmp_path / "operator.log", _free_port()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable, "-m", "controllers",
                "--controllers", "kafka",
                "--namespace", namespace,
                "--resync-interval", f"{RESYNC_SECONDS}s",
                "--metrics-port", "0",
                "--health-port", str(port),
            ],
            cwd=REPO,
            env={**os.environ, "KUBECONFIG": str(kubeconfig)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    yield RunningOperator(process, log_path, "", kubeconfig, f"http://127.0.0.1:{port}")
    process.terminate()
    process.wait(timeout=20)


def test_a_controller_without_its_role_names_the_denied_calls_and_recovers_when_granted(
    unprivileged_kafka_controller: RunningOperator, namespace: str
) -> None:
    running = unprivileged_kafka_controller
    topic = unique("perm")
    manifest = {"apiVersion": "infometis.io/v1alpha1", "kind": "KafkaTopic", "metadata": {"name": topic}}
    apply(namespace, {**manifest, "spec": {"partitions": 1, "replicationFactor": 1}})

    def denied() -> str:
        check: str = running.wait_probe("/readyz", 503)["checks"]["kafkatopic-permissions"]
        return check if check.startswith("permission denied") else ""

    problem = wait_for(denied, timeout=30, what="the permissions check to fail /readyz")
    for call in (
        "list kafkatopics.infometis.io",
        "watch kafkatopics.infometis.io",
        "patch kafkatopics/status.infometis.io",
        "create events",
        "get secrets",
    ):
        assert f"{call} in namespace {namespace}" in problem, problem
    assert (
        f"the KafkaTopic controller lacks permissions: the ServiceAccount may not list kafkatopics.infometis.io "
        f"in namespace {namespace}" in running.log()
    )
    assert running.probe("/healthz")[0] == 200 and running.process.poll() is None  # alive: nothing to restart for

    # The controller's own ClusterRole, bound in this namespace only.
    kubectl("create", "rolebinding", "kafka-controller", "-n", namespace, "--clusterrole=infometis-kafka",
            f"--serviceaccount={namespace}:{ACCOUNT}")  # fmt: skip
    running.wait_probe("/readyz", 200, timeout=60)  # checked every 30 s
    assert "the KafkaTopic controller has every permission it needs again" in running.log()
    wait_ready(namespace, topic, timeout=60)
    assert running.process.poll() is None
    assert "Traceback" not in running.log(), running.log()
