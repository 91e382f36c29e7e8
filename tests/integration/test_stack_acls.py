"""The stack's Kafka enforces ACLs: `tenant` may work on topics under its prefix only.

What a restricted user meets here is what the operator must handle with a
real cluster's least-privilege credentials, so the error names are pinned:
outside the prefix every topic call fails with TOPIC_AUTHORIZATION_FAILED,
whether the topic exists or not, while DescribeCluster needs no ACL.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any

import pytest
from confluent_kafka import KafkaException, TopicCollection
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)

from tests.integration.helpers import describe, described_as, stack_command, unique, wait_for

TENANT_TOPIC_OPERATIONS = {"CREATE", "DESCRIBE", "DESCRIBE_CONFIGS", "ALTER", "ALTER_CONFIGS", "DELETE"}
TIMEOUTS = {"request_timeout": 15.0}


def sasl_admin(stack: dict[str, str], username: str, password: str) -> AdminClient:
    return AdminClient(
        {
            "bootstrap.servers": stack["KAFKA_SECURE_BOOTSTRAP_SERVERS"],
            "security.protocol": "SASL_SSL",
            "sasl.mechanism": "PLAIN",
            "sasl.username": username,
            "sasl.password": password,
            "ssl.ca.location": stack["KAFKA_SECURE_CA_FILE"],
        }
    )


@pytest.fixture(scope="module")
def tenant(stack: dict[str, str]) -> AdminClient:
    return sasl_admin(stack, stack["KAFKA_TENANT_USERNAME"], stack["KAFKA_TENANT_PASSWORD"])


@pytest.fixture
def outside(kafka_admin: AdminClient) -> Iterator[str]:
    """A topic outside the tenant's prefix, made by a super user (PLAINTEXT)."""
    name = unique("outside")
    kafka_admin.create_topics([NewTopic(name, 1, 1)])[name].result(timeout=15)
    described_as(kafka_admin, name, lambda t: t["partitions"] == 1)
    yield name
    kafka_admin.delete_topics([name])[name].result(timeout=15)


def error_name(future: Future[Any]) -> str:
    with pytest.raises(KafkaException) as raised:
        future.result(timeout=20)
    name: str = raised.value.args[0].name()
    return name


def only(futures: dict[Any, Future[Any]]) -> Future[Any]:
    (future,) = futures.values()
    return future


def set_retention(topic: str, value: str) -> ConfigResource:
    entry = ConfigEntry("retention.ms", value, incremental_operation=AlterConfigOpType.SET)
    return ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[entry])


def tenant_acls(admin: AdminClient, principal: str) -> set[tuple[str, str, str, str, str, str]]:
    everything = AclBindingFilter(
        ResourceType.ANY, None, ResourcePatternType.ANY, principal, None, AclOperation.ANY, AclPermissionType.ANY
    )
    bindings: list[AclBinding] = admin.describe_acls(everything, **TIMEOUTS).result(timeout=20)
    return {
        (b.restype.name, b.name, b.resource_pattern_type.name, b.host, b.operation.name, b.permission_type.name)
        for b in bindings
    }


def test_the_tenant_creates_describes_alters_and_deletes_topics_under_its_prefix(
    tenant: AdminClient, kafka_admin: AdminClient, stack: dict[str, str], broker_ids: list[int]
) -> None:
    name = unique(f"{stack['KAFKA_TENANT_TOPIC_PREFIX']}own")
    only(tenant.create_topics([NewTopic(name, 1, 1)], operation_timeout=15, **TIMEOUTS)).result(timeout=20)
    described_as(tenant, name, lambda t: t["partitions"] == 1)  # DescribeTopics and DescribeConfigs

    only(tenant.incremental_alter_configs([set_retention(name, "3600000")], **TIMEOUTS)).result(timeout=20)
    only(tenant.create_partitions([NewPartitions(name, 2)], **TIMEOUTS)).result(timeout=20)
    described_as(tenant, name, lambda t: t["partitions"] == 2 and t["overrides"] == {"retention.ms": "3600000"})

    # DescribeCluster needs no ACL: the operator learns brokers and cluster id as any user.
    cluster = tenant.describe_cluster(**TIMEOUTS).result(timeout=20)
    assert cluster.cluster_id == kafka_admin.describe_cluster(**TIMEOUTS).result(timeout=20).cluster_id
    assert sorted(node.id for node in cluster.nodes) == broker_ids
    assert name in tenant.list_topics(timeout=15).topics

    only(tenant.delete_topics([name], operation_timeout=15, **TIMEOUTS)).result(timeout=20)
    wait_for(lambda: describe(tenant, name) is None, timeout=15, what=f"{name} gone")  # UNKNOWN_TOPIC_OR_PART


def test_every_topic_call_outside_the_prefix_is_refused_as_topic_authorization_failed(
    tenant: AdminClient, kafka_admin: AdminClient, outside: str
) -> None:
    """Kafka hides whether a forbidden topic exists: absent and present look alike."""
    absent = unique("absent")
    refusals = {
        "describe_topics": error_name(only(tenant.describe_topics(TopicCollection([outside]), **TIMEOUTS))),
        "describe_topics, absent": error_name(only(tenant.describe_topics(TopicCollection([absent]), **TIMEOUTS))),
        "describe_configs": error_name(
            only(tenant.describe_configs([ConfigResource(ResourceType.TOPIC, outside)], **TIMEOUTS))
        ),
        "describe_configs, absent": error_name(
            only(tenant.describe_configs([ConfigResource(ResourceType.TOPIC, absent)], **TIMEOUTS))
        ),
        "create_topics": error_name(only(tenant.create_topics([NewTopic(absent, 1, 1)], **TIMEOUTS))),
        "create_topics, existing": error_name(only(tenant.create_topics([NewTopic(outside, 1, 1)], **TIMEOUTS))),
        "create_partitions": error_name(only(tenant.create_partitions([NewPartitions(outside, 2)], **TIMEOUTS))),
        "incremental_alter_configs": error_name(
            only(tenant.incremental_alter_configs([set_retention(outside, "1000")], **TIMEOUTS))
        ),
        "delete_topics": error_name(only(tenant.delete_topics([outside], **TIMEOUTS))),
    }
    assert refusals == dict.fromkeys(refusals, "TOPIC_AUTHORIZATION_FAILED")
    broker_config = ConfigResource(ResourceType.BROKER, "1")
    assert error_name(only(tenant.describe_configs([broker_config], **TIMEOUTS))) == "CLUSTER_AUTHORIZATION_FAILED"
    assert outside not in tenant.list_topics(timeout=15).topics  # Metadata leaves it out, without an error
    assert describe(kafka_admin, absent) is None
    untouched = describe(kafka_admin, outside)
    assert untouched and untouched["partitions"] == 1 and untouched["overrides"] == {}, untouched


def test_super_users_keep_every_right(stack: dict[str, str], kafka_admin: AdminClient, outside: str) -> None:
    """PLAINTEXT and controller connections (User:ANONYMOUS) and `infometis` over SASL_SSL."""
    infometis = sasl_admin(stack, stack["KAFKA_SASL_USERNAME"], stack["KAFKA_SASL_PASSWORD"])
    assert describe(infometis, outside) == describe(kafka_admin, outside)
    resource = ConfigResource(ResourceType.BROKER, "1")
    assert only(infometis.describe_configs([resource], **TIMEOUTS)).result(timeout=20)


def test_up_grants_exactly_the_tenants_acls(
    kafka_admin: AdminClient, stack: dict[str, str], broker_ids: list[int]
) -> None:
    """Whatever was changed by hand, the next `up` restores the tenant's ACLs, and an `up` after that finds them."""
    principal, prefix = f"User:{stack['KAFKA_TENANT_USERNAME']}", stack["KAFKA_TENANT_TOPIC_PREFIX"]
    granted = {("TOPIC", prefix, "PREFIXED", "*", operation, "ALLOW") for operation in TENANT_TOPIC_OPERATIONS}
    assert tenant_acls(kafka_admin, principal) == granted

    removed = AclBindingFilter(
        ResourceType.TOPIC,
        prefix,
        ResourcePatternType.PREFIXED,
        principal,
        "*",
        AclOperation.DELETE,
        AclPermissionType.ALLOW,
    )
    only(kafka_admin.delete_acls([removed], **TIMEOUTS)).result(timeout=20)
    stray = AclBinding(
        ResourceType.TOPIC,
        unique("stray"),
        ResourcePatternType.LITERAL,
        principal,
        "*",
        AclOperation.READ,
        AclPermissionType.ALLOW,
    )
    only(kafka_admin.create_acls([stray], **TIMEOUTS)).result(timeout=20)
    wait_for(lambda: tenant_acls(kafka_admin, principal) != granted, timeout=15, what="the changed ACLs")

    progress = stack_command("up", "--kafka-brokers", str(len(broker_ids))).stderr
    assert f"removed 1 ACL(s) of {principal}" in progress, progress
    assert f"allowed {principal} DELETE on topics prefixed '{prefix}'" in progress, progress
    wait_for(lambda: tenant_acls(kafka_admin, principal) == granted, timeout=15, what="the granted ACLs")

    progress = stack_command("up", "--kafka-brokers", str(len(broker_ids))).stderr
    assert "removed" not in progress and "allowed" not in progress, progress


def test_replica_reassignment_needs_cluster_rights_the_tenant_lacks(stack: dict[str, str]) -> None:
    """kafka-python (the operator's reassignment client) answers with code 31, whatever the topic."""
    from kafka import TopicPartition
    from kafka.admin import KafkaAdminClient
    from kafka.errors import ClusterAuthorizationFailedError

    reassigner = KafkaAdminClient(
        bootstrap_servers=stack["KAFKA_SECURE_BOOTSTRAP_SERVERS"],
        security_protocol="SASL_SSL",
        sasl_mechanism="PLAIN",
        sasl_plain_username=stack["KAFKA_TENANT_USERNAME"],
        sasl_plain_password=stack["KAFKA_TENANT_PASSWORD"],
        ssl_cafile=stack["KAFKA_SECURE_CA_FILE"],
    )
    try:
        with pytest.raises(ClusterAuthorizationFailedError, match="needs DESCRIBE permission"):
            reassigner.list_partition_reassignments()
        own = TopicPartition(unique(f"{stack['KAFKA_TENANT_TOPIC_PREFIX']}own"), 0)
        with pytest.raises(ClusterAuthorizationFailedError, match="needs ALTER permission"):
            reassigner.alter_partition_reassignments({own: [1]})
    finally:
        reassigner.close()
