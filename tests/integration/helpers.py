"""Small helpers the integration tests share: kubectl, waiting, reading objects and Events."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest
import yaml
from confluent_kafka import KafkaException, TopicCollection
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType
from kubernetes import client

if TYPE_CHECKING:
    from tests.integration.conftest import RunningOperator

REPO = Path(__file__).resolve().parents[2]
GROUP, VERSION, PLURAL = "infometis.io", "v1alpha1", "kafkatopics"
T = TypeVar("T")


def namespace_exists(name: str) -> bool:
    try:
        client.CoreV1Api().read_namespace(name)
    except client.ApiException as error:
        if error.status == 404:
            return False
        raise
    return True


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def kubectl(*args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["kubectl", *args], input=stdin, capture_output=True, text=True, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}): {result.stderr}")
    return result


def stack_command(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """hack/stack, failing with its own words; its progress messages are on stderr."""
    result = subprocess.run([str(REPO / "hack" / "stack"), *args], capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"hack/stack {' '.join(args)} failed:\n{result.stderr}"
    return result


def run_stack(*args: str, timeout: float = 300) -> str:
    return stack_command(*args, timeout=timeout).stdout


def node_status_row() -> list[str]:
    """`hack/stack status`'s row for the node: name, state, pid, address (or why it cannot run)."""
    rows = [line.split() for line in run_stack("status").splitlines()]
    return next(row for row in rows if row and row[0] == "node")


def require_node() -> None:
    """Skip only where the machine cannot run the stack's node (no cgroup v1); fail when it could but does not
    run, since `make test` starts it."""
    row = node_status_row()
    if row[1] == "unsupported":
        pytest.skip(f"this machine cannot run the stack's node: {' '.join(row[3:])}")
    if row[1] != "ready":
        pytest.fail("the node is not running; `hack/stack up --node` starts it (make test does)")


def stack_environment() -> dict[str, str]:
    """What `hack/stack env` exports, PATH expanded."""
    exports = {}
    for line in run_stack("env").splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        exports[key] = value.replace("$PATH", os.environ["PATH"])
    return exports


def wait_for(condition: Callable[[], T], *, timeout: float = 60, interval: float = 0.25, what: str = "") -> T:
    """Poll until `condition()` is truthy; its value, or an AssertionError naming `what`."""
    deadline = time.monotonic() + timeout
    last: T = condition()
    while not last:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what or condition}: last saw {last!r}")
        time.sleep(interval)
        last = condition()
    return last


def kafka_topic(name: str, partitions: int = 1, replication_factor: int = 1, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "KafkaTopic",
        "metadata": {"name": name},
        "spec": {"partitions": partitions, "replicationFactor": replication_factor, **spec},
    }


def apply(namespace: str, manifest: Mapping[str, Any]) -> None:
    kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(dict(manifest)))


def apply_fails(namespace: str, manifest: Mapping[str, Any]) -> str:
    """Apply expecting the API server to refuse; its message."""
    result = kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(dict(manifest)), check=False)
    assert result.returncode != 0, f"the API server accepted {manifest}"
    return result.stderr


def admitted(namespace: str, manifest: Mapping[str, Any]) -> None:
    """The API server accepts this manifest (a server-side dry run: admission runs, nothing is stored)."""
    kubectl("apply", "--dry-run=server", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(dict(manifest)))


def custom_objects() -> client.CustomObjectsApi:
    return client.CustomObjectsApi()


def get(namespace: str, name: str, plural: str = PLURAL) -> dict[str, Any]:
    obj: dict[str, Any] = custom_objects().get_namespaced_custom_object(GROUP, VERSION, namespace, plural, name)
    return obj


def exists(namespace: str, name: str, plural: str = PLURAL) -> bool:
    try:
        get(namespace, name, plural)
    except client.ApiException as error:
        if error.status == 404:
            return False
        raise
    return True


def patch_spec(namespace: str, name: str, spec: Mapping[str, Any], plural: str = PLURAL) -> None:
    custom_objects().patch_namespaced_custom_object(GROUP, VERSION, namespace, plural, name, {"spec": dict(spec)})


def annotate(namespace: str, name: str, key: str, value: str) -> None:
    custom_objects().patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, name, {"metadata": {"annotations": {key: value}}}
    )


def condition(obj: Mapping[str, Any], kind: str) -> dict[str, Any] | None:
    return next((c for c in (obj.get("status") or {}).get("conditions", []) if c["type"] == kind), None)


def ready_reason(obj: Mapping[str, Any]) -> tuple[str, str] | None:
    """(status, reason) of Ready, only once the current generation was handled."""
    ready = condition(obj, "Ready")
    if ready is None or (obj.get("status") or {}).get("observedGeneration") != obj["metadata"]["generation"]:
        return None
    return ready["status"], ready["reason"]


def wait_ready(namespace: str, name: str, timeout: float = 60, plural: str = PLURAL) -> dict[str, Any]:
    wait_for(
        lambda: ready_reason(get(namespace, name, plural)) == ("True", "Succeeded"),
        timeout=timeout,
        what=f"{name} Ready (now {ready_reason(get(namespace, name, plural))})",
    )
    return get(namespace, name, plural)


def wait_reason(
    namespace: str, name: str, status: str, reason: str, timeout: float = 60, plural: str = PLURAL
) -> dict[str, Any]:
    wait_for(
        lambda: ready_reason(get(namespace, name, plural)) == (status, reason),
        timeout=timeout,
        what=f"{name} Ready={status} reason {reason} (now {ready_reason(get(namespace, name, plural))})",
    )
    return get(namespace, name, plural)


def events(namespace: str, name: str) -> list[dict[str, Any]]:
    """The object's Events, oldest first, as kubectl shows them."""
    listing = json.loads(kubectl("get", "events", "-n", namespace, "-o", "json").stdout)
    mine = [e for e in listing["items"] if e["involvedObject"]["name"] == name]
    return sorted(mine, key=lambda e: int(e["metadata"]["resourceVersion"]))


def event_reasons(namespace: str, name: str) -> list[str]:
    return [e["reason"] for e in events(namespace, name)]


# --- Kafka, acting as the real service (and as "someone else" changing it) ---------------


def describe(admin: AdminClient, topic: str) -> dict[str, Any] | None:
    """Partitions, per-partition replicas and topic-level config overrides; None if absent."""
    resource = ConfigResource(ResourceType.TOPIC, topic)
    try:
        described = admin.describe_topics(TopicCollection([topic]))[topic].result(timeout=15)
        entries = admin.describe_configs([resource])[resource].result(timeout=15)
    except KafkaException as error:
        if error.args[0].name() == "UNKNOWN_TOPIC_OR_PART":  # absent, or deleted between the two calls
            return None
        raise
    return {
        "id": str(described.topic_id),
        "partitions": len(described.partitions),
        "replicas": [[n.id for n in p.replicas] for p in sorted(described.partitions, key=lambda p: p.id)],
        "overrides": {k: e.value for k, e in entries.items() if e.source == 1},  # DYNAMIC_TOPIC_CONFIG
        "retention.ms": entries["retention.ms"].value,
    }


def described_as(
    admin: AdminClient, topic: str, check: Callable[[dict[str, Any]], bool], *, timeout: float = 15
) -> dict[str, Any]:
    """The topic's description once `check` holds for it.

    Brokers learn of the controller's changes a moment after the Admin call that made them returns,
    so the broker answering right after an operator action may still describe the state before it.
    """
    deadline = time.monotonic() + timeout
    while True:
        topic_now = describe(admin, topic)
        if topic_now is not None and check(topic_now):
            return topic_now
        if time.monotonic() > deadline:
            raise AssertionError(f"topic {topic} never matched within {timeout:.0f}s; last described as {topic_now}")
        time.sleep(0.25)


def set_config_out_of_band(admin: AdminClient, topic: str, key: str, value: str) -> None:
    """Change a topic config behind the operator's back, as another tool would."""
    entry = ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)
    resource = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[entry])
    admin.incremental_alter_configs([resource])[resource].result(timeout=15)


def create_secret(namespace: str, name: str, data: dict[str, str]) -> None:
    encoded = {key: base64.b64encode(value.encode()).decode() for key, value in data.items()}
    client.CoreV1Api().create_namespaced_secret(namespace, {"metadata": {"name": name}, "data": encoded})


def kafka_requests(metrics_url: str, operation: str) -> float:
    """How many batched Kafka calls of this operation the operator made, from its /metrics."""
    with urllib.request.urlopen(metrics_url, timeout=5) as response:
        text = response.read().decode()
    for line in text.splitlines():
        if line.startswith(f'infometis_service_calls_total{{operation="{operation}",service="kafka"}}'):
            return float(line.split()[-1])
    return 0.0


def replace_secret(namespace: str, name: str, data: dict[str, str]) -> None:
    encoded = {key: base64.b64encode(value.encode()).decode() for key, value in data.items()}
    client.CoreV1Api().replace_namespaced_secret(name, namespace, {"metadata": {"name": name}, "data": encoded})


def everything_visible(namespace: str, operator: RunningOperator, plural: str = PLURAL) -> str:
    """Status, Events, the operator's log and its metrics: every place a secret value could leak to."""
    objects = kubectl("get", plural, "-n", namespace, "-o", "json").stdout
    events = json.dumps(client.CoreV1Api().list_namespaced_event(namespace).to_dict(), default=str)
    with urllib.request.urlopen(operator.metrics_url, timeout=5) as response:
        metrics = response.read().decode()
    return objects + events + operator.log() + metrics


def secured_connection(stack: dict[str, str], **overrides: str) -> dict[str, str]:
    """Client properties for the SASL_SSL listener, the CA given inline as a Secret would carry it."""
    return {
        "bootstrap.servers": stack["KAFKA_SECURE_BOOTSTRAP_SERVERS"],
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "PLAIN",
        "sasl.username": stack["KAFKA_SASL_USERNAME"],
        "sasl.password": stack["KAFKA_SASL_PASSWORD"],
        "ssl.ca.pem": Path(stack["KAFKA_SECURE_CA_FILE"]).read_text(),
        **overrides,
    }


def service_requests(metrics_url: str, service: str) -> dict[str, float]:
    """The protocol requests the operator sent to a service, by request type, from its /metrics."""
    with urllib.request.urlopen(metrics_url, timeout=5) as response:
        text = response.read().decode()
    counts = {}
    prefix = "infometis_service_protocol_requests_total{"
    for line in text.splitlines():
        if line.startswith(prefix) and f'service="{service}"' in line:
            labels = line[len(prefix) : line.index("}")]
            request = next(
                part.split("=", 1)[1].strip('"') for part in labels.split(",") if part.startswith("request=")
            )
            counts[request] = float(line.split()[-1])
    return counts
