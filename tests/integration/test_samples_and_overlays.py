"""samples/ and the dev/prod kustomize overlays are valid against the real API server."""

from __future__ import annotations

import yaml

from tests.integration.conftest import RunningOperator
from tests.integration.helpers import REPO, kubectl


def render(overlay: str) -> dict[str, dict[str, object]]:
    rendered = kubectl("kustomize", str(REPO / "config" / "kustomize" / "topics" / "overlays" / overlay)).stdout
    return {doc["metadata"]["name"]: doc["spec"] for doc in yaml.safe_load_all(rendered)}


def test_the_overlays_size_the_seed_topics_per_environment() -> None:
    dev, prod = render("dev"), render("prod")
    assert (dev["user-events"]["partitions"], dev["user-events"]["replicationFactor"]) == (1, 1)
    assert dev["system-logs"]["replicationFactor"] == 1
    assert (prod["user-events"]["partitions"], prod["user-events"]["replicationFactor"]) == (12, 3)
    assert prod["user-events"]["config"] == {"retention.ms": "86400000", "min.insync.replicas": "2"}


def test_samples_and_overlays_pass_server_side_validation(operator: RunningOperator, namespace: str) -> None:
    kubectl("apply", "--dry-run=server", "-n", namespace, "-k", str(REPO / "samples"))
    for overlay in ("dev", "prod"):
        path = REPO / "config" / "kustomize" / "topics" / "overlays" / overlay
        kubectl("apply", "--dry-run=server", "-n", namespace, "-k", str(path))
