"""What the operator observes of Kafka, as plain values (no client types)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ConfigValue:
    value: str | None
    # True when set on the topic itself (DYNAMIC_TOPIC_CONFIG), False when the
    # value comes from a broker or built-in default.
    is_topic_override: bool

    def describe(self) -> str:
        if self.is_topic_override:
            return self.value or ""
        return f"{self.value} (default)" if self.value is not None else "unset (default)"


@dataclass(frozen=True)
class ObservedTopic:
    name: str
    topic_id: str
    # replica broker ids of each partition, indexed by partition id
    replicas: tuple[tuple[int, ...], ...]
    config: Mapping[str, ConfigValue] = field(default_factory=dict)
    internal: bool = False  # one of the cluster's own topics (Kafka says so): never managed

    @property
    def partitions(self) -> int:
        return len(self.replicas)

    @property
    def replication_factor(self) -> int:
        """The smallest replica count over the partitions (they differ only mid-reassignment)."""
        return min((len(r) for r in self.replicas), default=0)


@dataclass(frozen=True)
class ClusterFacts:
    cluster_id: str
    broker_ids: tuple[int, ...]  # brokers currently registered and reachable


@dataclass(frozen=True)
class Observation:
    topic: ObservedTopic | None  # None: no such topic
    cluster: ClusterFacts
    # Partitions whose replicas are being moved (asked only while a factor change is due).
    reassigning: frozenset[int] = frozenset()

    @property
    def instance(self) -> str:
        return self.cluster.cluster_id

    @property
    def resource_id(self) -> str | None:
        return self.topic.topic_id if self.topic else None
