"""Changes the services cannot make are refused by the API server (schema and CEL rules), with its message."""

from __future__ import annotations

import pytest
import yaml

from tests.integration.conftest import RunningOperator
from tests.integration.helpers import apply, apply_fails, kafka_topic, kubectl, unique, wait_ready
from tests.integration.search import search_index


def test_decreasing_partitions_is_refused_at_admission(operator: RunningOperator, namespace: str) -> None:
    name = unique("shrink")
    apply(namespace, kafka_topic(name, 4, 1))
    wait_ready(namespace, name)
    error = apply_fails(namespace, kafka_topic(name, 2, 1))
    assert "partitions cannot be decreased: Kafka cannot remove partitions from a topic" in error


def test_renaming_the_topic_is_refused_at_admission(operator: RunningOperator, namespace: str) -> None:
    name = unique("rename")
    apply(namespace, kafka_topic(name, 1, 1))
    error = apply_fails(namespace, kafka_topic(name, 1, 1, topicName="another-name"))
    assert "the topic name (spec.topicName, or metadata.name when absent) is immutable" in error


def test_setting_topic_name_to_the_same_effective_name_is_allowed(operator: RunningOperator, namespace: str) -> None:
    name = unique("same")
    apply(namespace, kafka_topic(name, 1, 1))
    apply(namespace, kafka_topic(name, 1, 1, topicName=name))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"partitions": 0, "replicationFactor": 1}, "should be greater than or equal to 1"),
        ({"partitions": 1, "replicationFactor": 0}, "should be greater than or equal to 1"),
        ({"partitions": 1}, "spec.replicationFactor: Required value"),
        ({"partitions": 1, "replicationFactor": 1, "topicName": "bad name!"}, "spec.topicName in body should match"),
        ({"partitions": 1, "replicationFactor": 1, "topicName": ".."}, "'.' and '..' are not valid topic names"),
        ({"partitions": 1, "replicationFactor": 1, "deletionPolicy": "Orphan"}, 'supported values: "Retain", "Delete"'),
        ({"partitions": 1, "replicationFactor": 1, "config": {"retention.ms": 1000}}, "must be of type string"),
    ],
)
def test_invalid_specs_are_refused_with_the_reason(
    operator: RunningOperator, namespace: str, spec: dict[str, object], message: str
) -> None:
    manifest = {
        "apiVersion": "infometis.io/v1alpha1",
        "kind": "KafkaTopic",
        "metadata": {"name": unique("invalid")},
        "spec": spec,
    }
    assert message in apply_fails(namespace, manifest)


def test_a_name_too_long_for_kafka_needs_an_explicit_topic_name(operator: RunningOperator, namespace: str) -> None:
    long_name = "t" + "x" * 250
    error = apply_fails(namespace, kafka_topic(long_name, 1, 1))
    assert "Kafka's limit for topic names: set spec.topicName" in error
    apply(namespace, kafka_topic(long_name, 1, 1, topicName=unique("short")))


def test_defaults_are_visible_on_the_stored_object(operator: RunningOperator, namespace: str) -> None:
    name = unique("defaults")
    apply(namespace, kafka_topic(name, 1, 1))
    spec = yaml.safe_load(kubectl("get", "kafkatopic", name, "-n", namespace, "-o", "yaml").stdout)["spec"]
    assert (spec["deletionPolicy"], spec["driftPolicy"], spec["suspend"]) == ("Retain", "Correct", False)


@pytest.mark.parametrize("topic_name", ["__consumer_offsets", "__transaction_state", "__cluster_metadata"])
def test_kafka_internal_topics_are_refused_at_admission(
    operator: RunningOperator, namespace: str, topic_name: str
) -> None:
    manifest = kafka_topic(unique("internal"), 1, 1, topicName=topic_name, config={"retention.ms": "1000"})
    error = apply_fails(namespace, manifest)
    assert "topic names starting with '__' are Kafka's internal topics" in error


@pytest.mark.parametrize("key", ["retention.ms\u0000", "retention.ms ", "retention ms"])
def test_config_keys_that_are_not_kafka_config_names_are_refused_at_admission(
    operator: RunningOperator, namespace: str, key: str
) -> None:
    error = apply_fails(namespace, kafka_topic(unique("badkey"), 1, 1, config={key: "1000"}))
    assert "config keys are Kafka config names" in error


@pytest.mark.parametrize(
    "index_name",
    ["Upper", "Éa", "_leading-underscore", "-leading-dash", "+plus", ".hidden", ".", "..", "a b", "a,b", "a#b", "a:b",
     "a*b", "a?b", "a/b", "a\\b", 'a"b', "a<b", "a|b", "é" * 128],
)  # fmt: skip
def test_index_names_the_servers_refuse_are_refused_at_admission(
    operator: RunningOperator, namespace: str, index_name: str
) -> None:
    apply_fails(namespace, search_index(unique("bad"), indexName=index_name))


def test_an_index_name_is_immutable_and_a_dot_prefixed_object_name_needs_an_index_name(
    operator: RunningOperator, namespace: str
) -> None:
    name = unique("fixed")
    apply(namespace, search_index(name, settings={"number_of_replicas": 0}))
    error = apply_fails(namespace, search_index(name, indexName=f"{name}-renamed"))
    assert "the index name (spec.indexName, or metadata.name when absent) is immutable" in error
    error = apply_fails(namespace, search_index(".kibana-x"))
    assert "names starting with '.' are the servers' system indices" in error
    apply(namespace, search_index(unique("dotted.but-fine"), settings={"number_of_replicas": 0}))
