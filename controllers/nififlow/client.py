"""The thin edge to NiFi: observe flows and apply changes through its REST API (nipyapi's generated client).

One NiFiClient per distinct connection. A resync of every flow on a NiFi
costs two requests, whoever asks: the root group's flow definition (every
group's contents and parameter context values, sensitive ones hidden) and the
root group's recursive status (each processor's run state and each
connection's queue). Observations of flows reconciling together share them.

nipyapi's client is synchronous and configured process-wide; each
NiFiClient gets its own transport (TLS, client certificate) and runs calls in
threads, reading responses as JSON rather than as generated models, which lag
behind or run ahead of the server's version.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import ssl
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import urllib3
from nipyapi.nifi import ApiClient
from nipyapi.nifi.apis.access_api import AccessApi
from nipyapi.nifi.apis.flow_api import FlowApi
from nipyapi.nifi.apis.parameter_contexts_api import ParameterContextsApi
from nipyapi.nifi.apis.process_groups_api import ProcessGroupsApi
from nipyapi.nifi.rest import ApiException

from controllers.core import metrics
from controllers.core.batching import Batcher
from controllers.core.clients import ClientPool
from controllers.core.connections import ClusterRefInvalid, Connection
from controllers.core.failpoints import crash_point
from controllers.core.tls import verifying_context
from controllers.nififlow.connection import (
    CA_CERTIFICATE,
    CLIENT_CERTIFICATE,
    CLIENT_KEY,
    INSECURE_SKIP_TLS_VERIFY,
    PASSWORD,
    URL,
    USERNAME,
)
from controllers.nififlow.definition import defines_services
from controllers.nififlow.model import FlowState
from controllers.nififlow.normalise import flow_content
from controllers.nififlow.plan import DeployFlow, ReplaceFlow, SetRunState, StopSources, UpdateParameters
from controllers.nififlow.state import (
    ComponentProblem,
    NiFiFacts,
    Observation,
    ObservedContext,
    ObservedGroup,
    ObservedParameter,
    RunState,
)

log = logging.getLogger("infometis.nifi")
REQUEST_TIMEOUT_SECONDS = 30.0
MAX_BATCH = 1000
IDLE_CLIENT_SECONDS = 600.0
CLIENT_ID = "infometis-operator"
# NiFi's asynchronous requests (replace, parameter update, queue drop) are polled soon (most finish
# within 50 ms here), then less and less often, for this long.
FIRST_POLL_SECONDS, MAX_POLL_SECONDS = 0.05, 1.0
ASYNC_REQUEST_TIMEOUT_SECONDS = 120.0


class NiFiUnavailable(Exception):
    """NiFi did not answer, or answered with a failure worth retrying (5xx, 409 while busy, timeouts)."""


class FlowNotDrained(Exception):
    """A group to delete under Drain still holds queued data (and, maybe, nothing runs to drain it)."""


class NiFiRefused(Exception):
    """NiFi refused the request (4xx): the same request would be refused again."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class FlowRef:
    """What a NiFiFlow names on NiFi: a group by name under a parent, or by the id it recorded."""

    parent_id: str | None  # None: the root group
    name: str
    recorded_id: str | None
    context_name: str


class NiFiClient:
    def __init__(self, connection: Connection, *, linger: float) -> None:
        _check(connection)
        self.connection = connection
        self._api = _api_client(connection)
        self._facts: NiFiFacts | None = None
        self._connecting = asyncio.Lock()
        self._observations: Batcher[FlowRef, Observation] = Batcher(
            self._observe_batch, linger=linger, max_items=MAX_BATCH
        )
        # The root group's child groups as the last resync's download showed them, and when: the
        # unmanaged-flow report reads them from there instead of asking NiFi again.
        self._root_children: tuple[float, list[str]] | None = None
        self.last_used = time.monotonic()

    @property
    def where(self) -> str:
        return f"{self.connection.properties[URL]} ({self.connection.name})"

    def explain(self, error: Exception) -> str:
        return self.connection.redact(f"{self.where}: {error}")

    def poll(self) -> None:
        """Nothing to serve between calls (ClientPool's hook)."""

    def close(self) -> None:
        self._api.rest_client.pool_manager.clear()

    # --- calls -------------------------------------------------------------------------------

    async def _call(self, operation: str, call: Callable[[ApiClient], Any]) -> Any:
        """One REST call in a thread, its JSON answer parsed, errors translated."""
        self.last_used = time.monotonic()
        metrics.SERVICE_REQUESTS.labels("nifi", operation).inc()

        def run() -> Any:
            response = call(self._api)
            raw = response.data if hasattr(response, "data") else response
            if not raw:
                return None
            text = raw.decode() if isinstance(raw, bytes) else str(raw)
            return json.loads(text) if text.lstrip().startswith(("{", "[")) else text

        try:
            with metrics.service_request("nifi", operation, _status_code):
                return await asyncio.to_thread(run)
        except ApiException as error:
            if error.status == 401:
                self._facts = None  # a token login expired: the next pass logs in again
            raise _translated(error) from None
        except (urllib3.exceptions.HTTPError, OSError) as error:
            self._facts = None
            raise NiFiUnavailable(str(error) or type(error).__name__) from None

    async def facts(self) -> NiFiFacts:
        """Which NiFi this is: its root group id (its identity) and version; asked once per connection."""
        if self._facts is not None:
            return self._facts
        async with self._connecting:
            if self._facts is not None:
                return self._facts
            await self._log_in()
            about = await self._call("about", lambda api: FlowApi(api).get_about_info(_preload_content=False))
            root = await self._call(
                "root", lambda api: ProcessGroupsApi(api).get_process_group("root", _preload_content=False)
            )
            processors = await self._rest("processor-types", "GET", "/flow/processor-types")
            services = await self._rest("service-types", "GET", "/flow/controller-service-types")
            restricted = frozenset(
                str(t["type"])
                for t in (processors.get("processorTypes") or []) + (services.get("controllerServiceTypes") or [])
                if t.get("restricted")
            )
            self._facts = NiFiFacts(
                root_group_id=str(root["id"]), version=str(about["about"]["version"]), restricted_types=restricted
            )
            return self._facts

    async def probe(self, timeout: float) -> None:
        """Raise unless NiFi answers (readiness asks this of the default connection): one light request."""
        await asyncio.wait_for(
            self._call("about", lambda api: FlowApi(api).get_about_info(_preload_content=False)), timeout
        )

    async def _log_in(self) -> None:
        """NiFi's token login, when the connection holds a username and password."""
        properties = self.connection.properties
        if not properties.get(USERNAME):
            return
        username, password = properties[USERNAME], properties[PASSWORD]
        token = await self._call(
            "login",
            lambda api: AccessApi(api).create_access_token(
                username=username, password=password, _preload_content=False
            ),
        )
        self._api.set_default_header("Authorization", f"Bearer {token}")

    # --- observing ---------------------------------------------------------------------------

    async def observe(self, ref: FlowRef) -> Observation:
        return await self._observations.submit(ref)

    async def _observe_batch(self, refs: list[FlowRef]) -> dict[FlowRef, Observation | BaseException]:
        metrics.SERVICE_CALLS.labels("nifi", "observe").inc()
        metrics.SERVICE_CALL_ITEMS.labels("nifi", "observe").inc(len(refs))
        facts = await self.facts()
        definition = await self._call(
            "download", lambda api: ProcessGroupsApi(api).export_process_group("root", _preload_content=False)
        )
        status = await self._call(
            "status",
            lambda api: FlowApi(api).get_process_group_status("root", recursive=True, _preload_content=False),
        )
        tree = _Tree(definition, status["processGroupStatus"]["aggregateSnapshot"], facts.root_group_id)
        children = definition["flowContents"].get("processGroups") or []
        self._root_children = (time.monotonic(), [str(g.get("name") or "") for g in children])
        results: dict[FlowRef, Observation | BaseException] = {}
        for ref in refs:
            node = tree.find(ref)
            context = tree.context(ref.context_name)
            if node is None:
                results[ref] = Observation(nifi=facts, group=None, context=context)
                continue
            group = tree.observed(node)
            if group.run.invalid:
                problems, services_disabled = await self._problems(group.id)
                group = replace(group, problems=problems, services_disabled=services_disabled)
            results[ref] = Observation(nifi=facts, group=group)
        return results

    async def _problems(self, group_id: str) -> tuple[tuple[ComponentProblem, ...], int]:
        """Each invalid component of the group (all levels) with NiFi's validation messages, and how
        many of its controller services are valid but disabled (their processors are invalid until
        the services are enabled again)."""
        problems: list[ComponentProblem] = []
        paths = {group_id: ""}
        pending = [group_id]
        while pending:
            current = pending.pop()
            path = paths[current]
            flow = await self._rest("group-flow", "GET", f"/flow/process-groups/{current}")
            contents = flow["processGroupFlow"]["flow"]
            for processor in contents.get("processors") or []:
                errors = (processor.get("component") or {}).get("validationErrors") or []
                if errors:
                    name = processor["component"]["name"]
                    problems.append(ComponentProblem(f"{path}processor {name}", tuple(errors)))
            for child in contents.get("processGroups") or []:
                paths[child["id"]] = f"{path}group {child['component']['name']}/"
                if (child.get("invalidCount") or (child.get("component") or {}).get("invalidCount") or 0) > 0:
                    pending.append(child["id"])
        # A processor using a service that will not enable only says the service is disabled: name the
        # service and its own reasons too.
        services = await self._rest(
            "group-services",
            "GET",
            f"/flow/process-groups/{group_id}/controller-services?includeAncestorGroups=false"
            "&includeDescendantGroups=true",
        )
        disabled = 0
        for service in services.get("controllerServices") or []:
            component = service.get("component") or {}
            errors = component.get("validationErrors") or []
            if errors:
                path = paths.get(str(component.get("parentGroupId")), "")
                problems.append(ComponentProblem(f"{path}controller service {component['name']}", tuple(errors)))
            elif component.get("state") == "DISABLED":
                disabled += 1
        return tuple(sorted(problems, key=lambda p: p.component)), disabled

    # --- changing ----------------------------------------------------------------------------

    async def deploy(self, change: DeployFlow) -> None:
        desired = change.desired
        parent = desired.parent_id or (await self.facts()).root_group_id
        group = await self._upload(parent, desired.group_name, desired.definition)
        crash_point("nififlow.deploy-uploaded")  # the group exists; its parameters are not set, it is stopped
        values: dict[str, str | None] = {**desired.parameters, **desired.sensitive}
        if values:
            await self._update_context(_bound_context_id(group), values, frozenset(desired.sensitive))
        if desired.state is FlowState.RUNNING:
            await self._run(str(group["id"]), FlowState.RUNNING, enable_services=defines_services(desired.definition))

    async def _upload(self, parent: str, name: str, definition: Mapping[str, Any]) -> Any:
        flow = json.dumps(definition).encode()  # sent as the form's file field, as NiFi's UI does
        return await self._call(
            "upload",
            lambda api: ProcessGroupsApi(api).upload_process_group(
                parent,
                file=flow,
                group_name=name,
                position_x="0",  # form fields: text, whatever the generated docs say
                position_y="0",
                client_id=CLIENT_ID,
                _preload_content=False,
            ),
        )

    async def replace(self, change: ReplaceFlow) -> None:
        group_id = change.group_id
        if change.drop_queued:
            await self._run(group_id, FlowState.STOPPED)
            await self.drop_queued(group_id)
        group = await self._group(group_id)
        body = {
            "processGroupRevision": group["revision"],
            "versionedFlowSnapshot": change.desired.definition,
        }
        request = await self._call(
            "replace",
            lambda api: ProcessGroupsApi(api).initiate_replace_process_group(body, group_id, _preload_content=False),
        )
        request_id = request["request"]["requestId"]
        crash_point("nififlow.replace-requested")  # NiFi replaces on its own; the request is left behind
        try:
            await self._until_complete(
                "replace-status",
                lambda api: ProcessGroupsApi(api).get_replace_process_group_request(request_id, _preload_content=False),
                what=f"replacing the contents of group {group_id}",
            )
        finally:
            await self._call(
                "replace-delete",
                lambda api: ProcessGroupsApi(api).delete_replace_process_group_request(
                    request_id, _preload_content=False
                ),
            )
        # A replacement leaves the components it adds stopped.
        if change.desired.state is FlowState.RUNNING:
            try:
                await self._run(
                    group_id, FlowState.RUNNING, enable_services=defines_services(change.desired.definition)
                )
            except NiFiUnavailable as error:
                # NiFi restarts what ran before the replacement itself, and a component it cannot start (an
                # invalid one) stays STARTING and refuses another start: the check after applying finds it
                # and says why, and the replacement is rolled back.
                if "Current state is STARTING" not in str(error):
                    raise

    async def stop_sources(self, change: StopSources) -> None:
        """Stop each processor that has no incoming connection, at every level of the group."""
        definition = await self._call(
            "download", lambda api: ProcessGroupsApi(api).export_process_group(change.group_id, _preload_content=False)
        )
        for processor_id in _every_source_processor(definition["flowContents"]):
            processor = await self._rest("processor", "GET", f"/processors/{processor_id}")
            body = {"revision": processor["revision"], "state": "STOPPED"}
            await self._rest("processor-run-status", "PUT", f"/processors/{processor_id}/run-status", body)

    async def update_parameters(self, change: UpdateParameters) -> None:
        await self._update_context(await self._bound_context_id(change.group_id), dict(change.values), change.sensitive)

    async def set_run_state(self, change: SetRunState) -> None:
        await self._run(change.group_id, change.state)

    async def delete(self, group_id: str | None, context_name: str, *, drop_queued: bool) -> None:
        """Stop the group, empty its queues (Drop) or refuse while data is queued (Drain), remove it
        and the parameter context the object owns."""
        if group_id is not None:
            await self._run(group_id, FlowState.STOPPED)
            await self._rest(
                "disable-services",
                "PUT",
                f"/flow/process-groups/{group_id}/controller-services",
                {"id": group_id, "state": "DISABLED"},
            )
            if drop_queued:
                await self.drop_queued(group_id)
            group = await self._group(group_id)
            version = group["revision"]["version"]
            await self._call(
                "delete-group",
                lambda api: ProcessGroupsApi(api).remove_process_group(
                    group_id, version=str(version), client_id=CLIENT_ID, _preload_content=False
                ),
            )
        context_id = await self._context_named(context_name)
        if context_id is not None:
            context = await self._call(
                "context",
                lambda api: ParameterContextsApi(api).get_parameter_context(context_id, _preload_content=False),
            )
            version = context["revision"]["version"]
            await self._call(
                "delete-context",
                lambda api: ParameterContextsApi(api).delete_parameter_context(
                    context_id, version=str(version), client_id=CLIENT_ID, _preload_content=False
                ),
            )

    async def wait_drained(self, group_id: str, seconds: float) -> int:
        """Wait until nothing is queued in the group (at every level), at most `seconds`; what is left."""
        deadline = time.monotonic() + seconds
        while True:
            status = await self._call(
                "drain-status",
                lambda api: FlowApi(api).get_process_group_status(group_id, recursive=True, _preload_content=False),
            )
            queued = int(status["processGroupStatus"]["aggregateSnapshot"].get("flowFilesQueued") or 0)
            if not queued or time.monotonic() > deadline:
                return queued
            await asyncio.sleep(1.0)

    async def root_children(self, max_age: float) -> tuple[str, list[str]]:
        """The NiFi's identity and the names of its root group's child groups, from a resync's download
        when one is at most `max_age` seconds old."""
        facts = await self.facts()
        if self._root_children is not None and time.monotonic() - self._root_children[0] <= max_age:
            return facts.root_group_id, self._root_children[1]
        flow = await self._rest("root-flow", "GET", f"/flow/process-groups/{facts.root_group_id}")
        groups = flow["processGroupFlow"]["flow"].get("processGroups") or []
        return facts.root_group_id, [str(g["component"]["name"]) for g in groups]

    async def drop_queued(self, group_id: str) -> None:
        request = await self._call(
            "drop",
            lambda api: ProcessGroupsApi(api).create_empty_all_connections_request(group_id, _preload_content=False),
        )
        request_id = request["dropRequest"]["id"]
        try:
            await self._until_complete(
                "drop-status",
                lambda api: ProcessGroupsApi(api).get_drop_all_flowfiles_request(
                    group_id, request_id, _preload_content=False
                ),
                what=f"emptying the queues of group {group_id}",
                key="dropRequest",
                finished="finished",
            )
        finally:
            await self._call(
                "drop-delete",
                lambda api: ProcessGroupsApi(api).remove_drop_request1(group_id, request_id, _preload_content=False),
            )

    async def _run(self, group_id: str, state: FlowState, *, enable_services: bool = True) -> None:
        """Start or stop the group's processors; before starting, enable its controller services (unless
        the caller knows the flow defines none: a request saved per deployment)."""
        if state is FlowState.RUNNING and enable_services:
            await self._rest(
                "enable-services",
                "PUT",
                f"/flow/process-groups/{group_id}/controller-services",
                {"id": group_id, "state": "ENABLED"},
            )
        running = "RUNNING" if state is FlowState.RUNNING else "STOPPED"
        await self._rest("schedule", "PUT", f"/flow/process-groups/{group_id}", {"id": group_id, "state": running})

    async def _rest(self, operation: str, method: str, path: str, body: Any = None) -> Any:
        """An endpoint the generated client models too strictly for NiFi 2.3 (its enums are 2.12's)."""

        def call(api: ApiClient) -> Any:
            return api.call_api(
                path,
                method,
                header_params={"Content-Type": "application/json", "Accept": "application/json"},
                body=body,
                _preload_content=False,
                _return_http_data_only=True,
            )

        return await self._call(operation, call)

    async def _bound_context_id(self, group_id: str) -> str:
        return _bound_context_id(await self._group(group_id))

    async def _group(self, group_id: str) -> Any:
        return await self._call(
            "group", lambda api: ProcessGroupsApi(api).get_process_group(group_id, _preload_content=False)
        )

    async def _context_named(self, name: str) -> str | None:
        """The id of the parameter context of that name, if there is one."""
        listing = await self._call("contexts", lambda api: FlowApi(api).get_parameter_contexts(_preload_content=False))
        for entity in listing.get("parameterContexts") or []:
            if (entity.get("component") or {}).get("name") == name:
                return str(entity["id"])
        return None

    async def _update_context(
        self, context_id: str, values: Mapping[str, str | None], sensitive: frozenset[str]
    ) -> None:
        context = await self._call(
            "context", lambda api: ParameterContextsApi(api).get_parameter_context(context_id, _preload_content=False)
        )
        parameters = [
            {"parameter": {"name": name, "sensitive": name in sensitive, "value": value}}
            if value is not None
            else {"parameter": {"name": name}}  # no value: NiFi removes the parameter
            for name, value in sorted(values.items())
        ]
        body = {
            "revision": context["revision"],
            "id": context_id,
            "component": {"id": context_id, "parameters": parameters},
        }
        request = await self._call(
            "context-update",
            lambda api: ParameterContextsApi(api).submit_parameter_context_update(
                body, context_id, _preload_content=False
            ),
        )
        request_id = request["request"]["requestId"]
        try:
            await self._until_complete(
                "context-update-status",
                lambda api: ParameterContextsApi(api).get_parameter_context_update(
                    context_id, request_id, _preload_content=False
                ),
                what=f"updating parameter context {context_id}",
            )
        finally:
            await self._call(
                "context-update-delete",
                lambda api: ParameterContextsApi(api).delete_update_request(
                    context_id, request_id, _preload_content=False
                ),
            )

    async def _until_complete(
        self,
        operation: str,
        call: Callable[[ApiClient], Any],
        *,
        what: str,
        key: str = "request",
        finished: str = "complete",
    ) -> None:
        deadline = time.monotonic() + ASYNC_REQUEST_TIMEOUT_SECONDS
        delay = FIRST_POLL_SECONDS
        while True:
            answer = (await self._call(operation, call))[key]
            if answer.get(finished):
                failure = answer.get("failureReason")
                if failure:
                    raise NiFiRefused(409, f"{what} failed: {failure}")
                return
            if time.monotonic() > deadline:
                raise NiFiUnavailable(f"{what} did not finish within {ASYNC_REQUEST_TIMEOUT_SECONDS:.0f}s")
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_POLL_SECONDS)


class _Tree:
    """The root group's definition and status, searched for the groups objects name."""

    def __init__(self, definition: Mapping[str, Any], status: Mapping[str, Any], root_id: str) -> None:
        self._contexts = definition.get("parameterContexts") or {}
        self._root = definition["flowContents"]
        self._root_id = root_id
        self._groups: dict[str, tuple[Mapping[str, Any], str]] = {}  # instance id -> (group, parent id)
        self._index(self._root, root_id, "")
        self._status: dict[str, Mapping[str, Any]] = {}
        self._index_status(status)

    def _index(self, group: Mapping[str, Any], group_id: str, parent_id: str) -> None:
        self._groups[group_id] = (group, parent_id)
        for child in group.get("processGroups") or []:
            self._index(child, str(child.get("instanceIdentifier") or child.get("identifier")), group_id)

    def _index_status(self, snapshot: Mapping[str, Any]) -> None:
        self._status[str(snapshot["id"])] = snapshot
        for child in snapshot.get("processGroupStatusSnapshots") or []:
            self._index_status(child["processGroupStatusSnapshot"])

    def find(self, ref: FlowRef) -> tuple[str, Mapping[str, Any], str] | None:
        parent_id = ref.parent_id or self._root_id
        if ref.recorded_id and ref.recorded_id in self._groups:
            group, found_parent = self._groups[ref.recorded_id]
            if found_parent == parent_id:
                return ref.recorded_id, group, found_parent
        parent = self._groups.get(parent_id)
        if parent is None:
            return None
        for child in parent[0].get("processGroups") or []:
            if child.get("name") == ref.name:
                return str(child.get("instanceIdentifier") or child.get("identifier")), child, parent_id
        return None

    def context(self, name: str) -> ObservedContext | None:
        context = self._contexts.get(name)
        if context is None:
            return None
        parameters = {
            str(p["name"]): ObservedParameter(
                value=None if p.get("sensitive") else p.get("value"), sensitive=bool(p.get("sensitive"))
            )
            for p in context.get("parameters") or []
        }
        return ObservedContext(name=name, parameters=parameters)

    def observed(self, found: tuple[str, Mapping[str, Any], str]) -> ObservedGroup:
        group_id, group, parent_id = found
        context_name = group.get("parameterContextName")
        # As a flow definition: the group's contents, bound to its own context as the operator deploys it.
        definition: dict[str, Any] = {"flowContents": group}
        if context_name:
            empty = {"name": context_name, "parameters": [], "inheritedParameterContexts": []}
            definition["parameterContexts"] = {context_name: empty}
        return ObservedGroup(
            id=group_id,
            name=str(group.get("name") or ""),
            parent_id=parent_id,
            content=flow_content(group),
            context=self.context(str(context_name)) if context_name else None,
            run=self._run_state(group_id, group),
            definition=definition,
        )

    def _run_state(self, group_id: str, group: Mapping[str, Any]) -> RunState:
        counts = {"Running": 0, "Stopped": 0, "Invalid": 0, "Disabled": 0}
        queued = 0
        sources_running = 0
        pending = [(group_id, group)]
        while pending:
            current_id, current = pending.pop()
            snapshot = self._status.get(current_id) or {}
            sources = set(_source_processors(current))
            for entry in snapshot.get("processorStatusSnapshots") or []:
                processor = entry["processorStatusSnapshot"]
                run_status = str(processor.get("runStatus") or "")
                if run_status in counts:
                    counts[run_status] += 1
                if run_status == "Running" and processor["id"] in sources:
                    sources_running += 1
            for entry in snapshot.get("connectionStatusSnapshots") or []:
                queued += int(entry["connectionStatusSnapshot"].get("flowFilesQueued") or 0)
            for child in current.get("processGroups") or []:
                pending.append((str(child.get("instanceIdentifier") or child.get("identifier")), child))
        return RunState(
            running=counts["Running"],
            stopped=counts["Stopped"],
            invalid=counts["Invalid"],
            disabled=counts["Disabled"],
            sources_running=sources_running,
            queued=queued,
        )


def _bound_context_id(group: Mapping[str, Any]) -> str:
    """The id of the parameter context a group entity (as NiFi answers it) is bound to."""
    context = (group.get("component") or {}).get("parameterContext")
    if not context:
        raise NiFiRefused(400, f"process group {group.get('id')} is bound to no parameter context")
    return str(context["id"])


def _every_source_processor(group: Mapping[str, Any]) -> list[str]:
    """The instance ids of the processors no connection feeds, at every level of the group."""
    found = _source_processors(group)
    for child in group.get("processGroups") or []:
        found += _every_source_processor(child)
    return found


def _source_processors(group: Mapping[str, Any]) -> list[str]:
    """The instance ids of this level's processors that no connection feeds."""
    fed = {str((c.get("destination") or {}).get("id")) for c in group.get("connections") or []}
    return [
        str(p.get("instanceIdentifier") or p.get("identifier"))
        for p in group.get("processors") or []
        if str(p.get("identifier")) not in fed and str(p.get("instanceIdentifier")) not in fed
    ]


def _status_code(error: Exception) -> str:
    """How the request-error metric names a failure: the HTTP status, else 'unavailable'."""
    return str(error.status) if isinstance(error, ApiException) and error.status else "unavailable"


def _translated(error: ApiException) -> Exception:
    status = int(error.status or 0)
    body = error.body.decode(errors="replace") if isinstance(error.body, bytes) else str(error.body or error.reason)
    message = f"HTTP {status}: {body.strip()[:500]}"
    if status in (400, 401, 403, 404):
        return NiFiRefused(status, message)
    return NiFiUnavailable(message)  # 409 (busy, revision moved on), 5xx


def _check(connection: Connection) -> None:
    properties = connection.properties
    url = properties[URL]
    if not url.startswith(("http://", "https://")):
        raise ClusterRefInvalid(f"{connection.name}: {URL} must start with http:// or https://")
    if bool(properties.get(USERNAME)) != bool(properties.get(PASSWORD)):
        raise ClusterRefInvalid(f"{connection.name}: token login needs both {USERNAME} and {PASSWORD}")
    if bool(properties.get(CLIENT_CERTIFICATE)) != bool(properties.get(CLIENT_KEY)):
        raise ClusterRefInvalid(
            f"{connection.name}: a client certificate needs both {CLIENT_CERTIFICATE} and {CLIENT_KEY}"
        )
    if properties.get(USERNAME) and properties.get(CLIENT_CERTIFICATE):
        raise ClusterRefInvalid(f"{connection.name}: give either a client certificate or a username, not both")
    if not url.startswith("https://") and (
        properties.get(CLIENT_CERTIFICATE) or properties.get(USERNAME) or properties.get(CA_CERTIFICATE)
    ):
        raise ClusterRefInvalid(f"{connection.name}: credentials and {CA_CERTIFICATE} need an https:// {URL}")


def _ssl_context(connection: Connection) -> ssl.SSLContext | None:
    properties = connection.properties
    if not properties[URL].startswith("https://"):
        return None
    context = verifying_context(connection, ca_key=CA_CERTIFICATE, insecure_key=INSECURE_SKIP_TLS_VERIFY)
    if properties.get(CLIENT_CERTIFICATE):
        # The ssl module reads a certificate chain from files only: private ones, gone once read.
        with tempfile.TemporaryDirectory(prefix="infometis-nifi-") as folder:
            paths = []
            for key in (CLIENT_CERTIFICATE, CLIENT_KEY):
                path = os.path.join(folder, key)
                with open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), "w") as file:
                    file.write(properties[key])
                paths.append(path)
            try:
                context.load_cert_chain(paths[0], paths[1])
            except (ssl.SSLError, ValueError) as error:
                raise ClusterRefInvalid(
                    f"{connection.name}: {CLIENT_CERTIFICATE}/{CLIENT_KEY} are not a PEM certificate and its key: "
                    f"{type(error).__name__}"
                ) from None
    return context


def _api_client(connection: Connection) -> ApiClient:
    api = ApiClient(host=connection.properties[URL].rstrip("/"))
    api.rest_client.pool_manager = urllib3.PoolManager(
        num_pools=2,
        maxsize=8,
        ssl_context=_ssl_context(connection),
        timeout=urllib3.Timeout(total=REQUEST_TIMEOUT_SECONDS),
        retries=False,
    )
    return api


def nifi_clients(linger: float) -> ClientPool[NiFiClient]:
    return ClientPool(
        "NiFi", lambda connection: NiFiClient(connection, linger=linger), idle_seconds=IDLE_CLIENT_SECONDS
    )
