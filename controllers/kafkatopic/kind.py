"""KafkaTopic's answers to the core's questions: how to reach Kafka, what a topic looks like there,
which changes make it match the spec, and what the result means.

Everything kinds share (ownership, adoption, report or apply, verification,
the Event vocabulary) is in controllers.core.sync.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from controllers.core.clients import ClientPool
from controllers.core.connections import Connections
from controllers.core.kind import ReconcileRequest
from controllers.core.outcome import EventNote, KindCondition, Outcome
from controllers.core.policy import KindPolicy
from controllers.kafkatopic.admin import (
    BrokersBehind,
    KafkaAdmin,
    KafkaRefused,
    KafkaUnavailable,
    TopicAlreadyExists,
)
from controllers.kafkatopic.connection import KAFKA_CONNECTION
from controllers.kafkatopic.model import (
    FINALIZER,
    INTERNAL_TOPIC_PREFIX,
    RESOURCE,
    KafkaTopicPolicy,
    KafkaTopicSpec,
    KafkaTopicStatus,
    ReplicasChange,
    topic_name_of,
)
from controllers.kafkatopic.plan import (
    INSUFFICIENT_BROKERS,
    AlterConfig,
    Change,
    CreateTopic,
    DesiredTopic,
    IncreasePartitions,
    ReassignReplicas,
    TopicPlan,
    plan_topic,
)
from controllers.kafkatopic.state import Observation

INVALID_CONFIG = "InvalidConfig"
NOT_AUTHORIZED = "NotAuthorized"
AUTHORIZATION_FAILURES = frozenset({"TOPIC_AUTHORIZATION_FAILED", "CLUSTER_AUTHORIZATION_FAILED"})
REFUSED = "KafkaRefused"
REPLICAS_REASSIGNED = "ReplicasReassigned"
REASSIGNMENT_POLL_SECONDS = 2.0
# Pauses before describing again a topic the controller has and a broker does not list yet.
BROKER_CATCH_UP_PAUSES = (0.1, 0.3, 1.0)

Request = ReconcileRequest[KafkaTopicSpec, KafkaTopicStatus]


class KafkaTopicKind:
    resource = RESOURCE
    noun = "topic"
    nouns = "topics"
    spec_model = KafkaTopicSpec
    status_model = KafkaTopicStatus
    finalizer = FINALIZER
    policy_model: type[KindPolicy] = KafkaTopicPolicy
    sticky_stall_reasons = frozenset({INVALID_CONFIG, REFUSED})
    service_errors: tuple[type[Exception], ...] = (KafkaUnavailable, KafkaRefused)

    def __init__(
        self, connections: Connections, admins: ClientPool[KafkaAdmin], default_connection: Mapping[str, str] | None
    ):
        self._connections = connections
        self._admins = admins
        self._default_connection = default_connection

    def claim(self, body: Mapping[str, Any]) -> str:
        return topic_name_of(body)

    async def client(self, namespace: str, spec: KafkaTopicSpec, *, fresh: bool) -> KafkaAdmin:
        connection = await self._connections.resolve(
            namespace,
            spec.cluster_ref.name if spec.cluster_ref else None,
            fresh=fresh,
            default=self._default_connection,
            schema=KAFKA_CONNECTION,
        )
        return self._admins.for_connection(connection)

    async def observe(self, client: KafkaAdmin, request: Request, *, applied: Sequence[Any]) -> Observation:
        # The keys the plan compares: those the spec sets, and those it set before (to reset them).
        config_keys = frozenset(request.spec.config) | frozenset(request.status.managed_config_keys)
        name = topic_name_of(request.body)
        observation = await client.observe(name, config_keys)
        topic = observation.topic
        if topic is None and request.status.topic_id is not None:
            # Taken for missing, a topic a lagging broker does not list yet would be created again and announced
            # as corrected drift: the controller is asked, and the brokers given a moment to catch up.
            for pause in BROKER_CATCH_UP_PAUSES:
                if not await client.known_to_controller(name):
                    break
                await asyncio.sleep(pause)
                observation = await client.observe(name, config_keys)
                if observation.topic is not None:
                    break
            else:
                raise BrokersBehind(
                    f"A broker does not list topic '{name}' while Kafka's controller has it: the brokers have not "
                    "caught up with the cluster's metadata yet"
                )
            topic = observation.topic
        if topic is None:
            return observation
        # Mid-reassignment a partition already lists its target replicas, so the replica
        # count alone cannot tell that data is still being copied: ask, but only when a
        # factor change is due, under way, or was just submitted.
        factor_differs = {len(r) for r in topic.replicas} != {request.spec.replication_factor}
        submitted = any(isinstance(change, ReassignReplicas) for change in applied)
        if not (factor_differs or submitted or request.status.replicas_change):
            return observation
        return replace(observation, reassigning=await client.partitions_being_reassigned(topic.name))

    def plan(self, request: Request, observation: Observation) -> TopicPlan:
        return plan_topic(
            DesiredTopic.from_spec(topic_name_of(request.body), request.spec),
            observation.topic,
            broker_ids=observation.cluster.broker_ids,
            managed_keys_before=frozenset(request.status.managed_config_keys),
            reassignment_in_progress=bool(observation.reassigning),
        )

    def apply(self, client: KafkaAdmin, change: Change) -> Awaitable[None]:
        if isinstance(change, CreateTopic):
            return client.create(change)
        if isinstance(change, IncreasePartitions):
            return client.increase_partitions(change)
        if isinstance(change, AlterConfig):
            return client.alter_config(change)
        return client.reassign(change)

    def protected(self, observation: Observation) -> str | None:
        if observation.topic is not None and observation.topic.internal:
            return "is one of Kafka's internal topics (Kafka says so): never changed, adopted or deleted"
        return None

    def conditions(self, observation: Observation) -> tuple[KindCondition, ...]:
        return ()

    def references_version(self, observation: Observation) -> str | None:
        return None  # the spec takes no values from ConfigMaps or Secrets

    def recorded_id(self, status: KafkaTopicStatus) -> str | None:
        return status.topic_id

    def inventories(self) -> list[Awaitable[tuple[str, frozenset[str]]]]:
        """Per cluster reached: its id and its topics, Kafka's internal ones left out."""
        return [self._inventory(admin) for admin in self._admins.in_use()]

    @staticmethod
    async def _inventory(admin: KafkaAdmin) -> tuple[str, frozenset[str]]:
        cluster_id, names = await admin.topic_names()
        return cluster_id, frozenset(n for n in names if not n.startswith(INTERNAL_TOPIC_PREFIX))

    def delete(self, client: KafkaAdmin, request: Request, observation: Observation) -> Awaitable[None]:
        return client.delete(topic_name_of(request.body))

    def failure(self, client: KafkaAdmin, name: str, change: Change | None, error: Exception) -> Outcome:
        """Stall on refusals Kafka would repeat; retry the rest."""
        redact = client.connection.redact
        if isinstance(error, KafkaRefused) and error.code in AUTHORIZATION_FAILURES:
            # Rights are granted outside the spec: rechecked on every resync, not sticky.
            what = change.summary() if change is not None else "to describe it"
            return Outcome.stalled(
                NOT_AUTHORIZED,
                redact(
                    f"Kafka refused {what} for topic '{name}' to this connection ({client.connection.name}): "
                    f"{error.code}: {error}"
                ),
            )
        if isinstance(error, BrokersBehind):
            # Not a failure to warn about: the topic is there, and shows once the brokers catch up.
            return Outcome.progressing(f"{error}; reading it again shortly.", {}, 1.0)
        if change is None:
            if isinstance(error, KafkaRefused):
                return Outcome.retrying(redact(f"Kafka refused to describe topic '{name}' ({error.code}): {error}"))
            return Outcome.retrying(client.explain(error))
        if isinstance(error, KafkaRefused):
            if error.code == "INVALID_PARTITIONS" and isinstance(change, IncreasePartitions):
                # The plan only asks for more partitions than it saw, so the broker that
                # answered the describe was behind the controller (as after a restart): the
                # change is made already. Not a failure to warn about; read again shortly.
                return Outcome.progressing(
                    redact(f"Kafka says topic '{name}' already has the partitions ({error}); re-reading the topic."),
                    {},
                    1.0,
                )
            if error.code == "INVALID_CONFIG":
                return Outcome.stalled(INVALID_CONFIG, redact(f"Kafka refused the config of topic '{name}': {error}"))
            if error.code == "INVALID_REPLICATION_FACTOR":
                return Outcome.stalled(INSUFFICIENT_BROKERS, redact(f"Kafka refused topic '{name}': {error}"))
            return Outcome.stalled(REFUSED, redact(f"Kafka refused to change topic '{name}' ({error.code}): {error}"))
        if isinstance(error, TopicAlreadyExists):
            # Deleted outside moments ago and Kafka is still removing it, or made by someone else meanwhile.
            return Outcome.progressing(
                f"Topic '{name}' is still being deleted by Kafka; checking again shortly.", {}, 1.0
            )
        return Outcome.retrying(redact(f"Changing topic '{name}' ({change.summary()}) failed, will retry: {error}"))

    def verdict(
        self, request: Request, observation: Observation, plan: TopicPlan, *, applied: Sequence[Change]
    ) -> Outcome:
        name = topic_name_of(request.body)
        topic = observation.topic
        assert topic is not None  # the core asks only once the topic shows
        factor = request.spec.replication_factor
        if observation.reassigning or plan.changes:
            return Outcome.progressing(
                f"Reassigning topic '{name}' to replication factor {factor}: "
                f"{topic.partitions - len(observation.reassigning)} of {topic.partitions} partitions done.",
                _status_fields(KafkaTopicStatus(replicas_change=ReplicasChange(target_replication_factor=factor))),
                REASSIGNMENT_POLL_SECONDS,
            )
        events: tuple[EventNote, ...] = ()
        if request.status.replicas_change or any(isinstance(change, ReassignReplicas) for change in applied):
            events = (EventNote(REPLICAS_REASSIGNED, f"Topic '{name}' now has replication factor {factor}."),)
        return Outcome.ready(
            f"Topic '{name}' is in sync: {topic.partitions} partitions, replication factor "
            f"{topic.replication_factor}, {len(request.spec.config)} managed config key(s).",
            {},
            events,
        )

    def facts(self, request: Request, observation: Observation | None, plan: TopicPlan | None) -> dict[str, Any]:
        name = topic_name_of(request.body)
        if observation is None or plan is None:
            return _status_fields(KafkaTopicStatus(topic_name=name))
        topic = observation.topic
        config_pending = any(isinstance(c, AlterConfig) for c in plan.changes)
        managed = request.status.managed_config_keys if config_pending else sorted(request.spec.config)
        observed = KafkaTopicStatus(
            topic_name=name,
            topic_id=topic.topic_id if topic else None,
            partitions=topic.partitions if topic else None,
            replication_factor=topic.replication_factor if topic else None,
            managed_config_keys=list(managed),
            replicas_change=None,
        )
        return _status_fields(observed)


def _status_fields(status: KafkaTopicStatus) -> dict[str, Any]:
    """The fields set on a typed status, by their Kubernetes names; a None removes the field."""
    return status.model_dump(by_alias=True, exclude_unset=True)
