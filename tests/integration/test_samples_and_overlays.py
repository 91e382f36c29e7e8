"""samples/ and the kustomize overlays (config/kustomize/overlays: dev, prod, local) are valid against the real
API server, and each sizes the platform and sets the operator for its environment."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from controllers.core.policy import KindPolicy, load_policies
from controllers.elasticsearchindex.kind import ElasticsearchIndexKind
from controllers.kafkatopic.kind import KafkaTopicKind
from controllers.nififlow.kind import NiFiFlowKind
from controllers.nififlow.model import NiFiFlowPolicy
from controllers.operator import POLICY_MODELS
from tests.integration.conftest import RunningOperator
from tests.integration.helpers import REPO, kubectl, unique, wait_ready

KUSTOMIZE = REPO / "config" / "kustomize"
OVERLAYS = ("dev", "prod", "local")
CLUSTER_SCOPED = {"CustomResourceDefinition", "Namespace", "ClusterRole", "ClusterRoleBinding"}
PLATFORM_NAMESPACE = "data-platform"  # where dev's and prod's platform/ put the platform's objects
KINDS = {kind.resource.kind: kind for kind in (KafkaTopicKind, ElasticsearchIndexKind, NiFiFlowKind)}


def rendered(overlay: str) -> list[dict[str, Any]]:
    return list(yaml.safe_load_all(kubectl("kustomize", str(KUSTOMIZE / "overlays" / overlay)).stdout))


def render(overlay: str) -> dict[str, dict[str, Any]]:
    """The platform's objects (topics, indices, flow) of an environment, by name."""
    return {
        doc["metadata"]["name"]: doc["spec"]
        for doc in rendered(overlay)
        if doc["apiVersion"].startswith("infometis.io/")
    }


def operator_settings(overlay: str) -> tuple[dict[str, int], dict[str, str]]:
    """Each Deployment's replicas, and the settings every controller is given."""
    docs = rendered(overlay)
    replicas = {doc["metadata"]["name"]: doc["spec"]["replicas"] for doc in docs if doc["kind"] == "Deployment"}
    [settings] = [doc["data"] for doc in docs if doc["metadata"]["name"].startswith("infometis-operator-settings")]
    return replicas, settings


def tenancy_policies(overlay: str, folder: Path) -> dict[str, KindPolicy]:
    """The overlay's tenancy policy as the operator reads it, after checking every controller mounts it."""
    docs = rendered(overlay)
    [config_map] = [doc for doc in docs if doc["metadata"]["name"].startswith("infometis-tenancy-policy")]
    deployments = [doc for doc in docs if doc["kind"] == "Deployment"]
    assert deployments
    for deployment in deployments:
        pod = deployment["spec"]["template"]["spec"]
        [container] = pod["containers"]
        env = {variable["name"]: variable.get("value") for variable in container["env"]}
        volumes = {volume["name"]: volume for volume in pod["volumes"]}
        mounts = {mount["name"]: mount["mountPath"] for mount in container["volumeMounts"]}
        assert env["INFOMETIS_TENANCY_POLICY"] == "/etc/infometis/tenancy-policy.yaml"
        assert mounts["tenancy-policy"] == "/etc/infometis"
        assert volumes["tenancy-policy"]["configMap"]["name"] == config_map["metadata"]["name"]
    path = folder / "tenancy-policy.yaml"
    path.write_text(config_map["data"]["tenancy-policy.yaml"])
    return load_policies(path, POLICY_MODELS)


def platform_objects(overlay: str) -> list[dict[str, Any]]:
    return [doc for doc in rendered(overlay) if doc["apiVersion"].startswith("infometis.io/")]


def refusal(policies: dict[str, KindPolicy], namespace: str, doc: dict[str, Any], **spec: Any) -> str | None:
    kind = KINDS[doc["kind"]]
    parsed = kind.spec_model.model_validate({**doc["spec"], **spec})
    return policies[kind.resource.plural].refusal(namespace, doc["metadata"]["name"], parsed)


def kube_server() -> str:
    host: str = client.Configuration.get_default_copy().host
    return host


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


def test_the_overlays_set_each_environments_operator() -> None:
    dev_replicas, dev = operator_settings("dev")
    prod_replicas, prod = operator_settings("prod")
    local_replicas, local = operator_settings("local")
    assert dev_replicas == {f"infometis-{c}": 1 for c in ("kafka", "elasticsearch", "nifi")}
    assert prod_replicas == {f"infometis-{c}": 2 for c in ("kafka", "elasticsearch", "nifi")}
    # Two Pods per controller locally, in two Deployments (one node's network, one Pod per port).
    assert set(local_replicas.values()) == {1} and len(local_replicas) == 6
    assert (dev["INFOMETIS_LOG_LEVEL"], dev["INFOMETIS_LOG_FORMAT"], dev["INFOMETIS_RESYNC_INTERVAL"]) == (
        "DEBUG",
        "text",
        "10s",
    )
    assert (prod["INFOMETIS_LOG_LEVEL"], prod["INFOMETIS_LOG_FORMAT"], prod["INFOMETIS_RESYNC_INTERVAL"]) == (
        "INFO",
        "json",
        "60s",
    )
    for environment in (dev, prod):  # in-cluster service names, not the local stack
        for variable in ("KAFKA_BOOTSTRAP_SERVERS", "ELASTICSEARCH_URL", "NIFI_URL"):
            assert ".svc:" in environment[variable] and "127.0.0.1" not in environment[variable]
    assert local["KAFKA_BOOTSTRAP_SERVERS"] == os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    assert local["ELASTICSEARCH_URL"] == os.environ["ELASTICSEARCH_URL"]
    assert local["NIFI_URL"] == os.environ["NIFI_URL"]
    assert f"https://{local['KUBERNETES_SERVICE_HOST']}:{local['KUBERNETES_SERVICE_PORT']}" == kube_server()


def test_prod_lets_only_the_platforms_namespace_direct_the_default_connections(tmp_path: Path) -> None:
    policies = tenancy_policies("prod", tmp_path)
    objects = platform_objects("prod")
    assert {doc["kind"] for doc in objects} == set(KINDS)
    for doc in objects:
        assert doc["metadata"]["namespace"] == PLATFORM_NAMESPACE
        assert refusal(policies, PLATFORM_NAMESPACE, doc) is None
        assert "may not use the operator's default connection" in (refusal(policies, "team-a", doc) or "")
        assert refusal(policies, "team-a", doc, clusterRef={"name": "team-a-own"}) is None
    assert_only_the_platform_may_use_restricted_components(policies)


def test_dev_lets_any_namespace_use_the_default_connections_but_not_restricted_components(tmp_path: Path) -> None:
    policies = tenancy_policies("dev", tmp_path)
    for doc in platform_objects("dev"):
        assert doc["metadata"]["namespace"] == PLATFORM_NAMESPACE
        assert refusal(policies, PLATFORM_NAMESPACE, doc) is None
        assert refusal(policies, "team-a", doc) is None
    assert_only_the_platform_may_use_restricted_components(policies)


def test_local_lets_the_samples_and_the_pods_test_use_restricted_components(tmp_path: Path) -> None:
    policies = tenancy_policies("local", tmp_path)
    nifi = policies["nififlows"]
    assert isinstance(nifi, NiFiFlowPolicy)
    for namespace in ("default", "infometis-e2e"):
        assert nifi.restricted_refusal(namespace, ["ExecuteProcess"]) is None
    assert nifi.restricted_refusal("team-a", ["ExecuteProcess"]) is not None


def assert_only_the_platform_may_use_restricted_components(policies: dict[str, KindPolicy]) -> None:
    """The sample flow reads Kafka with ExecuteProcess, one of NiFi's restricted components."""
    nifi = policies["nififlows"]
    assert isinstance(nifi, NiFiFlowPolicy)
    assert nifi.restricted_refusal(PLATFORM_NAMESPACE, ["ExecuteProcess"]) is None
    assert "restrictedComponentNamespaces" in (nifi.restricted_refusal("team-a", ["ExecuteProcess"]) or "")


@pytest.fixture(scope="module")
def platform_namespace() -> Iterator[str]:
    """data-platform, which the platform's objects name, exists for this module's server-side dry runs; one made
    here is deleted at the module's end and waited for, so the next run can make it again."""
    found = kubectl("get", "namespace", PLATFORM_NAMESPACE, "-o", "jsonpath={.metadata.deletionTimestamp}", check=False)
    if found.stdout:  # going (an interrupted run's): wait until it has gone
        kubectl("wait", "--for=delete", f"namespace/{PLATFORM_NAMESPACE}", "--timeout=120s")
    made = kubectl("create", "namespace", PLATFORM_NAMESPACE, check=False).returncode == 0
    yield PLATFORM_NAMESPACE
    if made:
        kubectl("delete", "namespace", PLATFORM_NAMESPACE, "--timeout=120s")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_overlay_passes_server_side_validation(
    operator: RunningOperator, namespace: str, platform_namespace: str, overlay: str
) -> None:
    """The whole install (CRDs, roles, Deployments, the platform's objects) as the API server would take it.
    `operator` has installed the CRDs and infometis-system; the platform's objects, which name no namespace,
    go to a fresh one (`default` may hold `make run`'s, which admission would compare them with)."""
    docs = rendered(overlay)
    for doc in docs:
        if doc["kind"] not in CLUSTER_SCOPED:
            doc["metadata"].setdefault("namespace", namespace)
    result = kubectl("apply", "--dry-run=server", "-f", "-", stdin=yaml.safe_dump_all(docs))
    assert "deployment.apps/infometis-kafka" in result.stdout and "(server dry run)" in result.stdout, result.stdout


def test_samples_and_platform_overlays_pass_server_side_validation(
    operator: RunningOperator, namespace: str, platform_namespace: str
) -> None:
    kubectl("apply", "--dry-run=server", "-n", namespace, "-k", str(REPO / "samples"))
    for overlay in ("dev", "prod"):  # in data-platform, as the README applies them
        kubectl(
            "apply",
            "--dry-run=server",
            "-n",
            platform_namespace,
            "-k",
            str(KUSTOMIZE / "overlays" / overlay / "platform"),
        )


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
