"""The three kinds together, as `make run` shows them: Kafka records through the sample NiFi flow into an index.

The manifests are the samples' own (samples/), renamed so a run beside `make run`'s
objects touches none of them, and pointed at the stack's servers.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import elasticsearch
import pytest
import yaml
from confluent_kafka import Producer
from kubernetes import client

from tests.integration.conftest import PIPELINE_NAMESPACE, RunningOperator
from tests.integration.helpers import REPO, apply, kubectl, namespace_exists, wait_for, wait_ready

SAMPLES = REPO / "samples"
RECORDS = 40


def sample(file: str, name: str) -> dict[str, Any]:
    documents = yaml.safe_load_all((SAMPLES / file).read_text())
    return next(doc for doc in documents if doc["metadata"]["name"] == name)


@pytest.fixture
def pipeline_namespace() -> Iterator[str]:
    """The namespace the test operator's tenancy policy lets run ExecuteProcess; gone again afterwards."""
    core = client.CoreV1Api()
    if namespace_exists(PIPELINE_NAMESPACE):  # left by a run cut short
        core.delete_namespace(PIPELINE_NAMESPACE)
    wait_for(lambda: not namespace_exists(PIPELINE_NAMESPACE), timeout=120, what="an earlier run's namespace gone")
    core.create_namespace({"metadata": {"name": PIPELINE_NAMESPACE}})
    yield PIPELINE_NAMESPACE
    core.delete_namespace(PIPELINE_NAMESPACE)
    # The flow's deletion stops and drains it and removes its group: the next run needs the name.
    wait_for(lambda: not namespace_exists(PIPELINE_NAMESPACE), timeout=120, what="namespace deleted")


def test_records_produced_to_the_sample_topic_reach_the_sample_index_through_the_sample_flow(
    operator: RunningOperator, pipeline_namespace: str, tmp_path: Path
) -> None:
    suffix = os.urandom(4).hex()
    topic, index, flow = f"events-{suffix}", f"profiles-{suffix}", f"pipeline-{suffix}"

    kafka_topic = sample("kafkatopics.yaml", "user-events")
    kafka_topic["metadata"]["name"] = topic
    search_index = sample("elasticsearchindices.yaml", "user-profiles")
    search_index["metadata"]["name"] = index
    search_index["spec"]["settings"]["number_of_replicas"] = 0  # one search node
    search_index["spec"]["deletionPolicy"] = "Delete"
    flow_config = tmp_path / "flow.json"
    flow_config.write_text((SAMPLES / "flows" / "user-events-to-profiles.json").read_text())
    kubectl("create", "configmap", f"{flow}-definition", "-n", pipeline_namespace, f"--from-file={flow_config}")
    nifi_flow = sample("nififlows.yaml", "user-events-to-profiles")
    nifi_flow["metadata"]["name"] = flow
    nifi_flow["spec"]["flowDefinitionRef"]["name"] = f"{flow}-definition"
    nifi_flow["spec"]["parameters"] = [
        {"name": "kafka.bootstrap.servers", "value": os.environ["KAFKA_BOOTSTRAP_SERVERS"]},
        {"name": "kafka.topic", "value": topic},
        {"name": "kafka.group", "value": f"nifi-{suffix}"},
        {"name": "search.url", "value": os.environ["ELASTICSEARCH_URL"]},
        {"name": "search.index", "value": index},
    ]
    for manifest in (kafka_topic, search_index, nifi_flow):
        apply(pipeline_namespace, manifest)
    wait_ready(pipeline_namespace, topic, timeout=60)
    wait_ready(pipeline_namespace, index, plural="elasticsearchindices", timeout=60)
    running = wait_ready(pipeline_namespace, flow, plural="nififlows", timeout=90)
    assert running["status"]["state"] == "Running"

    producer = Producer({"bootstrap.servers": os.environ["KAFKA_BOOTSTRAP_SERVERS"]})
    for number in range(RECORDS):
        user = f"user-{number}"
        event = {"user_id": user, "email": f"{user}@example.com", "created_at": "2026-11-27T12:00:00Z"}
        producer.produce(topic, json.dumps(event).encode(), key=user.encode())
    # The first user again, changed: keyed by user, it follows the first in the same partition, and the
    # flow writes by user_id, so it replaces that document.
    producer.produce(topic, json.dumps({"user_id": "user-0", "email": "new@example.com"}).encode(), key=b"user-0")
    assert producer.flush(30) == 0

    search = elasticsearch.Elasticsearch(hosts=[os.environ["ELASTICSEARCH_URL"]], request_timeout=30)
    with search:

        def documents() -> int:
            search.indices.refresh(index=index)
            return int(search.count(index=index)["count"])

        wait_for(lambda: documents() == RECORDS, timeout=90, interval=1, what=f"{RECORDS} documents in {index}")
        wait_for(
            lambda: search.get(index=index, id="user-0")["_source"]["email"] == "new@example.com",
            timeout=30,
            what="user-0 replaced by its second record",
        )
        assert search.get(index=index, id="user-7")["_source"] == {
            "user_id": "user-7",
            "email": "user-7@example.com",
            "created_at": "2026-11-27T12:00:00Z",
        }
