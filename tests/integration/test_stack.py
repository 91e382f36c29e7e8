"""hack/stack: idempotent `up`, and `status` and `env` that tell the truth."""

from __future__ import annotations

import time
from pathlib import Path

from tests.integration.helpers import run_stack, stack_command


def running_pids() -> dict[str, str]:
    rows = [line.split() for line in run_stack("status").splitlines()[1:] if line.strip()]
    pids = {row[0]: row[2] for row in rows if len(row) >= 4 and row[1] in ("ready", "starting", "stopped")}
    assert {"etcd", "kube-apiserver", "kafka-1"} <= pids.keys(), pids
    return pids


def test_up_again_reuses_what_runs(broker_ids: list[int]) -> None:
    before = running_pids()
    started = time.monotonic()
    run_stack("up", "--kafka-brokers", str(len(broker_ids)))
    assert time.monotonic() - started < 30
    assert running_pids() == before


def test_up_restarts_a_server_that_runs_with_an_outdated_definition(broker_ids: list[int]) -> None:
    """As after pulling a change to the stack: the next `up` restarts that server and keeps the rest."""
    data = next(line.removeprefix("data: ") for line in run_stack("status").splitlines() if line.startswith("data: "))
    before = running_pids()
    (Path(data) / "pids" / "kube-controller-manager.definition").write_text("an older definition")

    progress = stack_command("up", "--kafka-brokers", str(len(broker_ids))).stderr

    assert "restarting kube-controller-manager" in progress
    after = running_pids()
    assert after["kube-controller-manager"] != before["kube-controller-manager"]
    assert {k: v for k, v in after.items() if k != "kube-controller-manager"} == {
        k: v for k, v in before.items() if k != "kube-controller-manager"
    }


def test_status_names_every_server_ready_and_the_log_folder() -> None:
    status = run_stack("status")
    for server in ("etcd", "kube-apiserver", "kube-controller-manager", "kafka-1"):
        assert any(line.split()[:2] == [server, "ready"] for line in status.splitlines()), status
    assert "logs: " in status


def test_env_exports_what_clients_need() -> None:
    lines = run_stack("env").splitlines()
    exports = dict(line.removeprefix("export ").split("=", 1) for line in lines)
    assert exports["KUBECONFIG"].endswith("kubeconfig")
    assert exports["KAFKA_BOOTSTRAP_SERVERS"].startswith("127.0.0.1:")
    assert exports["KAFKA_SECURE_BOOTSTRAP_SERVERS"].startswith("127.0.0.1:")
    assert exports["KAFKA_SECURE_CA_FILE"].endswith("ca.crt")
    assert exports["KAFKA_SASL_USERNAME"] and len(exports["KAFKA_SASL_PASSWORD"]) == 32
    # The user that ACLs confine to topics under a prefix (test_stack_acls.py).
    assert exports["KAFKA_TENANT_USERNAME"] not in ("", exports["KAFKA_SASL_USERNAME"])
    assert len(exports["KAFKA_TENANT_PASSWORD"]) == 32
    assert exports["KAFKA_TENANT_PASSWORD"] != exports["KAFKA_SASL_PASSWORD"]
    assert exports["KAFKA_TENANT_TOPIC_PREFIX"]
