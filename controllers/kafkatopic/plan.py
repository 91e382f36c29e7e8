"""Desired topic + observed topic -> the changes that make them equal (pure).

No I/O here: everything the decision needs is passed in, so every rule is
unit- and property-tested in milliseconds (tests/unit/kafkatopic/).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from controllers.core.kind import Blocker
from controllers.core.model import DriftItem
from controllers.kafkatopic.model import KafkaTopicSpec
from controllers.kafkatopic.state import ConfigValue, ObservedTopic

INSUFFICIENT_BROKERS = "InsufficientBrokers"
PARTITIONS_EXCEED_SPEC = "PartitionsExceedSpec"
UNSET = "unset (default)"
REASSIGNMENT_STARTED = "ReassignmentStarted"


@dataclass(frozen=True)
class DesiredTopic:
    name: str
    partitions: int
    replication_factor: int
    config: Mapping[str, str]

    @staticmethod
    def from_spec(name: str, spec: KafkaTopicSpec) -> DesiredTopic:
        return DesiredTopic(name, spec.partitions, spec.replication_factor, dict(spec.config))


@dataclass(frozen=True)
class CreateTopic:
    creates: ClassVar[bool] = True
    settles_later: ClassVar[bool] = False
    event_reason: ClassVar[str | None] = None

    name: str
    partitions: int
    replication_factor: int
    config: tuple[tuple[str, str], ...]

    def undo(self) -> Change | str:
        return "a topic just created is kept: what was written to it would be lost"

    def destructive(self) -> str | None:
        return None

    def summary(self) -> str:
        configs = ", ".join(f"{k}={v}" for k, v in self.config)
        return f"created with {self.partitions} partitions, replication factor {self.replication_factor}" + (
            f", config {configs}" if configs else ""
        )

    def drift(self) -> tuple[DriftItem, ...]:
        return (DriftItem(field="topic", desired="present", actual="absent"),)


@dataclass(frozen=True)
class IncreasePartitions:
    creates: ClassVar[bool] = False
    settles_later: ClassVar[bool] = False
    event_reason: ClassVar[str | None] = None

    name: str
    current: int
    desired: int

    def undo(self) -> Change | str:
        return "Kafka cannot remove partitions"

    def destructive(self) -> str | None:
        return None

    def summary(self) -> str:
        return f"partitions {self.current} -> {self.desired}"

    def drift(self) -> tuple[DriftItem, ...]:
        return (DriftItem(field="partitions", desired=str(self.desired), actual=str(self.current)),)


@dataclass(frozen=True)
class ConfigUpdate:
    key: str
    desired: str | None  # None: reset to the default (the key left the spec)
    actual: ConfigValue | None  # None: the broker does not list the key

    def summary(self) -> str:
        before = self.actual.describe() if self.actual else UNSET
        if self.desired is None:
            return f"config {self.key} reset to default (was {before})"
        return f"config {self.key}: {before} -> {self.desired}"


@dataclass(frozen=True)
class AlterConfig:
    creates: ClassVar[bool] = False
    settles_later: ClassVar[bool] = False
    event_reason: ClassVar[str | None] = None

    name: str
    updates: tuple[ConfigUpdate, ...]

    def undo(self) -> Change | str:
        return AlterConfig(
            self.name,
            tuple(
                ConfigUpdate(
                    u.key,
                    u.actual.value if u.actual is not None and u.actual.is_topic_override else None,
                    ConfigValue(u.desired, is_topic_override=True) if u.desired is not None else None,
                )
                for u in self.updates
            ),
        )

    def destructive(self) -> str | None:
        return None

    def summary(self) -> str:
        return "; ".join(update.summary() for update in self.updates)

    def drift(self) -> tuple[DriftItem, ...]:
        return tuple(
            DriftItem(
                field=f"config.{u.key}",
                desired=u.desired if u.desired is not None else UNSET,
                actual=u.actual.describe() if u.actual else UNSET,
            )
            for u in self.updates
        )


@dataclass(frozen=True)
class ReassignReplicas:
    creates: ClassVar[bool] = False
    settles_later: ClassVar[bool] = True
    event_reason: ClassVar[str | None] = REASSIGNMENT_STARTED

    name: str
    current: int
    desired: int
    # (partition, new replica list) for each partition whose replicas change
    assignment: tuple[tuple[int, tuple[int, ...]], ...]

    def undo(self) -> Change | str:
        return "a reassignment Kafka has started runs to its end; set replicationFactor back to move the replicas again"

    def destructive(self) -> str | None:
        return None

    def summary(self) -> str:
        return f"replication factor {self.current} -> {self.desired} (reassigning {len(self.assignment)} partition(s))"

    def drift(self) -> tuple[DriftItem, ...]:
        return (DriftItem(field="replicationFactor", desired=str(self.desired), actual=str(self.current)),)


Change = CreateTopic | IncreasePartitions | AlterConfig | ReassignReplicas


@dataclass(frozen=True)
class TopicPlan:
    changes: tuple[Change, ...] = ()
    blocker: Blocker | None = None

    def drift(self) -> tuple[DriftItem, ...]:
        return tuple(item for change in self.changes for item in change.drift())


def plan_topic(
    desired: DesiredTopic,
    observed: ObservedTopic | None,
    *,
    broker_ids: Sequence[int],
    managed_keys_before: frozenset[str],
    reassignment_in_progress: bool,
) -> TopicPlan:
    """The changes that bring `observed` to `desired`, and what blocks the rest."""
    if observed is None:
        if desired.replication_factor > len(broker_ids):
            return TopicPlan(blocker=_too_few_brokers(desired, broker_ids))
        create = CreateTopic(
            desired.name, desired.partitions, desired.replication_factor, tuple(sorted(desired.config.items()))
        )
        return TopicPlan(changes=(create,))

    changes: list[Change] = []
    blocker: Blocker | None = None
    if observed.partitions > desired.partitions:
        blocker = Blocker(
            PARTITIONS_EXCEED_SPEC,
            f"Topic '{desired.name}' has {observed.partitions} partitions but spec.partitions is "
            f"{desired.partitions}; Kafka cannot remove partitions: set spec.partitions to "
            f"{observed.partitions} or more.",
        )
    elif observed.partitions < desired.partitions:
        changes.append(IncreasePartitions(desired.name, observed.partitions, desired.partitions))

    updates = config_updates(desired.config, observed.config, managed_keys_before)
    if updates:
        changes.append(AlterConfig(desired.name, updates))

    replica_counts = {len(replicas) for replicas in observed.replicas}
    # New partitions take the current factor; the factor is changed once the
    # partition count is right, so one reassignment covers every partition.
    if (
        replica_counts != {desired.replication_factor}
        and not reassignment_in_progress
        and not any(isinstance(c, IncreasePartitions) for c in changes)
    ):
        if desired.replication_factor > len(broker_ids):
            blocker = blocker or _too_few_brokers(desired, broker_ids)
        else:
            target = assign_replicas(observed.replicas, broker_ids, desired.replication_factor)
            moved = tuple(
                (partition, replicas)
                for partition, replicas in enumerate(target)
                if replicas != observed.replicas[partition]
            )
            changes.append(
                ReassignReplicas(desired.name, observed.replication_factor, desired.replication_factor, moved)
            )
    return TopicPlan(changes=tuple(changes), blocker=blocker)


def config_updates(
    desired: Mapping[str, str], observed: Mapping[str, ConfigValue], managed_keys_before: frozenset[str]
) -> tuple[ConfigUpdate, ...]:
    """Set what the spec lists; reset what it listed before and no longer does.

    A key is in sync only when set on the topic itself to the desired value, so
    a later change of a broker default cannot silently change the topic.
    Keys the operator never managed are not looked at.
    """
    updates = []
    for key, value in sorted(desired.items()):
        actual = observed.get(key)
        if actual is None or not actual.is_topic_override or not same_config_value(value, actual.value):
            updates.append(ConfigUpdate(key, value, actual))
    for key in sorted(managed_keys_before - desired.keys()):
        actual = observed.get(key)
        if actual is not None and actual.is_topic_override:
            updates.append(ConfigUpdate(key, None, actual))
    return tuple(updates)


def same_config_value(desired: str, actual: str | None) -> bool:
    """Whether the broker holds `desired`, allowing for how Kafka stores a value.

    Kafka parses a value by its type and stores the parsed form: it trims
    whitespace, drops spaces around list commas ("compact, delete" ->
    "compact,delete"), writes numbers canonically ("086400000" -> "86400000",
    "0.50" -> "0.5") and booleans in lower case. Comparing the raw strings
    would "correct" such a value on every resync and never report Ready.
    """
    if actual is None:
        return False
    wanted, held = desired.strip(), actual.strip()
    if wanted == held:
        return True
    if "," in wanted:
        return [item.strip() for item in wanted.split(",")] == [item.strip() for item in held.split(",")]
    if wanted.lower() in ("true", "false"):
        return wanted.lower() == held.lower()
    number = _as_number(wanted)
    return number is not None and number == _as_number(held)


def _as_number(text: str) -> int | float | None:
    # int first: long values such as retention.bytes must compare exactly.
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            continue
    return None


def assign_replicas(
    current: Sequence[Sequence[int]], broker_ids: Sequence[int], replication_factor: int
) -> tuple[tuple[int, ...], ...]:
    """New replica lists with `replication_factor` replicas per partition.

    Existing replicas keep their place (the first is the preferred leader), so
    a factor change moves as little data as possible. Added replicas go to the
    least-loaded brokers, rotating with the partition number so ties spread.
    Requires replication_factor <= len(broker_ids).
    """
    brokers = sorted(broker_ids)
    load = Counter(b for replicas in current for b in replicas)
    result = []
    for partition, replicas in enumerate(current):
        chosen = list(replicas[:replication_factor])
        for dropped in replicas[replication_factor:]:
            load[dropped] -= 1
        while len(chosen) < replication_factor:
            candidates = [b for b in brokers if b not in chosen]
            pick = min(candidates, key=lambda b: (load[b], (brokers.index(b) - partition) % len(brokers)))
            chosen.append(pick)
            load[pick] += 1
        result.append(tuple(chosen))
    return tuple(result)


def _too_few_brokers(desired: DesiredTopic, broker_ids: Sequence[int]) -> Blocker:
    return Blocker(
        INSUFFICIENT_BROKERS,
        f"Replication factor {desired.replication_factor} needs at least {desired.replication_factor} "
        f"brokers; the cluster has {len(broker_ids)} available.",
    )
