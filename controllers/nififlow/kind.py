"""NiFiFlow's answers to the core's questions: how to reach NiFi, what a flow looks like there, which
changes make it match the spec, and what the result means.

Everything kinds share (ownership, adoption, report or apply, verification,
the Event vocabulary) is in controllers.core.sync.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import json
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from controllers.core.clients import ClientPool
from controllers.core.connections import Connections
from controllers.core.kind import Blocker, ReconcileRequest
from controllers.core.outcome import KindCondition, Outcome
from controllers.core.policy import NOT_PERMITTED, KindPolicy
from controllers.core.references import ReferenceInvalid, References
from controllers.nififlow.client import FlowNotDrained, FlowRef, NiFiClient, NiFiRefused, NiFiUnavailable
from controllers.nififlow.connection import NIFI_CONNECTION
from controllers.nififlow.definition import context_name, prepare, services_outside
from controllers.nififlow.model import (
    FINALIZER,
    RESOURCE,
    FlowDeletionPolicy,
    NiFiFlowPolicy,
    NiFiFlowSpec,
    NiFiFlowStatus,
    UpdateStrategy,
    process_group_name_of,
)
from controllers.nififlow.normalise import FlowDefinitionInvalid, flow_content, flow_contents
from controllers.nififlow.plan import (
    DRAIN_TIMED_OUT,
    Change,
    DeployFlow,
    DesiredFlow,
    FlowPlan,
    ReplaceFlow,
    StopSources,
    UpdateParameters,
    plan_flow,
)
from controllers.nififlow.state import Observation

NOT_AUTHORIZED = "NotAuthorized"
REFUSED = "NiFiRefused"
FLOW_INVALID = "FlowDefinitionInvalid"
QUEUED_DATA_KEPT = "QueuedDataKept"
DRAIN_POLL_SECONDS = 2.0
# How long one deletion attempt waits for a Drain; the next attempt goes on waiting.
DELETE_DRAIN_WAIT_SECONDS = 30.0
# The unmanaged-flow report reuses a resync's read of NiFi this recent instead of asking again.
INVENTORY_MAX_AGE_SECONDS = 60.0

Request = ReconcileRequest[NiFiFlowSpec, NiFiFlowStatus]


@dataclass(frozen=True)
class FlowObservation:
    """What NiFi has, and the flow the spec asks for once its ConfigMap and Secrets were read."""

    nifi: Observation
    desired: DesiredFlow | None
    invalid: str | None = None  # why the spec's flow cannot be read (a missing key, JSON that is not a flow)

    @property
    def instance(self) -> str:
        return self.nifi.instance

    @property
    def resource_id(self) -> str | None:
        return self.nifi.resource_id


class NiFiFlowKind:
    resource = RESOURCE
    noun = "flow"
    nouns = "flows"
    spec_model = NiFiFlowSpec
    status_model = NiFiFlowStatus
    finalizer = FINALIZER
    policy_model: type[KindPolicy] = NiFiFlowPolicy
    # A refused request or a drain that ran out of time is tried again only for a new generation
    # (or a reconcile request); an invalid flow is rechecked every resync (a service may come up).
    sticky_stall_reasons = frozenset({REFUSED, DRAIN_TIMED_OUT})
    service_errors: tuple[type[Exception], ...] = (NiFiUnavailable, NiFiRefused, FlowNotDrained)

    def __init__(
        self,
        connections: Connections,
        references: References,
        clients: ClientPool[NiFiClient],
        default_connection: Mapping[str, str] | None,
    ) -> None:
        self._connections = connections
        self._references = references
        self._clients = clients
        self._default_connection = default_connection
        # Changes to one group go out one at a time, in the plan's order.
        self._locks: dict[str, asyncio.Lock] = {}
        # The Secret versions last set as sensitive values, by NiFi and context, until the status says so:
        # NiFi never shows the values, so without this a pass could not see that it had set them.
        self._sensitive_set: dict[tuple[str, str], str] = {}

    def claim(self, body: Mapping[str, Any]) -> str:
        parent = (body.get("spec") or {}).get("parentProcessGroupId") or "root"
        return f"{parent}/{process_group_name_of(body)}"

    async def client(self, namespace: str, spec: NiFiFlowSpec, *, fresh: bool) -> NiFiClient:
        connection = await self._connections.resolve(
            namespace,
            spec.cluster_ref.name if spec.cluster_ref else None,
            fresh=fresh,
            default=self._default_connection,
            schema=NIFI_CONNECTION,
        )
        return self._clients.for_connection(connection)

    async def observe(self, client: NiFiClient, request: Request, *, applied: Sequence[Any]) -> FlowObservation:
        key = request.key
        owned = context_name(key.namespace, key.name)
        ref = FlowRef(
            parent_id=request.spec.parent_process_group_id,
            name=process_group_name_of(request.body),
            recorded_id=request.status.process_group_id,
            context_name=owned,
        )
        desired: DesiredFlow | None = None
        invalid: str | None = None
        try:
            desired = await self._desired(request, owned)
        except (ReferenceInvalid, FlowDefinitionInvalid) as error:
            invalid = str(error)
        return FlowObservation(nifi=await client.observe(ref), desired=desired, invalid=invalid)

    async def _desired(self, request: Request, owned: str) -> DesiredFlow:
        spec, namespace = request.spec, request.key.namespace
        referenced: list[str] = []
        if spec.flow_definition_ref is not None:
            ref = spec.flow_definition_ref
            found = await self._references.config_map_key(namespace, ref.name, ref.key)
            text = found.value
            referenced.append(f"configmap {ref.name}/{ref.key}@{found.version}")
            try:
                definition = json.loads(text)
            except json.JSONDecodeError as error:
                raise FlowDefinitionInvalid(
                    f"ConfigMap {namespace}/{ref.name} key {ref.key!r} is not JSON: {error}"
                ) from None
            if not isinstance(definition, dict):
                raise FlowDefinitionInvalid(f"ConfigMap {namespace}/{ref.name} key {ref.key!r} is not a JSON object")
        else:
            definition = spec.flow_definition or {}
        prepared = prepare(definition, owned)
        plain = dict(prepared.default_parameters)
        sensitive: dict[str, str] = {}
        versions: list[str] = []
        for parameter in spec.parameters:
            if parameter.secret_key_ref is None:
                plain[parameter.name] = parameter.value or ""
                continue
            secret = parameter.secret_key_ref
            found = await self._references.secret_key(namespace, secret.name, secret.key)
            sensitive[parameter.name] = found.value
            versions.append(f"{secret.name}/{secret.key}@{found.version}")
            plain.pop(parameter.name, None)
        return DesiredFlow(
            group_name=process_group_name_of(request.body),
            parent_id=spec.parent_process_group_id,
            definition=prepared.definition,
            content=flow_content(flow_contents(prepared.definition)),
            context_name=owned,
            parameters=plain,
            sensitive=sensitive,
            sensitive_version=_digest(sorted(versions)),
            references_version=_digest(sorted(referenced + versions)) if referenced or versions else None,
            state=spec.state,
            update_strategy=spec.update_strategy,
        )

    def plan(self, request: Request, observation: FlowObservation) -> FlowPlan:
        desired = observation.desired
        if desired is None:
            return FlowPlan(
                blocker=Blocker(FLOW_INVALID, f"The flow cannot be read: {observation.invalid}. Nothing was changed.")
            )
        restricted = sorted(
            key
            for key, fields in desired.content.components.items()
            if fields.get("type") in observation.nifi.nifi.restricted_types
        )
        outside = services_outside(flow_contents(desired.definition), {**desired.parameters, **desired.sensitive})
        policy = request.policy
        if isinstance(policy, NiFiFlowPolicy):
            namespace = request.key.namespace
            why = policy.restricted_refusal(namespace, restricted) or policy.shared_services_refusal(namespace, outside)
            if why is not None:
                return FlowPlan(blocker=Blocker(NOT_PERMITTED, f"Not permitted: {why}. Nothing was changed."))
        return plan_flow(
            desired,
            observation.nifi,
            applied_sensitive_version=self._sensitive_version(request, observation),
            drain_expired=_drain_expired(request),
        )

    def _sensitive_version(self, request: Request, observation: FlowObservation) -> str | None:
        desired = observation.desired
        key = (observation.instance, desired.context_name if desired else "")
        return self._sensitive_set.get(key, request.status.sensitive_version)

    def apply(self, client: NiFiClient, change: Change) -> Awaitable[None]:
        return self._apply(client, change)

    async def _apply(self, client: NiFiClient, change: Change) -> None:
        key = change.desired.group_name if isinstance(change, DeployFlow) else change.group_id
        async with self._locks.setdefault(key, asyncio.Lock()):
            if isinstance(change, DeployFlow):
                await client.deploy(change)
                desired = change.desired
                self._sensitive_set[((await client.facts()).root_group_id, desired.context_name)] = (
                    desired.sensitive_version
                )
            elif isinstance(change, ReplaceFlow):
                await client.replace(change)
            elif isinstance(change, StopSources):
                await client.stop_sources(change)
            elif isinstance(change, UpdateParameters):
                await client.update_parameters(change)
                if change.sensitive_version is not None:
                    instance = (await client.facts()).root_group_id
                    self._sensitive_set[(instance, change.context_name)] = change.sensitive_version
            else:
                await client.set_run_state(change)

    def protected(self, observation: FlowObservation) -> str | None:
        return None  # the root group is never a flow's group: flows are its children (or a child's)

    def conditions(self, observation: FlowObservation) -> tuple[KindCondition, ...]:
        return ()

    def references_version(self, observation: FlowObservation) -> str | None:
        return observation.desired.references_version if observation.desired else None

    def recorded_id(self, status: NiFiFlowStatus) -> str | None:
        return status.process_group_id

    def inventories(self) -> list[Awaitable[tuple[str, frozenset[str]]]]:
        """Per NiFi reached: its identity and its root group's child groups, as claims name them."""
        return [self._inventory(client) for client in self._clients.in_use()]

    @staticmethod
    async def _inventory(client: NiFiClient) -> tuple[str, frozenset[str]]:
        root, names = await client.root_children(max_age=INVENTORY_MAX_AGE_SECONDS)
        return root, frozenset(f"root/{name}" for name in names)

    def delete(self, client: NiFiClient, request: Request, observation: FlowObservation) -> Awaitable[None]:
        return self._delete(client, request, observation)

    async def _delete(self, client: NiFiClient, request: Request, observation: FlowObservation) -> None:
        if request.spec.deletion_policy is FlowDeletionPolicy.RETAIN:
            return
        group = observation.nifi.group
        owned = context_name(request.key.namespace, request.key.name)
        drop = request.spec.update_strategy is UpdateStrategy.DROP
        if group is not None and not drop and group.run.queued:
            # Drain: nothing new comes in; what is queued flows out before the group goes.
            if group.run.running <= group.run.sources_running:
                raise FlowNotDrained(
                    f"{group.run.queued} flowfile(s) are queued and nothing downstream runs to drain them"
                )
            if group.run.sources_running:
                await client.stop_sources(StopSources(group_id=group.id, queued=group.run.queued))
            queued = await client.wait_drained(group.id, DELETE_DRAIN_WAIT_SECONDS)
            if queued:
                raise FlowNotDrained(f"{queued} flowfile(s) are still queued after {DELETE_DRAIN_WAIT_SECONDS:.0f}s")
        await client.delete(group.id if group else None, owned, drop_queued=drop)

    def failure(self, client: NiFiClient, name: str, change: Change | None, error: Exception) -> Outcome:
        redact = client.connection.redact
        if isinstance(error, FlowNotDrained):
            # Rechecked every resync: the data draining, Drop or Retain lets the object go.
            return Outcome.stalled(
                QUEUED_DATA_KEPT,
                f"{error}, and updateStrategy is Drain, so the group stays. Let the flow drain, set "
                "updateStrategy: Drop to discard the data, or deletionPolicy: Retain to keep the group.",
            )
        if isinstance(error, NiFiRefused):
            what = f"reading flow '{name}'" if change is None else f"changing flow '{name}' ({change.summary()})"
            if error.status in (401, 403):
                # Policies are granted outside the spec: rechecked on every resync, not sticky.
                return Outcome.stalled(NOT_AUTHORIZED, redact(f"NiFi refused {what} to {client.where}: {error}"))
            if change is None:
                return Outcome.retrying(redact(f"NiFi refused to show flow '{name}': {error}"))
            return Outcome.stalled(REFUSED, redact(f"NiFi refused {what}: {error}"))
        if change is None:
            return Outcome.retrying(client.explain(error))
        return Outcome.retrying(redact(f"Changing flow '{name}' ({change.summary()}) failed, will retry: {error}"))

    def verdict(
        self, request: Request, observation: FlowObservation, plan: FlowPlan, *, applied: Sequence[Change]
    ) -> Outcome:
        name = process_group_name_of(request.body)
        if plan.draining is not None:
            return Outcome.progressing(
                f"Draining flow '{name}' before replacing it: {plan.draining} flowfile(s) still queued, sources "
                f"stopped (at most {request.spec.drain_timeout_seconds}s, updateStrategy: Drain).",
                {},
                DRAIN_POLL_SECONDS,
            )
        group = observation.nifi.group
        assert group is not None  # the core asks only once the group shows
        components = len(group.content.components) - 1
        return Outcome.ready(
            f"Flow '{name}' is deployed as process group {group.id} and {group.run.summary.lower()}: "
            f"{components} component(s), {len(group.context.parameters) if group.context else 0} parameter(s).",
            {},
        )

    def facts(self, request: Request, observation: FlowObservation | None, plan: FlowPlan | None) -> dict[str, Any]:
        name = process_group_name_of(request.body)
        if observation is None or plan is None:
            return _status_fields(NiFiFlowStatus(process_group_name=name))
        group = observation.nifi.group
        desired = observation.desired
        status = request.status
        settled = desired is not None and not plan.changes and plan.blocker is None and plan.draining is None
        observed = NiFiFlowStatus(
            process_group_name=name,
            process_group_id=group.id if group else None,
            state=group.run.summary if group else None,
            definition_digest=_definition_digest(desired) if settled and desired else status.definition_digest,
            # Once the values are in NiFi: until then a changed Secret still needs setting.
            sensitive_version=self._sensitive_version(request, observation),
            drain_started_at=(status.drain_started_at or _now()) if plan.draining is not None else None,
        )
        return _status_fields(observed)


def _definition_digest(desired: DesiredFlow) -> str:
    return _digest(
        [desired.content.digest(), json.dumps(dict(desired.parameters), sort_keys=True), desired.sensitive_version]
    )


def _digest(parts: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _drain_expired(request: Request) -> bool:
    started = request.status.drain_started_at
    if started is None:
        return False
    began = datetime.datetime.strptime(started, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)
    elapsed = (datetime.datetime.now(datetime.UTC) - began).total_seconds()
    return elapsed > request.spec.drain_timeout_seconds


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _status_fields(status: NiFiFlowStatus) -> dict[str, Any]:
    """The fields set on a typed status, by their Kubernetes names; a None removes the field."""
    return status.model_dump(by_alias=True, exclude_unset=True)
