"""The tenancy policy: which namespace may manage which names, and a file that cannot be misread."""

from __future__ import annotations

from pathlib import Path

import pytest

from controllers.core.model import ClusterRef, CommonSpec
from controllers.core.policy import KindPolicy, PolicyFileInvalid, load_policies
from controllers.kafkatopic.model import KafkaTopicPolicy, KafkaTopicSpec
from controllers.nififlow.model import NiFiFlowPolicy
from controllers.operator import POLICY_MODELS

DEFAULT_CONNECTION = CommonSpec()
OWN_SECRET = CommonSpec(cluster_ref=ClusterRef(name="kafka"))


def test_without_a_policy_every_namespace_may_manage_any_name() -> None:
    assert KindPolicy().refusal("anyone", "payments.orders", DEFAULT_CONNECTION) is None


def test_a_namespace_manages_only_names_with_its_prefixes() -> None:
    policy = KindPolicy.model_validate({"namespaces": {"team-a": {"namePrefixes": ["team-a."]}}})
    assert policy.refusal("team-a", "team-a.orders", OWN_SECRET) is None
    assert "only manage names starting with 'team-a.'" in (policy.refusal("team-a", "team-b.x", OWN_SECRET) or "")
    assert "no names to manage" in (policy.refusal("team-c", "team-a.orders", OWN_SECRET) or "")


def test_star_gives_every_namespace_not_listed_its_rights() -> None:
    policy = KindPolicy.model_validate(
        {"namespaces": {"team-a": {"namePrefixes": ["team-a."]}, "*": {"namePrefixes": ["sandbox."]}}}
    )
    assert policy.refusal("team-z", "sandbox.x", OWN_SECRET) is None
    assert policy.refusal("team-z", "team-a.x", OWN_SECRET) is not None
    assert policy.refusal("team-a", "sandbox.x", OWN_SECRET) is not None


def test_only_listed_namespaces_may_use_the_default_connection() -> None:
    policy = KindPolicy.model_validate({"defaultConnectionNamespaces": ["platform"]})
    assert policy.refusal("platform", "t", DEFAULT_CONNECTION) is None
    assert "default connection" in (policy.refusal("team-a", "t", DEFAULT_CONNECTION) or "")
    assert policy.refusal("team-a", "t", OWN_SECRET) is None


def test_kafka_limits_config_keys_partitions_and_replication() -> None:
    policy = KafkaTopicPolicy.model_validate(
        {"allowedConfigKeys": ["retention.ms"], "maxPartitions": 12, "maxReplicationFactor": 3}
    )
    fine = KafkaTopicSpec(partitions=12, replication_factor=3, config={"retention.ms": "1000"})
    assert policy.refusal("ns", "t", fine) is None
    kept = KafkaTopicSpec(partitions=1, replication_factor=1, config={"min.insync.replicas": "1"})
    assert "min.insync.replicas" in (policy.refusal("ns", "t", kept) or "")
    huge = KafkaTopicSpec(partitions=1_000_000, replication_factor=1)
    assert "limit of 12" in (policy.refusal("ns", "t", huge) or "")
    wide = KafkaTopicSpec(partitions=1, replication_factor=5)
    assert "limit of 3" in (policy.refusal("ns", "t", wide) or "")


def test_a_misspelt_field_or_unknown_kind_stops_the_operator_at_start(tmp_path: Path) -> None:
    typo = tmp_path / "typo.yaml"
    typo.write_text("kafkatopics:\n  namespace: {team-a: {namePrefixes: [a]}}\n")
    with pytest.raises(PolicyFileInvalid, match="invalid"):
        load_policies(typo, {"kafkatopics": KafkaTopicPolicy})
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("kafkatopic: {}\n")
    with pytest.raises(PolicyFileInvalid, match="does not know"):
        load_policies(unknown, {"kafkatopics": KafkaTopicPolicy})


def test_no_file_means_no_restriction() -> None:
    assert load_policies(None, {"kafkatopics": KafkaTopicPolicy}) == {"kafkatopics": KafkaTopicPolicy()}


def test_one_policy_file_serves_every_controller_whatever_kinds_it_runs(tmp_path: Path) -> None:
    """Each Deployment runs one service's kinds and mounts the same file: a section for a kind another
    Deployment runs is checked (a typo in it still stops the operator) and is no reason to refuse the file."""
    whole = tmp_path / "policy.yaml"
    whole.write_text(
        "kafkatopics: {defaultConnectionNamespaces: [platform]}\n"
        "elasticsearchindices: {defaultConnectionNamespaces: [platform]}\n"
        "nififlows: {restrictedComponentNamespaces: [platform]}\n"
    )
    policies = load_policies(whole, POLICY_MODELS)
    assert set(policies) == {"kafkatopics", "elasticsearchindices", "nififlows"}
    nifi = policies["nififlows"]
    assert isinstance(nifi, NiFiFlowPolicy) and nifi.restricted_component_namespaces == ["platform"]
    typo = tmp_path / "typo.yaml"
    typo.write_text("kafkatopics: {}\nnififlows: {restrictedComponentNamespace: [platform]}\n")
    with pytest.raises(PolicyFileInvalid, match="invalid"):
        load_policies(typo, POLICY_MODELS)
