"""samples/ and the dev/prod kustomize overlays are valid against the real API server."""

from __future__ import annotations

from typing import Any

import yaml

from tests.integration.conftest import RunningOperator
from tests.integration.helpers import REPO, kubectl, unique, wait_ready


def render(overlay: str) -> dict[str, dict[str, Any]]:
    rendered = kubectl("kustomize", str(REPO / "config" / "kustomize" / "samples" / "overlays" / overlay)).stdout
    return {doc["metadata"]["name"]: doc["spec"] for doc in yaml.safe_load_all(rendered) if "spec" in doc}


def test_the_overlays_size_the_seed_topics_per_environment() -> None:
    dev, prod = render("dev"), render("prod")
    assert (dev["user-events"]["partitions"], dev["user-events"]["replicationFactor"]) == (1, 1)
    assert dev["system-logs"]["replicationFactor"] == 1
    assert (prod["user-events"]["partitions"], prod["user-events"]["replicationFactor"]) == (12, 3)
    assert prod["user-events"]["config"] == {"retention.ms": "86400000", "min.insync.replicas": "2"}


def test_the_overlays_size_the_seed_indices_per_environment() -> None:
    dev, prod = render("dev"), render("prod")
    assert dev["user-profiles"]["settings"] == {
        "number_of_shards": 1,
        "number_of_replicas": 0,
        "refresh_interval": "1s",
    }
    assert dev["user-profiles"]["deletionPolicy"] == dev["system-metrics"]["deletionPolicy"] == "Delete"
    assert prod["user-profiles"]["settings"] == {
        "number_of_shards": 3,
        "number_of_replicas": 2,
        "refresh_interval": "30s",
    }
    assert prod["user-profiles"]["migration"] == {"strategy": "Reindex"}
    assert prod["system-metrics"]["settings"]["number_of_replicas"] == 1
    assert prod["user-profiles"]["deletionPolicy"] == "DeleteIfEmpty"


def test_samples_and_overlays_pass_server_side_validation(operator: RunningOperator, namespace: str) -> None:
    kubectl("apply", "--dry-run=server", "-n", namespace, "-k", str(REPO / "samples"))
    for overlay in ("dev", "prod"):
        path = REPO / "config" / "kustomize" / "samples" / "overlays" / overlay
        kubectl("apply", "--dry-run=server", "-n", namespace, "-k", str(path))


def test_the_sample_indices_become_ready(operator: RunningOperator, namespace: str) -> None:
    indices = [doc for doc in yaml.safe_load_all((REPO / "samples" / "elasticsearchindices.yaml").read_text())]
    for doc in indices:  # renamed: `make run` may hold the samples' own indices on this stack
        doc["metadata"]["name"] = unique(doc["metadata"]["name"])
    kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump_all(indices))
    for doc in indices:
        obj = wait_ready(namespace, doc["metadata"]["name"], plural="elasticsearchindices")
        assert obj["status"]["shards"] == doc["spec"]["settings"]["number_of_shards"]


def test_the_overlays_point_the_sample_flow_at_their_own_servers() -> None:
    for overlay in ("dev", "prod"):
        parameters = {p["name"]: p["value"] for p in render(overlay)["user-events-to-profiles"]["parameters"]}
        assert "127.0.0.1" not in parameters["kafka.bootstrap.servers"], overlay
        assert "127.0.0.1" not in parameters["search.url"], overlay
        assert parameters["kafka.topic"] == "user-events" and parameters["search.index"] == "user-profiles"
