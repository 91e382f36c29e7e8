"""KafkaTopic's part of the core loop: observe, plan, apply, and say what came of it.

The seed design's reconciler, for one topic: get the desired state (the
spec), get the actual state (the batched Admin edge), apply the changes (the
pure plan says which). Everything ends in an Outcome; the core turns it into
conditions, status and Events.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any

from controllers.core.claims import RESOURCE_CONFLICT, owner_other_than
from controllers.core.connections import ClusterRefInvalid, Connections, ConnectionSecretMissing
from controllers.core.kind import ReconcileRequest
from controllers.core.kube import KubeError
from controllers.core.model import ClusterRef, DriftPolicy
from controllers.core.outcome import CLUSTER_REF_INVALID, DRIFT_CORRECTED, RETAINED, EventNote, Outcome
from controllers.core.policy import NOT_PERMITTED, KindPolicy
from controllers.core.tasks import settle
from controllers.kafkatopic.admin import (
    KafkaAdmin,
    KafkaAdmins,
    KafkaRefused,
    KafkaUnavailable,
    TopicAlreadyExists,
)
from controllers.kafkatopic.connection import KAFKA_CONNECTION
from controllers.kafkatopic.model import FINALIZER, RESOURCE, KafkaTopicPolicy, KafkaTopicSpec, topic_name_of
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
CREATED = "Created"
UPDATED = "Updated"
ADOPTED = "Adopted"
DELETED = "Deleted"
REASSIGNMENT_STARTED = "ReassignmentStarted"
REPLICAS_REASSIGNED = "ReplicasReassigned"

REASSIGNMENT_POLL_SECONDS = 2.0
# Brokers learn of a change a moment after the controller accepts it; the
# check after applying waits for them rather than writing "in progress".
VERIFY_ATTEMPTS = 6
VERIFY_INTERVAL_SECONDS = 0.25


class KafkaTopicKind:
    resource = RESOURCE
    noun = "topic"
    spec_model = KafkaTopicSpec
    finalizer = FINALIZER
    policy_model: type[KindPolicy] = KafkaTopicPolicy
    sticky_stall_reasons = frozenset({INVALID_CONFIG, REFUSED})

    def __init__(self, connections: Connections, admins: KafkaAdmins, default_connection: Mapping[str, str] | None):
        self._connections = connections
        self._admins = admins
        self._default_connection = default_connection

    def claim(self, body: Mapping[str, Any]) -> str:
        return topic_name_of(body)

    async def _admin_for(self, namespace: str, cluster_ref: ClusterRef | None, *, fresh: bool = False) -> KafkaAdmin:
        connection = await self._connections.resolve(
            namespace,
            cluster_ref.name if cluster_ref else None,
            fresh=fresh,
            default=self._default_connection,
            schema=KAFKA_CONNECTION,
        )
        return self._admins.for_connection(connection)

    # --- reconcile ----------------------------------------------------------------------

    async def reconcile(self, request: ReconcileRequest[KafkaTopicSpec]) -> Outcome:
        name = topic_name_of(request.body)
        try:
            admin = await self._admin_for(request.key.namespace, request.spec.cluster_ref)
        except ClusterRefInvalid as error:
            return Outcome.stalled(CLUSTER_REF_INVALID, f"{error}.", {"topicName": name})
        except KubeError as error:
            return Outcome.retrying(f"Could not read the clusterRef Secret: {error}")
        try:
            return await self._reconcile(request, name, admin)
        except ClusterRefInvalid as error:
            return Outcome.stalled(CLUSTER_REF_INVALID, f"{error}.", {"topicName": name})
        except (KafkaUnavailable, KafkaRefused) as error:
            return _observation_failure(name, error, admin)

    async def _reconcile(self, request: ReconcileRequest[KafkaTopicSpec], name: str, admin: KafkaAdmin) -> Outcome:
        observation = await admin.observe(name)
        cluster_id = observation.cluster.cluster_id
        owner = owner_other_than(request.body, request.peers, cluster_id)
        if owner is not None:
            return Outcome.stalled(
                RESOURCE_CONFLICT,
                f"Topic '{name}' on cluster {cluster_id} is managed by KafkaTopic {owner}, "
                "which claimed it first; this one changes nothing while that one exists.",
                {"topicName": name, "clusterId": cluster_id},
            )
        if observation.topic is not None and observation.topic.internal:
            return Outcome.stalled(
                NOT_PERMITTED,
                f"Not permitted: Kafka reports '{name}' as one of its internal topics on cluster {cluster_id}; "
                "internal topics are never changed, adopted or deleted.",
                {"topicName": name, "clusterId": cluster_id},
            )
        reassigning = await self._reassigning(request, admin, observation)
        plan = self._plan(request, name, observation, reassigning)

        if plan.changes and request.spec_applied and request.spec.drift_policy is DriftPolicy.REPORT:
            fields = ", ".join(f"{d.field} (spec {d.desired}, actual {d.actual})" for d in plan.drift())
            return Outcome.drifted(
                f"Topic '{name}' was changed outside this object: {fields}; left as is (driftPolicy: Report).",
                plan.drift(),
                _facts(
                    name,
                    observation,
                    request.status.get("managedConfigKeys"),
                    request.status.get("replicasChange"),
                ),
            )

        events, failure = await self._apply(request, name, admin, observation, plan)
        applied = bool(plan.changes)
        if applied:
            try:
                observation = await self._observe_until_applied(request, name, admin)
                submitted = any(isinstance(c, ReassignReplicas) for c in plan.changes)
                reassigning = await self._reassigning(request, admin, observation, just_submitted=submitted)
            except (KafkaUnavailable, KafkaRefused) as error:
                # What was applied is said even when the check after it fails.
                return _with_events(failure or _observation_failure(name, error, admin), events)
            plan = self._plan(request, name, observation, reassigning)
        if failure is not None:
            return _with_events(failure, events)
        return self._verdict(request, name, observation, plan, reassigning, events, applied=applied)

    def _plan(
        self,
        request: ReconcileRequest[KafkaTopicSpec],
        name: str,
        observation: Observation,
        reassigning: frozenset[int],
    ) -> TopicPlan:
        return plan_topic(
            DesiredTopic.from_spec(name, request.spec),
            observation.topic,
            broker_ids=observation.cluster.broker_ids,
            managed_keys_before=frozenset(request.status.get("managedConfigKeys") or ()),
            reassignment_in_progress=bool(reassigning),
        )

    async def _reassigning(
        self,
        request: ReconcileRequest[KafkaTopicSpec],
        admin: KafkaAdmin,
        observation: Observation,
        *,
        just_submitted: bool = False,
    ) -> frozenset[int]:
        """Partitions mid-reassignment; asked only when a factor change is under way or due.

        Mid-reassignment a partition already lists its target replicas, so the
        replica count alone cannot tell that data is still being copied.
        """
        topic = observation.topic
        if topic is None:
            return frozenset()
        factor_differs = {len(r) for r in topic.replicas} != {request.spec.replication_factor}
        if not (factor_differs or just_submitted or request.status.get("replicasChange")):
            return frozenset()
        return await admin.partitions_being_reassigned(topic.name)

    async def _observe_until_applied(
        self, request: ReconcileRequest[KafkaTopicSpec], name: str, admin: KafkaAdmin
    ) -> Observation:
        for _ in range(VERIFY_ATTEMPTS):
            observation = await admin.observe(name)
            if not _pending_besides_reassignment(self._plan(request, name, observation, frozenset())):
                break
            await asyncio.sleep(VERIFY_INTERVAL_SECONDS)
        return observation

    async def _apply(
        self,
        request: ReconcileRequest[KafkaTopicSpec],
        name: str,
        admin: KafkaAdmin,
        observation: Observation,
        plan: TopicPlan,
    ) -> tuple[tuple[EventNote, ...], Outcome | None]:
        """Apply the plan's changes; Events for what was done (and an adoption), and the failure if one
        stopped it."""
        # Independent changes go out together; each joins its own batch.
        results = await settle(*(_apply_one(admin, change) for change in plan.changes))
        done: list[Change] = []
        failure: Outcome | None = None
        for change, result in zip(plan.changes, results, strict=True):
            if result is None:
                done.append(change)
            elif failure is None:
                failure = failure_outcome(name, change, result, admin.connection.redact)
        return self._change_events(request, name, observation, done), failure

    def _change_events(
        self, request: ReconcileRequest[KafkaTopicSpec], name: str, observation: Observation, done: list[Change]
    ) -> tuple[EventNote, ...]:
        if request.spec_applied:
            if not done:
                return ()
            what = "; ".join(
                ("the topic was missing and was " if isinstance(c, CreateTopic) else "") + c.summary() for c in done
            )
            return (
                EventNote(DRIFT_CORRECTED, f"Corrected changes made outside this object to topic '{name}': {what}."),
            )
        events = []
        if observation.topic is not None and not request.status.get("topicId"):
            events.append(EventNote(ADOPTED, f"Adopted the existing topic '{name}' (id {observation.topic.topic_id})."))
        updates = []
        for change in done:
            if isinstance(change, CreateTopic):
                events.append(EventNote(CREATED, f"Topic '{name}' {change.summary()}."))
            elif isinstance(change, ReassignReplicas):
                events.append(EventNote(REASSIGNMENT_STARTED, f"Topic '{name}': {change.summary()}."))
            else:
                updates.append(change.summary())
        if updates:
            events.append(EventNote(UPDATED, f"Topic '{name}': {'; '.join(updates)}."))
        return tuple(events)

    def _verdict(
        self,
        request: ReconcileRequest[KafkaTopicSpec],
        name: str,
        observation: Observation,
        plan: TopicPlan,
        reassigning: frozenset[int],
        events: tuple[EventNote, ...],
        *,
        applied: bool,
    ) -> Outcome:
        topic = observation.topic
        config_pending = any(isinstance(c, AlterConfig) for c in plan.changes)
        managed = request.status.get("managedConfigKeys") if config_pending else sorted(request.spec.config)
        factor = request.spec.replication_factor
        if plan.blocker is not None:
            return Outcome.stalled(
                plan.blocker.reason, plan.blocker.message, _facts(name, observation, managed, None), events
            )
        if topic is None or _pending_besides_reassignment(plan):
            return Outcome.progressing(
                f"Waiting for Kafka to show the changes to topic '{name}'.",
                _facts(name, observation, managed, None),
                1.0,
                events,
                unconfirmed_changes=applied,
            )
        if reassigning or plan.changes:
            return Outcome.progressing(
                f"Reassigning topic '{name}' to replication factor {factor}: "
                f"{topic.partitions - len(reassigning)} of {topic.partitions} partitions done.",
                _facts(name, observation, managed, {"targetReplicationFactor": factor}),
                REASSIGNMENT_POLL_SECONDS,
                events,
            )
        if request.status.get("replicasChange") or any(e.reason == REASSIGNMENT_STARTED for e in events):
            events += (EventNote(REPLICAS_REASSIGNED, f"Topic '{name}' now has replication factor {factor}."),)
        return Outcome.ready(
            f"Topic '{name}' is in sync: {topic.partitions} partitions, replication factor "
            f"{topic.replication_factor}, {len(request.spec.config)} managed config key(s).",
            _facts(name, observation, managed, None),
            events,
        )

    # --- delete -------------------------------------------------------------------------

    async def delete(self, request: ReconcileRequest[KafkaTopicSpec]) -> Outcome:
        name = topic_name_of(request.body)
        try:
            admin = await self._admin_for(request.key.namespace, request.spec.cluster_ref, fresh=True)
            observation = await admin.observe(name)
            owner = owner_other_than(request.body, request.peers, observation.cluster.cluster_id)
            if owner is not None:
                return Outcome.ready(
                    "", {}, (EventNote(RETAINED, f"Left topic '{name}' in place: KafkaTopic {owner} manages it."),)
                )
            if observation.topic is not None and observation.topic.internal:
                note = EventNote(RETAINED, f"Left topic '{name}' in place: it is one of Kafka's internal topics.", True)
                return Outcome.ready("", {}, (note,))
            await admin.delete(name)
        except ConnectionSecretMissing as error:
            # Without its Secret the topic cannot be reached as this object; holding the
            # finalizer would hang the deletion (a namespace's Secrets go first) for good.
            return Outcome.ready(
                "",
                {},
                (
                    EventNote(
                        RETAINED, f"Left topic '{name}' in place: {error}, so it cannot be deleted.", warning=True
                    ),
                ),
            )
        except KubeError as error:
            return Outcome.retrying(f"Could not read the clusterRef Secret to delete topic '{name}': {error}")
        except ClusterRefInvalid as error:
            return Outcome.stalled(
                CLUSTER_REF_INVALID,
                f"Cannot delete topic '{name}': {error}. Fix it, or set deletionPolicy: Retain to let "
                "this object go without deleting the topic.",
            )
        except (KafkaUnavailable, KafkaRefused) as error:
            where = admin.connection
            return Outcome.retrying(where.redact(f"Deleting topic '{name}' failed ({where.name}): {error}"))
        return Outcome.ready("", {}, (EventNote(DELETED, f"Deleted topic '{name}' (deletionPolicy: Delete)."),))


def _facts(
    name: str, observation: Observation, managed_keys: Any, replicas_change: Mapping[str, int] | None
) -> dict[str, Any]:
    topic = observation.topic
    return {
        "topicName": name,
        "clusterId": observation.cluster.cluster_id,
        "topicId": topic.topic_id if topic else None,
        "partitions": topic.partitions if topic else None,
        "replicationFactor": topic.replication_factor if topic else None,
        "managedConfigKeys": list(managed_keys) if managed_keys else None,
        "replicasChange": dict(replicas_change) if replicas_change else None,
    }


def failure_outcome(name: str, change: Change, error: BaseException, redact: Callable[[str], str]) -> Outcome:
    """What a failed change means for the object: stall on refusals Kafka would repeat, retry the rest."""
    if isinstance(error, KafkaRefused):
        if error.code in AUTHORIZATION_FAILURES:
            return Outcome.stalled(
                NOT_AUTHORIZED, redact(f"Kafka refused {change.summary()} for topic '{name}' ({error.code}): {error}")
            )
        if error.code == "INVALID_PARTITIONS" and isinstance(change, IncreasePartitions):
            # The plan only asks for more partitions than it saw, so the broker that
            # answered the describe was behind the controller (as after a restart).
            return Outcome.retrying(
                redact(f"Kafka refused {change.summary()} for topic '{name}' ({error}); re-reading the topic.")
            )
        if error.code == "INVALID_CONFIG":
            return Outcome.stalled(INVALID_CONFIG, redact(f"Kafka refused the config of topic '{name}': {error}"))
        if error.code == "INVALID_REPLICATION_FACTOR":
            return Outcome.stalled(INSUFFICIENT_BROKERS, redact(f"Kafka refused topic '{name}': {error}"))
        return Outcome.stalled(REFUSED, redact(f"Kafka refused to change topic '{name}' ({error.code}): {error}"))
    if isinstance(error, ClusterRefInvalid):
        return Outcome.stalled(CLUSTER_REF_INVALID, f"{error}.")
    if isinstance(error, TopicAlreadyExists):
        # Deleted outside moments ago and Kafka is still removing it, or made by someone else meanwhile.
        return Outcome.progressing(f"Topic '{name}' is still being deleted by Kafka; checking again shortly.", {}, 1.0)
    return Outcome.retrying(redact(f"Changing topic '{name}' ({change.summary()}) failed, will retry: {error}"))


def _observation_failure(name: str, error: KafkaUnavailable | KafkaRefused, admin: KafkaAdmin) -> Outcome:
    if isinstance(error, KafkaUnavailable):
        return Outcome.retrying(admin.explain(error))
    if error.code in AUTHORIZATION_FAILURES:
        # Rights are granted outside the spec: rechecked on every resync, not sticky.
        return Outcome.stalled(
            NOT_AUTHORIZED,
            admin.connection.redact(
                f"Kafka refused to describe topic '{name}' to this connection ({admin.connection.name}): "
                f"{error.code}: {error}"
            ),
            {"topicName": name},
        )
    return Outcome.retrying(
        admin.connection.redact(f"Kafka refused to describe topic '{name}' ({error.code}): {error}")
    )


def _with_events(outcome: Outcome, events: tuple[EventNote, ...]) -> Outcome:
    return replace(outcome, events=events + outcome.events)


def _pending_besides_reassignment(plan: TopicPlan) -> bool:
    return any(not isinstance(change, ReassignReplicas) for change in plan.changes)


def _apply_one(admin: KafkaAdmin, change: Change) -> Awaitable[None]:
    if isinstance(change, CreateTopic):
        return admin.create(change)
    if isinstance(change, IncreasePartitions):
        return admin.increase_partitions(change)
    if isinstance(change, AlterConfig):
        return admin.alter_config(change)
    return admin.reassign(change)
