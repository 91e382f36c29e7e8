"""The KafkaTopic custom resource: spec and status models, and the CRD's
names, printer columns and CEL rules. crds/ is generated from this file."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field

from controllers.core.crd import CrdInfo, PrinterColumn
from controllers.core.model import CamelModel, CommonSpec, CommonStatus
from controllers.core.objects import ResourceInfo

RESOURCE = ResourceInfo(group="infometis.io", version="v1alpha1", plural="kafkatopics", kind="KafkaTopic")
FINALIZER = "infometis.io/kafkatopic-deletion"
MAX_TOPIC_NAME_LENGTH = 249  # Kafka's limit


class KafkaTopicSpec(CommonSpec):
    topic_name: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_TOPIC_NAME_LENGTH,
        pattern=r"^[a-zA-Z0-9._-]+$",
        description="The Kafka topic's name; metadata.name when absent. Immutable.",
        json_schema_extra={
            "x-kubernetes-validations": [
                {"rule": "self != '.' && self != '..'", "message": "'.' and '..' are not valid topic names"}
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
        description=(
            "Topic configs (e.g. retention.ms), values as strings. The operator owns the keys listed "
            "here: a key removed later is reset to the broker default; keys never listed are left alone."
        ),
    )


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
