"""ElasticsearchIndex's answers to the core's questions: how to reach the search cluster, what an index
looks like there, which changes make it match the spec, and what the result means.

Everything kinds share (ownership, adoption, report or apply, verification,
the Event vocabulary) is in controllers.core.sync.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from controllers.core.clients import ClientPool
from controllers.core.connections import Connections
from controllers.core.failpoints import crash_point
from controllers.core.kind import ReconcileRequest
from controllers.core.model import DriftPolicy
from controllers.core.outcome import KindCondition, Outcome
from controllers.core.policy import KindPolicy
from controllers.elasticsearchindex.client import IndexNotEmpty, SearchClient, SearchRefused, SearchUnavailable
from controllers.elasticsearchindex.connection import SEARCH_CONNECTION
from controllers.elasticsearchindex.migration import (
    COUNT_MISMATCH,
    MIGRATION_FAILED,
    MIGRATION_UNSUPPORTED,
    CatchUp,
    DeleteOldIndex,
    MigrationChange,
    MigrationPlan,
    StartCopy,
    StopMigration,
    SwitchAlias,
    counts_needed,
    plan_migration,
    start_facts_needed,
)
from controllers.elasticsearchindex.model import (
    FINALIZER,
    HEALTHY,
    RESOURCE,
    ElasticsearchIndexPolicy,
    ElasticsearchIndexSpec,
    ElasticsearchIndexStatus,
    IndexDeletionPolicy,
    MigrationStatus,
    index_name_of,
    is_versioned_index,
)
from controllers.elasticsearchindex.normalise import mapping_fields
from controllers.elasticsearchindex.plan import (
    REQUIRES_MIGRATION,
    Change,
    CreateIndex,
    DesiredIndex,
    IndexPlan,
    Managed,
    PutMapping,
    UpdateSettings,
    plan_index,
)
from controllers.elasticsearchindex.state import CopyTask, MigrationFacts, Observation

NOT_AUTHORIZED = "NotAuthorized"
REFUSED = "SearchRefused"
INDEX_NOT_EMPTY = "IndexNotEmpty"
# The servers' words for a setting or mapping change that needs a new index.
_NOT_IN_PLACE = re.compile(
    r"non dynamic settings|final .* setting|cannot be changed from type|mapper \[.*\] cannot be changed|"
    r"Cannot update parameter|cannot update parameter|conflicts with existing mapping",
    re.IGNORECASE,
)

Request = ReconcileRequest[ElasticsearchIndexSpec, ElasticsearchIndexStatus]

_HEALTH = {
    "green": ("True", "Green", "All primary and replica shards are assigned."),
    "yellow": (
        "False",
        "Yellow",
        "All primary shards are assigned, some replicas are not (the cluster has too few nodes for them, "
        "or they are being allocated): searches and writes work, a node loss may lose data.",
    ),
    "red": ("False", "Red", "Some primary shards are not assigned: searches and writes to them fail."),
}


class ElasticsearchIndexKind:
    resource = RESOURCE
    noun = "index"
    nouns = "indices"
    spec_model = ElasticsearchIndexSpec
    status_model = ElasticsearchIndexStatus
    finalizer = FINALIZER
    policy_model: type[KindPolicy] = ElasticsearchIndexPolicy
    # A migration that failed or found the counts differ is started again only when asked (a new
    # generation or a reconcile request), as is one the server cannot run.
    sticky_stall_reasons = frozenset(
        {REFUSED, REQUIRES_MIGRATION, MIGRATION_FAILED, COUNT_MISMATCH, MIGRATION_UNSUPPORTED}
    )
    service_errors: tuple[type[Exception], ...] = (SearchUnavailable, SearchRefused, IndexNotEmpty)

    def __init__(
        self,
        connections: Connections,
        clients: ClientPool[SearchClient],
        default_connection: Mapping[str, str] | None,
    ):
        self._connections = connections
        self._clients = clients
        self._default_connection = default_connection
        # The copy task each migration's last step started, by (connection, target), until the status
        # records it: a task can end before the pass that started it looks again.
        self._started: dict[tuple[str, str], tuple[str, bool]] = {}

    def claim(self, body: Mapping[str, Any]) -> str:
        return index_name_of(body)

    async def client(self, namespace: str, spec: ElasticsearchIndexSpec, *, fresh: bool) -> SearchClient:
        connection = await self._connections.resolve(
            namespace,
            spec.cluster_ref.name if spec.cluster_ref else None,
            fresh=fresh,
            default=self._default_connection,
            schema=SEARCH_CONNECTION,
        )
        return self._clients.for_connection(connection)

    async def observe(self, client: SearchClient, request: Request, *, applied: Sequence[Any]) -> Observation:
        observation = await client.observe(index_name_of(request.body))
        recorded = request.status.migration
        if recorded is not None:
            facts = await self._migration_facts(client, observation, recorded, applied)
            return replace(observation, migration=facts)
        # No migration recorded: a copy task remembered for one of this name's targets is from an earlier one.
        for key in [k for k in self._started if k[0] == client.where and is_versioned_index(observation.name, k[1])]:
            del self._started[key]
        if start_facts_needed(
            self._base_plan(request, observation), request.spec.migration, may_start=_may_start(request)
        ):
            index = observation.index
            assert index is not None  # a migration is needed only for an index that exists
            supported = await client.reindex_supported()
            facts = MigrationFacts(
                reindex_supported=supported,
                versions=await client.versions(observation.name) if supported else (),
                checkpoint=await client.checkpoint(
                    index.name, _number(index.settings.get("index.number_of_shards")) or 0
                )
                if supported
                else None,
            )
            return replace(observation, migration=facts)
        return observation

    async def _migration_facts(
        self, client: SearchClient, observation: Observation, recorded: MigrationStatus, applied: Sequence[Any]
    ) -> MigrationFacts:
        """The server's side of a recorded migration: its indices, its copy task, and the counts when due."""
        source, target = recorded.source_index, recorded.target_index
        found = await client.indices([source, target])
        facts = MigrationFacts(source=found.get(source), target=found.get(target))
        stopped = next((c.stall for c in applied if isinstance(c, StopMigration) and c.stall is not None), None)
        if stopped is not None:
            return replace(facts, stopped=stopped)
        # The task this process started last, else the one the status names.
        task_id, catch_up = self._started.get((client.where, target), (recorded.task, recorded.step == "CatchingUp"))
        task: CopyTask | None = None
        if task_id is not None:
            task = await client.copy_task(task_id, catch_up=catch_up)
        if task is None or task.completed:
            # A copy started by a pass cut short before the status named it; while writes are blocked it can
            # only be the final one.
            pass_two = facts.source_blocked or recorded.step == "CatchingUp"
            orphans = await client.copies_running(source, target, catch_up=pass_two)
            facts = replace(facts, orphans=tuple(o for o in orphans if task is None or o.id != task.id))
        facts = replace(facts, task=task)
        if counts_needed(facts) and not facts.orphans:
            facts = replace(facts, documents=(await client.documents(source), await client.documents(target)))
        return facts

    def _base_plan(self, request: Request, observation: Observation) -> IndexPlan:
        status = request.status
        managed = Managed(
            settings=frozenset(status.managed_settings),
            fields=frozenset(status.managed_fields),
            aliases=frozenset(status.managed_aliases),
        )
        return plan_index(DesiredIndex.from_spec(index_name_of(request.body), request.spec), observation, managed)

    def plan(self, request: Request, observation: Observation) -> IndexPlan | MigrationPlan:
        return plan_migration(
            DesiredIndex.from_spec(index_name_of(request.body), request.spec),
            self._base_plan(request, observation),
            observation,
            request.status.migration,
            request.spec.migration,
            may_start=_may_start(request),
        )

    def apply(self, client: SearchClient, change: Change | MigrationChange) -> Awaitable[None]:
        if isinstance(change, StartCopy | CatchUp | SwitchAlias | DeleteOldIndex | StopMigration):
            return self._migrate(client, change)
        if isinstance(change, CreateIndex):
            return client.create(change)
        if isinstance(change, UpdateSettings):
            return client.update_settings(change)
        if isinstance(change, PutMapping):
            return client.put_mapping(change)
        return client.update_aliases(change)

    async def _migrate(self, client: SearchClient, change: MigrationChange) -> None:
        step = type(change).__name__
        crash_point(f"migration.before-{step}")
        key = (client.where, change.target)
        if isinstance(change, StartCopy):
            self._started[key] = (await client.start_copy(change), False)
        elif isinstance(change, CatchUp):
            self._started[key] = (await client.catch_up(change), True)
        elif isinstance(change, SwitchAlias):
            await client.switch(change)
            self._started.pop(key, None)
        elif isinstance(change, DeleteOldIndex):
            await client.delete([change.index])
        else:
            await client.stop(change)
            self._started.pop(key, None)
        crash_point(f"migration.after-{step}")

    def protected(self, observation: Observation) -> str | None:
        if any(index.system for index in observation.indices):
            return "is a hidden or system index of the server: never changed, adopted or deleted"
        return None

    def conditions(self, observation: Observation) -> tuple[KindCondition, ...]:
        index = observation.index
        if index is None:
            return (KindCondition(HEALTHY, "Unknown", "NotFound", f"Index '{observation.name}' does not exist."),)
        status, reason, message = _HEALTH.get(
            index.health or "", ("Unknown", "Unknown", f"The server reports health {index.health!r}.")
        )
        return (KindCondition(HEALTHY, status, reason, message),)

    def references_version(self, observation: Observation) -> str | None:
        return None  # the spec takes no values from ConfigMaps or Secrets

    def recorded_id(self, status: ElasticsearchIndexStatus) -> str | None:
        return status.index_uuid

    def inventories(self) -> list[Awaitable[tuple[str, frozenset[str]]]]:
        """Per cluster reached: its uuid and the names of its indices (hidden and system ones left out)."""
        return [client.index_names() for client in self._clients.in_use()]

    def delete(self, client: SearchClient, request: Request, observation: Observation) -> Awaitable[None]:
        name = index_name_of(request.body)
        # The index itself, or the operator's versioned indices behind its alias; never someone else's.
        ours = [
            index.name for index in observation.indices if index.name == name or is_versioned_index(name, index.name)
        ]
        return self._delete(client, request, ours, _abandon(request.status.migration, observation.migration))

    async def _delete(
        self, client: SearchClient, request: Request, ours: list[str], abandon: StopMigration | None
    ) -> None:
        if abandon is not None:
            # A migration under way: its copies end first (a copy into a deleted index re-creates it).
            await client.stop(abandon)
        if request.spec.deletion_policy is IndexDeletionPolicy.DELETE_IF_EMPTY:
            await client.delete_if_empty(ours)
        else:
            await client.delete(ours)

    def failure(self, client: SearchClient, name: str, change: Change | None, error: Exception) -> Outcome:
        """Stall on refusals the server would repeat; retry the rest."""
        redact = client.connection.redact
        if isinstance(error, IndexNotEmpty):
            # Rechecked every resync: emptying the index (or deletionPolicy: Retain) lets the object go.
            return Outcome.stalled(
                INDEX_NOT_EMPTY,
                f"Index '{name}' was not deleted: {error}, and deletionPolicy is DeleteIfEmpty. Empty it, or set "
                "deletionPolicy: Retain to let this object go and keep the index.",
            )
        if isinstance(error, SearchRefused):
            what = _attempt(name, change)
            if error.status in (401, 403):
                # Rights are granted outside the spec: rechecked on every resync, not sticky.
                return Outcome.stalled(NOT_AUTHORIZED, redact(f"The server refused {what} to {client.where}: {error}"))
            if change is None:
                return Outcome.retrying(redact(f"The server refused to show index '{name}': {error}"))
            if isinstance(change, CreateIndex) and error.error_type == "resource_already_exists_exception":
                return Outcome.progressing(f"Index '{name}' was created meanwhile; reading it again.", {}, 1.0)
            if isinstance(change, StartCopy) and error.error_type == "resource_already_exists_exception":
                return Outcome.progressing(f"Index '{change.target}' was created meanwhile; reading it again.", {}, 1.0)
            if (
                isinstance(change, StartCopy | CatchUp)
                and error.status in (400, 404, 405)
                and ("reindex" in str(error).lower() and error.error_type != "action_request_validation_exception")
            ):
                return Outcome.stalled(
                    MIGRATION_UNSUPPORTED,
                    redact(f"Migrating index '{name}' needs the server's _reindex API, which it refused: {error}."),
                )
            if isinstance(change, UpdateSettings | PutMapping) and _NOT_IN_PLACE.search(str(error)):
                return Outcome.stalled(
                    REQUIRES_MIGRATION,
                    redact(
                        f"Index '{name}' cannot be changed in place ({change.summary()}): the server says {error}. "
                        "Nothing else was changed; set spec.migration to move it to a new index by reindexing."
                    ),
                )
            return Outcome.stalled(REFUSED, redact(f"The server refused {what}: {error}"))
        if change is None:
            return Outcome.retrying(client.explain(error))
        return Outcome.retrying(redact(f"Changing index '{name}' ({change.summary()}) failed, will retry: {error}"))

    def verdict(
        self,
        request: Request,
        observation: Observation,
        plan: IndexPlan | MigrationPlan,
        *,
        applied: Sequence[Change | MigrationChange],
    ) -> Outcome:
        if isinstance(plan, MigrationPlan) and plan.progress is not None:
            return Outcome.progressing(plan.progress, {}, plan.poll_seconds)
        index = observation.index
        assert index is not None  # the core asks only once the index shows
        shards = index.settings.get("index.number_of_shards")
        replicas = index.settings.get("index.number_of_replicas")
        where = f" (behind alias '{observation.name}')" if observation.name_is_alias else ""
        return Outcome.ready(
            f"Index '{index.name}'{where} is in sync: {shards} shard(s), {replicas} replica(s), "
            f"{len(mapping_fields(request.spec.mappings))} declared field(s), {len(request.spec.aliases)} alias(es).",
            {},
        )

    def facts(
        self, request: Request, observation: Observation | None, plan: IndexPlan | MigrationPlan | None
    ) -> dict[str, Any]:
        name = index_name_of(request.body)
        if observation is None or plan is None:
            return _status_fields(ElasticsearchIndexStatus(index_name=name))
        index = observation.index
        migrating = isinstance(plan, MigrationPlan) and plan.record is not None
        # Not while a migration runs: a removed field would stop counting as one before the move.
        settled = not plan.changes and plan.blocker is None and not migrating
        status = request.status
        observed = ElasticsearchIndexStatus(
            index_name=name,
            concrete_index=index.name if index else None,
            index_uuid=index.uuid if index else None,
            shards=_number(index.settings.get("index.number_of_shards")) if index else None,
            replicas=_number(index.settings.get("index.number_of_replicas")) if index else None,
            # What the spec owns moves on once it is applied, so a later removal is undone.
            managed_settings=sorted(DesiredIndex.from_spec(name, request.spec).settings)
            if settled
            else status.managed_settings,
            managed_fields=sorted(mapping_fields(request.spec.mappings)) if settled else status.managed_fields,
            managed_aliases=sorted(request.spec.aliases) if settled else status.managed_aliases,
        )
        fields = _status_fields(observed)
        if isinstance(plan, MigrationPlan):
            fields["migration"] = (
                plan.record.model_dump(by_alias=True, exclude_none=True, mode="json") if plan.record else None
            )
        return fields


def _abandon(recorded: MigrationStatus | None, facts: MigrationFacts | None) -> StopMigration | None:
    """What deleting the object undoes of a migration under way: its copies, the block, its target."""
    if recorded is None or facts is None:
        return None
    task = facts.task
    running = tuple(t.id for t in (*((task,) if task and not task.completed else ()), *facts.orphans))
    if not (running or facts.source_blocked or facts.target is not None):
        return None
    return StopMigration(
        source=recorded.source_index,
        target=recorded.target_index,
        why="the object was deleted",
        cancel=running,
        unblock=facts.source_blocked,
        delete_target=facts.target is not None,
    )


def _may_start(request: Request) -> bool:
    """A difference found once the spec was applied is drift: under driftPolicy Report it is only reported."""
    return not (request.spec_applied and request.spec.drift_policy is DriftPolicy.REPORT)


def _attempt(name: str, change: Change | None) -> str:
    """What was refused, as "The server refused ..." goes on."""
    if change is None:
        return f"reading index '{name}'"
    if isinstance(change, CreateIndex):
        return f"creating index '{name}'"
    return f"changing index '{name}' ({change.summary()})"


def _number(value: Any) -> int | None:
    return int(value) if isinstance(value, str) and value.isdigit() else None


def _status_fields(status: ElasticsearchIndexStatus) -> dict[str, Any]:
    """The fields set on a typed status, by their Kubernetes names; a None removes the field."""
    return status.model_dump(by_alias=True, exclude_unset=True)
