"""Operator processes of a test's own, with their metrics and probes, for the leader-election,
metrics and log tests (the session's operator is paused meanwhile)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.helpers import REPO, kubectl

# The Kafka controller's roles; its Lease Role is what these tests' `--controllers kafka` processes need.
KAFKA_ROLES = REPO / "config" / "kustomize" / "base" / "rbac" / "kafka.yaml"
LEASE_ROLE_NAME = "infometis-kafka-leader-election"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Process:
    process: subprocess.Popen[bytes]
    log_path: Path
    metrics_url: str
    health_url: str

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def metric(self, name: str, **labels: str) -> float:
        """The sum of the samples of `name` whose labels include `labels` (0 when there is none)."""
        with urllib.request.urlopen(self.metrics_url, timeout=5) as response:
            text = response.read().decode()
        return sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
        )

    def probe(self, path: str) -> int:
        try:
            with urllib.request.urlopen(self.health_url + path, timeout=5) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            return error.code
        except urllib.error.URLError:
            return 0

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 20) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


def start(kubeconfig: Path, namespace: str, log_path: Path, *args: str) -> Process:
    """`python -m controllers` for one namespace, as the operator's ServiceAccount, resyncing every 2 s."""
    metrics_port, health_port = free_port(), free_port()
    with log_path.open("ab") as out:
        process = subprocess.Popen(
            [
                sys.executable, "-m", "controllers",
                "--namespace", namespace,
                "--resync-interval", "2s",
                "--metrics-port", str(metrics_port),
                "--health-port", str(health_port),
                *args,
            ],
            cwd=REPO,
            env={**os.environ, "KUBECONFIG": str(kubeconfig)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    return Process(process, log_path, f"http://127.0.0.1:{metrics_port}/metrics", f"http://127.0.0.1:{health_port}")


def grant_lease_role(namespace: str, service_account: str, service_account_namespace: str) -> None:
    """The Kafka controller's Lease Role (config/kustomize/base/rbac/kafka.yaml), in `namespace` instead of
    its own and bound to the given ServiceAccount: the test's Lease is its own, apart from any operator
    deployed on the stack, under the same rules."""
    role = next(
        document
        for document in yaml.safe_load_all(KAFKA_ROLES.read_text())
        if document["kind"] == "Role" and document["metadata"]["name"] == LEASE_ROLE_NAME
    )
    role["metadata"]["namespace"] = namespace
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": LEASE_ROLE_NAME, "namespace": namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": LEASE_ROLE_NAME},
        "subjects": [{"kind": "ServiceAccount", "name": service_account, "namespace": service_account_namespace}],
    }
    kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all([role, binding]))
