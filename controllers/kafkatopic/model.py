"""The KafkaTopic custom resource: spec and status models, and the CRD's
names, printer columns and CEL rules. crds/ is generated from this file."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import Field, field_validator

from controllers.core.crd import CrdInfo, PrinterColumn
from controllers.core.model import CamelModel, CommonSpec, CommonStatus
from controllers.core.objects import ResourceInfo
from controllers.core.policy import KindPolicy

RESOURCE = ResourceInfo(group="infometis.io", version="v1alpha1", plural="kafkatopics", kind="KafkaTopic")
FINALIZER = "infometis.io/kafkatopic-deletion"
MAX_TOPIC_NAME_LENGTH = 249  # Kafka's limit
INTERNAL_TOPIC_PREFIX = "__"  # __consumer_offsets, __transaction_state, __cluster_metadata, ...
# Kafka's config names; anything else (a NUL, a space) is applied by clients as
# some other key while the operator compares the key as written, forever.
CONFIG_KEY_PATTERN = "^[a-zA-Z0-9._-]+$"
MAX_CONFIG_KEY_LENGTH = 255
MAX_CONFIG_KEYS = 200


class KafkaTopicSpec(CommonSpec):
    topic_name: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_TOPIC_NAME_LENGTH,
        pattern=r"^[a-zA-Z0-9._-]+$",
        description="The Kafka topic's name; metadata.name when absent. Immutable.",
        json_schema_extra={
            "x-kubernetes-validations": [
                {"rule": "self != '.' && self != '..'", "message": "'.' and '..' are not valid topic names"},
                {
                    "rule": "!self.startsWith('__')",
                    "message": (
                        "topic names starting with '__' are Kafka's internal topics (__consumer_offsets, "
                        "__transaction_state, ...): they are never created, changed, adopted or deleted"
                    ),
                },
            ]
        },
    )
    partitions: int = Field(
        ge=1,
        le=1_000_000,
        description="Number of partitions. Can grow, never shrink (Kafka cannot remove partitions).",
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self >= oldSelf",
                    "message": "partitions cannot be decreased: Kafka cannot remove partitions from a topic",
                }
            ]
        },
    )
    replication_factor: int = Field(
        ge=1,
        le=32767,
        description=(
            "Replicas of each partition. A change is carried out by a partition reassignment; "
            "it needs at least this many brokers."
        ),
    )
    config: dict[str, str] = Field(
        default_factory=dict,
        max_length=MAX_CONFIG_KEYS,
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": (
                        f"self.all(key, size(key) <= {MAX_CONFIG_KEY_LENGTH} && key.matches('{CONFIG_KEY_PATTERN}'))"
                    ),
                    "message": (
                        "config keys are Kafka config names: letters, digits, '.', '_' and '-' only "
                        f"(at most {MAX_CONFIG_KEY_LENGTH} characters)"
                    ),
                }
            ]
        },
        description=(
            "Topic configs (e.g. retention.ms), values as strings. The operator owns the keys listed "
            "here: a key removed later is reset to the broker default; keys never listed are left alone."
        ),
    )

    @field_validator("config")
    @classmethod
    def _config_keys_are_kafka_config_names(cls, config: dict[str, str]) -> dict[str, str]:
        # The CRD refuses these at admission; objects stored before that rule are refused here.
        bad = [key for key in config if len(key) > MAX_CONFIG_KEY_LENGTH or not re.match(CONFIG_KEY_PATTERN, key)]
        if bad:
            raise ValueError(f"config keys must be Kafka config names; refused: {', '.join(map(repr, bad))}")
        return config

    @field_validator("topic_name")
    @classmethod
    def _not_an_internal_topic(cls, topic_name: str | None) -> str | None:
        if topic_name is not None and topic_name.startswith(INTERNAL_TOPIC_PREFIX):
            raise ValueError(f"'{topic_name}' is a Kafka internal topic name (starts with '__'); never managed")
        return topic_name


class KafkaTopicPolicy(KindPolicy):
    """The tenancy policy's `kafkatopics` section (see controllers.core.policy)."""

    allowed_config_keys: list[str] | None = Field(
        default=None,
        description="The config keys objects may set (the platform keeps the others); unset: any key.",
    )
    max_partitions: int | None = Field(default=None, ge=1, description="The most partitions one topic may ask for.")
    max_replication_factor: int | None = Field(
        default=None, ge=1, description="The highest replication factor one topic may ask for."
    )

    def refusal(self, namespace: str, resource_name: str, spec: CommonSpec) -> str | None:
        why = super().refusal(namespace, resource_name, spec)
        if why is not None or not isinstance(spec, KafkaTopicSpec):
            return why
        if self.allowed_config_keys is not None:
            refused = sorted(set(spec.config) - set(self.allowed_config_keys))
            if refused:
                return f"config key(s) {', '.join(refused)} are kept by the platform team (tenancy policy)"
        if self.max_partitions is not None and spec.partitions > self.max_partitions:
            return f"{spec.partitions} partitions is above the tenancy policy's limit of {self.max_partitions}"
        if self.max_replication_factor is not None and spec.replication_factor > self.max_replication_factor:
            return (
                f"replication factor {spec.replication_factor} is above the tenancy policy's limit of "
                f"{self.max_replication_factor}"
            )
        return None


class ReplicasChange(CamelModel):
    target_replication_factor: int = Field(description="The replication factor being reached.")


class KafkaTopicStatus(CommonStatus):
    topic_name: str | None = Field(default=None, description="The Kafka topic this object manages.")
    topic_id: str | None = Field(default=None, description="Kafka's id of the topic.")
    partitions: int | None = Field(default=None, description="Partitions observed on the topic.")
    replication_factor: int | None = Field(
        default=None, description="Replicas per partition observed (the smallest, while a reassignment runs)."
    )
    managed_config_keys: list[str] = Field(
        default_factory=list,
        description="Config keys set from spec.config; one removed from the spec is reset to its default.",
    )
    replicas_change: ReplicasChange | None = Field(
        default=None, description="Present while a replication-factor change is being carried out."
    )


def topic_name_of(body: Mapping[str, Any]) -> str:
    """spec.topicName, else metadata.name (read from the raw object, so it works for any peer)."""
    return str((body.get("spec") or {}).get("topicName") or body["metadata"]["name"])


CRD = CrdInfo(
    resource=RESOURCE,
    singular="kafkatopic",
    short_names=("ikt",),
    categories=("infometis",),
    spec_model=KafkaTopicSpec,
    status_model=KafkaTopicStatus,
    description="A Kafka topic kept in the state this object declares.",
    printer_columns=(
        PrinterColumn("Topic", "string", ".status.topicName"),
        PrinterColumn("Partitions", "integer", ".status.partitions"),
        PrinterColumn("Replicas", "integer", ".status.replicationFactor"),
        PrinterColumn("Ready", "string", '.status.conditions[?(@.type=="Ready")].status'),
        PrinterColumn("Reason", "string", '.status.conditions[?(@.type=="Ready")].reason'),
        PrinterColumn("Plan", "string", ".status.plan.digest", priority=1),
        PrinterColumn("Age", "date", ".metadata.creationTimestamp"),
    ),
    root_validations=(
        {
            "rule": (
                "(has(self.spec.topicName) ? self.spec.topicName : self.metadata.name) == "
                "(has(oldSelf.spec.topicName) ? oldSelf.spec.topicName : oldSelf.metadata.name)"
            ),
            "message": "the topic name (spec.topicName, or metadata.name when absent) is immutable",
        },
        {
            "rule": f"has(self.spec.topicName) || size(self.metadata.name) <= {MAX_TOPIC_NAME_LENGTH}",
            "message": (
                f"metadata.name is longer than {MAX_TOPIC_NAME_LENGTH} characters, Kafka's limit for "
                "topic names: set spec.topicName"
            ),
        },
    ),
)
