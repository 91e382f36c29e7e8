"""ElasticsearchIndex's answers to the core's questions: how to reach the search cluster, what an index
looks like there, which changes make it match the spec, and what the result means.

Everything kinds share (ownership, adoption, report or apply, verification,
the Event vocabulary) is in controllers.core.sync.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Mapping, Sequence
from typing import Any

from controllers.core.clients import ClientPool
from controllers.core.connections import Connections
from controllers.core.kind import ReconcileRequest
from controllers.core.outcome import KindCondition, Outcome
from controllers.core.policy import KindPolicy
from controllers.core.tasks import settle
from controllers.elasticsearchindex.client import IndexNotEmpty, SearchClient, SearchRefused, SearchUnavailable
from controllers.elasticsearchindex.connection import SEARCH_CONNECTION
from controllers.elasticsearchindex.model import (
    FINALIZER,
    HEALTHY,
    RESOURCE,
    ElasticsearchIndexPolicy,
    ElasticsearchIndexSpec,
    ElasticsearchIndexStatus,
    IndexDeletionPolicy,
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
from controllers.elasticsearchindex.state import Observation

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
    sticky_stall_reasons = frozenset({REFUSED, REQUIRES_MIGRATION})
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
        return await client.observe(index_name_of(request.body))

    def plan(self, request: Request, observation: Observation) -> IndexPlan:
        status = request.status
        managed = Managed(
            settings=frozenset(status.managed_settings),
            fields=frozenset(status.managed_fields),
            aliases=frozenset(status.managed_aliases),
        )
        return plan_index(DesiredIndex.from_spec(index_name_of(request.body), request.spec), observation, managed)

    def apply(self, client: SearchClient, change: Change) -> Awaitable[None]:
        if isinstance(change, CreateIndex):
            return client.create(change)
        if isinstance(change, UpdateSettings):
            return client.update_settings(change)
        if isinstance(change, PutMapping):
            return client.put_mapping(change)
        return client.update_aliases(change)

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

    def recorded_id(self, status: ElasticsearchIndexStatus) -> str | None:
        return status.index_uuid

    async def inventories(self) -> list[tuple[str, frozenset[str]]]:
        """Per cluster reached: its uuid and the names of its indices (hidden and system ones left out)."""
        listings = await settle(*(client.index_names() for client in self._clients.in_use()))
        found = []
        for listing in listings:
            if isinstance(listing, SearchUnavailable | SearchRefused):
                continue  # the objects using this connection say so in their conditions
            if isinstance(listing, BaseException):
                raise listing
            found.append(listing)
        return found

    def delete(self, client: SearchClient, request: Request, observation: Observation) -> Awaitable[None]:
        name = index_name_of(request.body)
        # The index itself, or the operator's versioned indices behind its alias; never someone else's.
        ours = [
            index.name for index in observation.indices if index.name == name or is_versioned_index(name, index.name)
        ]
        if request.spec.deletion_policy is IndexDeletionPolicy.DELETE_IF_EMPTY:
            return client.delete_if_empty(ours)
        return client.delete(ours)

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
            what = change.summary() if change is not None else "reading it"
            if error.status in (401, 403):
                # Rights are granted outside the spec: rechecked on every resync, not sticky.
                return Outcome.stalled(
                    NOT_AUTHORIZED,
                    redact(f"The server refused {what} for index '{name}' to {client.where}: {error}"),
                )
            if change is None:
                return Outcome.retrying(redact(f"The server refused to show index '{name}': {error}"))
            if isinstance(change, CreateIndex) and error.error_type == "resource_already_exists_exception":
                return Outcome.progressing(f"Index '{name}' was created meanwhile; reading it again.", {}, 1.0)
            if isinstance(change, UpdateSettings | PutMapping) and _NOT_IN_PLACE.search(str(error)):
                return Outcome.stalled(
                    REQUIRES_MIGRATION,
                    redact(
                        f"Index '{name}' cannot be changed in place ({change.summary()}): the server says {error}. "
                        "Nothing else was changed; set spec.migration to move it to a new index by reindexing."
                    ),
                )
            return Outcome.stalled(REFUSED, redact(f"The server refused {what} for index '{name}': {error}"))
        if change is None:
            return Outcome.retrying(client.explain(error))
        return Outcome.retrying(redact(f"Changing index '{name}' ({change.summary()}) failed, will retry: {error}"))

    def verdict(
        self, request: Request, observation: Observation, plan: IndexPlan, *, applied: Sequence[Change]
    ) -> Outcome:
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

    def facts(self, request: Request, observation: Observation | None, plan: IndexPlan | None) -> dict[str, Any]:
        name = index_name_of(request.body)
        if observation is None or plan is None:
            return _status_fields(ElasticsearchIndexStatus(index_name=name))
        index = observation.index
        settled = not plan.changes and plan.blocker is None
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
        return _status_fields(observed)


def _number(value: Any) -> int | None:
    return int(value) if isinstance(value, str) and value.isdigit() else None


def _status_fields(status: ElasticsearchIndexStatus) -> dict[str, Any]:
    """The fields set on a typed status, by their Kubernetes names; a None removes the field."""
    return status.model_dump(by_alias=True, exclude_unset=True)
