"""The thin edge to Elasticsearch and OpenSearch: observe indices and apply changes, batched.

One SearchClient per distinct connection. What the server says it is
(`GET /`) picks the library: the official `elasticsearch` client for
Elasticsearch (7.17 and later), `opensearch-py` for OpenSearch. Both take
the same index APIs with the same bodies, so past construction and errors
the two are one interface. Observations of many objects that reconcile
together share requests: one get-index and one health request per batch of
names (as many as fit in a request line); a batch too long for one request
line reads every index of the cluster in one of each instead, when that reads
little more.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import ssl
import time
import warnings
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

import elasticsearch
import opensearchpy
from elastic_transport import TransportError as ElasticTransportError
from elasticsearch.exceptions import GeneralAvailabilityWarning
from opensearchpy import AsyncHttpConnection

from controllers.core import metrics
from controllers.core.batching import Batcher
from controllers.core.clients import ClientPool
from controllers.core.connections import ClusterRefInvalid, Connection
from controllers.core.failpoints import crash_point
from controllers.core.tls import verifying_context
from controllers.elasticsearchindex.connection import (
    API_KEY,
    CA_CERTIFICATE,
    INSECURE_SKIP_TLS_VERIFY,
    PASSWORD,
    URL,
    USERNAME,
)
from controllers.elasticsearchindex.migration import CatchUp, StartCopy, StopMigration, SwitchAlias, version_of
from controllers.elasticsearchindex.model import VERSION_SEPARATOR, is_versioned_index
from controllers.elasticsearchindex.plan import CreateIndex, PutMapping, UpdateAliases, UpdateSettings
from controllers.elasticsearchindex.state import ClusterFacts, CopyTask, Observation, ObservedIndex

log = logging.getLogger("infometis.search")
REQUEST_TIMEOUT_SECONDS = 30.0
# The servers refuse a request line over 4 KiB (http.max_initial_line_length): names are
# batched into requests whose index list, as the libraries quote it into the path, stays under this.
MAX_NAMES_IN_URL = 3000
MAX_BATCH = 1000
# A batch of names too long for one request line is observed with one get-index and one health
# request of every index of the cluster instead of two per request line, when the cluster holds at
# most this many indices per name asked for (as of its last listing): a resync then costs two
# requests whatever the names' length, and reads at most this much more than it needs.
MAX_OVERREAD = 2
IDLE_CLIENT_SECONDS = 600.0
OPENSEARCH = "opensearch"
REFUSED_ERROR_TYPES = frozenset({"illegal_argument_exception", "illegal_state_exception"})
ELASTICSEARCH = "elasticsearch"
# Kept after closing, so a close scheduled from synchronous code is not collected half done.
_closing: set[asyncio.Task[None]] = set()
# The Elasticsearch client calls the tasks API "technical preview" on every call; it is GA on the servers in use.
warnings.filterwarnings("ignore", category=GeneralAvailabilityWarning)
# A reindex task's failures shown in a condition: the first few say what is wrong.
SHOWN_FAILURES = 3


class SearchUnavailable(Exception):
    """The server did not answer, or answered with a failure worth retrying (5xx, 429, timeouts)."""


class SearchRefused(Exception):
    """The server refused the request (4xx): the same request would be refused again."""

    def __init__(self, status: int, error_type: str, reason: str) -> None:
        super().__init__(f"{error_type}: {reason}" if error_type else reason)
        self.status = status
        self.error_type = error_type
        self.reason = reason


class IndexNotEmpty(Exception):
    """DeleteIfEmpty found documents: the index stays."""

    def __init__(self, index: str, documents: int) -> None:
        super().__init__(f"index '{index}' holds {documents} document(s)")
        self.index = index
        self.documents = documents


def _ssl_context(connection: Connection) -> ssl.SSLContext | None:
    properties = connection.properties
    url = properties[URL]
    insecure = properties.get(INSECURE_SKIP_TLS_VERIFY, "false").strip().lower()
    if insecure not in ("true", "false"):
        raise ClusterRefInvalid(f"{connection.name}: {INSECURE_SKIP_TLS_VERIFY} must be 'true' or 'false'")
    if not url.startswith("https://"):
        if properties.get(CA_CERTIFICATE):
            raise ClusterRefInvalid(f"{connection.name}: {CA_CERTIFICATE} is given but {URL} is not https://")
        return None
    return verifying_context(connection, ca_key=CA_CERTIFICATE, insecure_key=INSECURE_SKIP_TLS_VERIFY)


def _check(connection: Connection) -> None:
    properties = connection.properties
    url = properties[URL]
    if not url.startswith(("http://", "https://")):
        raise ClusterRefInvalid(f"{connection.name}: {URL} must start with http:// or https://")
    if bool(properties.get(USERNAME)) != bool(properties.get(PASSWORD)):
        raise ClusterRefInvalid(f"{connection.name}: basic auth needs both {USERNAME} and {PASSWORD}")
    if properties.get(USERNAME) and properties.get(API_KEY):
        raise ClusterRefInvalid(f"{connection.name}: give either {USERNAME}/{PASSWORD} or {API_KEY}, not both")


def _elasticsearch(connection: Connection, context: ssl.SSLContext | None) -> elasticsearch.AsyncElasticsearch:
    properties = connection.properties
    auth: dict[str, Any] = {}
    if properties.get(USERNAME):
        auth["basic_auth"] = (properties[USERNAME], properties[PASSWORD])
    if properties.get(API_KEY):
        auth["api_key"] = properties[API_KEY]
    tls: dict[str, Any] = {}
    if context is not None:
        tls = {"ssl_context": context, "verify_certs": context.verify_mode != ssl.CERT_NONE}
    return elasticsearch.AsyncElasticsearch(
        hosts=[properties[URL]], request_timeout=REQUEST_TIMEOUT_SECONDS, max_retries=0, **auth, **tls
    )


def _opensearch(connection: Connection, context: ssl.SSLContext | None) -> opensearchpy.AsyncOpenSearch:
    properties = connection.properties
    options: dict[str, Any] = {}
    if properties.get(USERNAME):
        options["http_auth"] = (properties[USERNAME], properties[PASSWORD])
    if properties.get(API_KEY):
        options["headers"] = {"Authorization": f"ApiKey {properties[API_KEY]}"}
    if context is not None:
        # The context says whether certificates are verified; opensearch-py warns at any other TLS option beside it.
        options.update(use_ssl=True, ssl_context=context)
    return opensearchpy.AsyncOpenSearch(
        hosts=[properties[URL]],
        connection_class=AsyncHttpConnection,
        timeout=REQUEST_TIMEOUT_SECONDS,
        max_retries=0,
        **options,
    )


def _error_details(body: Any) -> tuple[str, str]:
    if isinstance(body, str | bytes):
        try:
            body = json.loads(body)
        except ValueError:
            return "", body if isinstance(body, str) else body.decode(errors="replace")
    if isinstance(body, Mapping) and isinstance(body.get("error"), Mapping):
        error = body["error"]
        causes = error.get("root_cause") or []
        reason = str(error.get("reason") or "")
        if not reason and causes and isinstance(causes[0], Mapping):
            reason = str(causes[0].get("reason") or "")
        return str(error.get("type") or ""), reason
    if isinstance(body, Mapping) and "error" in body:
        return "", str(body["error"])
    return "", str(body or "")


def _authorization(connection: Connection) -> dict[str, str]:
    """The Authorization header the connection's credentials make (what the clients send with each call)."""
    properties = connection.properties
    if properties.get(USERNAME):
        login = f"{properties[USERNAME]}:{properties[PASSWORD]}".encode()
        return {"authorization": f"Basic {base64.b64encode(login).decode()}"}
    if properties.get(API_KEY):
        return {"authorization": f"ApiKey {properties[API_KEY]}"}
    return {}


# Python's words for a server certificate that failed the check, e.g. "certificate verify failed:
# unable to get local issuer certificate (_ssl.c:1006)" or "...: IP address mismatch, certificate ...".
_CERTIFICATE_NOT_VERIFIED = re.compile(r"certificate verify failed: (.*?)\s*(?:\(_ssl\.c:\d+\)|$)")


def _certificate_not_verified(error: Exception) -> SearchUnavailable | None:
    found = _CERTIFICATE_NOT_VERIFIED.search(str(error))
    if found is None:
        return None
    return SearchUnavailable(
        f"the server's TLS certificate could not be verified ({found.group(1)}): {CA_CERTIFICATE} must hold the CA "
        "certificate that signed it"
    )


def translate(error: Exception) -> Exception:
    """Either library's error as SearchRefused (4xx but 408/429) or SearchUnavailable; others unchanged."""
    status: object = None
    body: Any = None
    if isinstance(error, elasticsearch.ApiError):
        status, body = error.status_code, error.body
    elif isinstance(error, opensearchpy.TransportError | ElasticTransportError) and (
        tls := _certificate_not_verified(error)
    ):
        return tls
    elif isinstance(error, opensearchpy.TransportError):
        # (status, error, info): info is the parsed body, or missing; error then holds the raw text.
        status, body = error.args[0] if error.args else None, error.args[2] if len(error.args) > 2 else None
        body = body or (error.args[1] if len(error.args) > 1 else None)
    elif isinstance(error, ElasticTransportError | elasticsearch.UnsupportedProductError):
        return SearchUnavailable(str(error) or type(error).__name__)
    else:
        return error
    error_type, reason = _error_details(body)
    refused = isinstance(status, int) and 400 <= status < 500 and status not in (408, 429)
    # Some refusals come as 500 (an alias given two write indices): the same request fails again.
    if refused or error_type in REFUSED_ERROR_TYPES:
        return SearchRefused(status if isinstance(status, int) else 500, error_type, reason or str(error))
    detail = ": ".join(part for part in (error_type, reason) if part) or str(error) or type(error).__name__
    return SearchUnavailable(f"HTTP {status}: {detail}" if isinstance(status, int) else detail)


def _status_code(error: Exception) -> str:
    """How the request-error metric names either library's failure: the HTTP status, else 'unavailable'."""
    if isinstance(error, elasticsearch.ApiError):
        return str(error.status_code)
    if isinstance(error, opensearchpy.TransportError) and isinstance(error.args[0] if error.args else None, int):
        return str(error.args[0])
    return "unavailable"


def _in_url(name: str) -> int:
    """The length of a name in a request path: both libraries percent-encode all but letters, digits,
    '-._~' and ',*' (a non-ASCII letter takes 6 characters, or 9)."""
    return len(quote(name, safe=",*"))


def _name_batches(names: Sequence[str]) -> list[list[str]]:
    batches: list[list[str]] = [[]]
    length = 0
    for name in names:
        size = _in_url(name) + 1
        if batches[-1] and length + size > MAX_NAMES_IN_URL:
            batches.append([])
            length = 0
        batches[-1].append(name)
        length += size
    return [batch for batch in batches if batch]


def _observed(listing: Mapping[str, Any], health: Mapping[str, Any] | None) -> dict[str, ObservedIndex]:
    """A get-index answer (flat settings) and a health answer at level indices, as ObservedIndex by name."""
    statuses = (health or {}).get("indices") or {}
    return {
        concrete: ObservedIndex(
            name=concrete,
            uuid=str(details["settings"].get("index.uuid", "")),
            settings=details.get("settings") or {},
            mappings=details.get("mappings") or {},
            aliases=details.get("aliases") or {},
            health=(statuses.get(concrete) or {}).get("status"),
        )
        for concrete, details in listing.items()
    }


class SearchClient:
    def __init__(self, connection: Connection, *, linger: float) -> None:
        _check(connection)
        self.connection = connection
        self._context = _ssl_context(connection)
        self._indices_in_cluster: int | None = None  # as of the last listing of them all
        self._may_read_every_index = True
        self._api: Any = None  # AsyncElasticsearch or AsyncOpenSearch, once the server said which
        self._facts: ClusterFacts | None = None
        self._connecting = asyncio.Lock()
        self._observations: Batcher[str, Observation] = Batcher(self._observe_batch, linger=linger, max_items=MAX_BATCH)
        self._reindex_supported: dict[str, bool] = {}  # per cluster uuid
        self.last_used = time.monotonic()

    @property
    def where(self) -> str:
        return f"{self.connection.properties[URL]} ({self.connection.name})"

    def explain(self, error: Exception) -> str:
        said = f"{self.where}: {error}"
        if self.connection.properties[URL].startswith("http://") and "Server disconnected" in str(error):
            # What a TLS-only port does to plain HTTP: closes the connection without a word.
            said += f" (if the server speaks only HTTPS, {URL} must start with https://)"
        return self.connection.redact(said)

    async def _call(self, method: str, *path: str, **arguments: Any) -> Any:
        """One API call (e.g. 'indices', 'create'), errors translated; the server's words are redacted later."""
        self.last_used = time.monotonic()
        await self.cluster()
        operation = ".".join((*path, method))
        metrics.SERVICE_REQUESTS.labels("elasticsearch", operation).inc()
        target = self._api
        for part in path:
            target = getattr(target, part)
        try:
            with metrics.service_request("elasticsearch", operation, _status_code):
                response = await getattr(target, method)(**arguments)
        except Exception as error:
            translated = translate(error)
            if isinstance(translated, SearchUnavailable):
                self._facts = None  # a server that went away may come back as another cluster
            raise translated from None
        return response.body if hasattr(response, "body") else response

    async def cluster(self) -> ClusterFacts:
        """Which server this is (GET /), asked once per connection and again after it failed."""
        if self._facts is not None:
            return self._facts
        async with self._connecting:
            if self._facts is not None:
                return self._facts
            self.last_used = time.monotonic()
            if self._api is None:
                self._api = _elasticsearch(self.connection, self._context)
            metrics.SERVICE_REQUESTS.labels("elasticsearch", "info").inc()
            headers = {"accept": "application/json"}
            if isinstance(self._api, elasticsearch.AsyncElasticsearch):
                # The transport's own request: the library's product check would refuse OpenSearch. Unlike the
                # client, that transport adds no credentials and answers an error status instead of raising it.
                headers.update(_authorization(self.connection))
            try:
                with metrics.service_request("elasticsearch", "info", _status_code):
                    response = await self._api.transport.perform_request("GET", "/", headers=headers)
                    meta = getattr(response, "meta", None)
                    if meta is not None and meta.status >= 400:
                        raise elasticsearch.ApiError(f"GET / answered {meta.status}", meta, response.body)
                info = getattr(response, "body", response)  # opensearch-py's transport answers the body
            except Exception as error:
                raise translate(error) from None
            if not isinstance(info, Mapping):
                raise SearchUnavailable(f"GET / answered {str(info)[:200]!r}, not the server's description")
            distribution = str((info.get("version") or {}).get("distribution") or ELASTICSEARCH)
            if distribution == OPENSEARCH and isinstance(self._api, elasticsearch.AsyncElasticsearch):
                await self._api.close()
                self._api = _opensearch(self.connection, self._context)
            elif distribution != OPENSEARCH and isinstance(self._api, opensearchpy.AsyncOpenSearch):
                await self._api.close()
                self._api = _elasticsearch(self.connection, self._context)
            self._facts = ClusterFacts(
                uuid=str(info.get("cluster_uuid") or ""),
                distribution=distribution,
                version=str((info.get("version") or {}).get("number") or ""),
            )
            return self._facts

    async def probe(self, timeout: float) -> None:
        self._facts = None
        await asyncio.wait_for(self.cluster(), timeout)

    # --- observing -----------------------------------------------------------------------

    async def observe(self, name: str) -> Observation:
        return await self._observations.submit(name)

    async def _observe_batch(self, names: list[str]) -> dict[str, Observation | BaseException]:
        metrics.SERVICE_CALLS.labels("elasticsearch", "observe").inc()
        metrics.SERVICE_CALL_ITEMS.labels("elasticsearch", "observe").inc(len(names))
        facts = await self.cluster()
        batches = _name_batches(names)
        found: dict[str, ObservedIndex] = {}
        if len(batches) > 1 and self._reading_every_index_pays(len(names)):
            try:
                found, batches = await self._get_every_index(), []
            except SearchRefused as error:
                # Rights to some indices but not all (OpenSearch refuses a wildcard then): by name from now on.
                log.info("%s: reading by name from now on: %s", self.where, self.connection.redact(str(error)))
                self._may_read_every_index = False
        for batch in batches:
            found.update(await self._get_indices(batch))
        results: dict[str, Observation | BaseException] = {}
        for name in names:
            if name in found:
                results[name] = Observation(name=name, cluster=facts, indices=(found[name],))
                continue
            behind = tuple(index for index in found.values() if name in index.aliases)
            results[name] = Observation(name=name, cluster=facts, indices=behind, name_is_alias=bool(behind))
        return results

    def _reading_every_index_pays(self, names: int) -> bool:
        """Whether the cluster (as last listed) holds at most MAX_OVERREAD indices per name asked for."""
        known = self._indices_in_cluster
        return self._may_read_every_index and known is not None and known <= MAX_OVERREAD * names

    async def _get_indices(self, names: Sequence[str]) -> dict[str, ObservedIndex]:
        listing = await self._call(
            "get",
            "indices",
            index=",".join(names),
            flat_settings=True,
            ignore_unavailable=True,
            allow_no_indices=True,
        )
        if not listing:
            return {}
        health = await self._call(
            "health", "cluster", index=",".join(listing), level="indices", filter_path="indices.*.status"
        )
        return _observed(listing, health)

    async def _get_every_index(self) -> dict[str, ObservedIndex]:
        """Every index of the cluster (closed and hidden ones too) in one request, and its health in another."""
        listing = await self._call(
            "get",
            "indices",
            index="*",
            expand_wildcards="all",
            flat_settings=True,
            ignore_unavailable=True,
            allow_no_indices=True,
        )
        self._indices_in_cluster = len(listing or {})
        if not listing:
            return {}
        health = await self._call("health", "cluster", level="indices", filter_path="indices.*.status")
        return _observed(listing, health)

    async def documents(self, index: str) -> int:
        await self._call("refresh", "indices", index=index)
        counted = await self._call("count", index=index)
        return int(counted["count"])

    async def index_names(self) -> tuple[str, frozenset[str]]:
        """The cluster's uuid and the names users see: its indices (hidden ones left out), and for an index
        behind an alias of the operator's versioned scheme ('<name>-v<n>'), the alias."""
        facts = await self.cluster()
        listing = await self._call("get", "indices", index="*", filter_path="*.aliases", expand_wildcards="open,closed")
        self._indices_in_cluster = len(listing or {})
        names = set()
        for concrete, details in (listing or {}).items():
            if concrete.startswith("."):
                continue
            versioned = [a for a in (details.get("aliases") or {}) if is_versioned_index(a, concrete)]
            names.add(versioned[0] if versioned else concrete)
        return facts.uuid, frozenset(names)

    # --- changing --------------------------------------------------------------------------

    async def create(self, change: CreateIndex) -> None:
        body = {"settings": dict(change.settings), "mappings": dict(change.mappings), "aliases": dict(change.aliases)}
        await self._call("create", "indices", index=change.index, body=body)

    async def update_settings(self, change: UpdateSettings) -> None:
        await self._call("put_settings", "indices", index=change.index, body=dict(change.values))

    async def put_mapping(self, change: PutMapping) -> None:
        await self._call("put_mapping", "indices", index=change.index, body=dict(change.mappings))

    async def update_aliases(self, change: UpdateAliases) -> None:
        actions: list[dict[str, Any]] = [{"remove": {"index": change.index, "alias": alias}} for alias in change.remove]
        actions += [
            {"add": {"index": change.index, "alias": alias, **definition}} for alias, definition in change.add.items()
        ]
        await self._call("update_aliases", "indices", body={"actions": actions})

    async def delete(self, indices: Sequence[str]) -> None:
        await self._call("delete", "indices", index=",".join(indices), ignore_unavailable=True)

    async def delete_if_empty(self, indices: Sequence[str]) -> None:
        """Delete only if no document is there. An index that looks empty has writes blocked while it is
        counted again, so none slips in between; one that holds documents is never blocked (a deletion
        refused for that is rechecked every resync, and must not interrupt writers each time)."""
        await self._refuse_if_not_empty(indices)
        for index in indices:
            await self._call("put_settings", "indices", index=index, body={"index.blocks.write": True})
        try:
            await self._refuse_if_not_empty(indices)
        except BaseException:
            for index in indices:
                await self._call("put_settings", "indices", index=index, body={"index.blocks.write": None})
            raise
        await self.delete(indices)

    async def _refuse_if_not_empty(self, indices: Sequence[str]) -> None:
        for index in indices:
            documents = await self.documents(index)
            if documents:
                raise IndexNotEmpty(index, documents)

    # --- migrating (the steps are decided in controllers.elasticsearchindex.migration) ---------

    async def reindex_supported(self) -> bool:
        """Whether the server has the _reindex API, from its own answer to an empty request, which copies
        nothing: a server with the API refuses it as invalid, one without has no such endpoint. Asked once
        per cluster."""
        facts = await self.cluster()
        known = self._reindex_supported.get(facts.uuid)
        if known is not None:
            return known
        try:
            await self._call("reindex", body={})
            supported = True  # not expected: both servers refuse a request without a source
        except SearchRefused as error:
            if error.status in (401, 403):
                raise
            supported = error.error_type == "action_request_validation_exception"
        self._reindex_supported[facts.uuid] = supported
        return supported

    async def indices(self, names: Sequence[str]) -> dict[str, ObservedIndex]:
        """These concrete indices as they are (absent ones left out)."""
        return await self._get_indices(names)

    async def versions(self, name: str) -> tuple[int, ...]:
        """N of every '<name>-v<N>' index there is, open or closed."""
        listing = await self._call(
            "get",
            "indices",
            index=f"{name}{VERSION_SEPARATOR}*",
            expand_wildcards="open,closed",
            filter_path="*.settings.index.uuid",
            ignore_unavailable=True,
            allow_no_indices=True,
        )
        return tuple(sorted(version_of(name, index) for index in listing or {} if is_versioned_index(name, index)))

    async def checkpoint(self, index: str, shards: int) -> int | None:
        """The smallest global checkpoint over the index's primaries: every write with a sequence number up to
        it was processed by every in-sync copy. None when a primary does not report one."""
        stats = await self._call(
            "stats",
            "indices",
            index=index,
            level="shards",
            metric="docs",
            filter_path="indices.*.shards.*.routing.primary,indices.*.shards.*.seq_no.global_checkpoint",
        )
        copies_by_shard = (((stats or {}).get("indices") or {}).get(index) or {}).get("shards") or {}
        checkpoints = []
        for copies in copies_by_shard.values():
            primary = next((c for c in copies if (c.get("routing") or {}).get("primary")), None)
            if primary is None or "seq_no" not in primary:
                return None
            checkpoints.append(int(primary["seq_no"]["global_checkpoint"]))
        return min(checkpoints) if checkpoints and len(checkpoints) == shards else None

    async def copy_task(self, task_id: str, *, catch_up: bool) -> CopyTask | None:
        """A copy task, running or finished (the server keeps the result of one started without waiting);
        None when the server has no record of it (lost with a restart)."""
        try:
            body = await self._call("get", "tasks", task_id=task_id)
        except SearchRefused as error:
            if error.status == 404:
                return None
            raise
        return _copy_task(task_id, catch_up, body)

    async def copies_running(self, source: str, target: str, *, catch_up: bool) -> tuple[CopyTask, ...]:
        """The reindex tasks from `source` to `target` the server runs (top-level ones: slices are children)."""
        listing = await self._call("list", "tasks", actions="*reindex", detailed=True)
        found = []
        for node in ((listing or {}).get("nodes") or {}).values():
            for task_id, task in (node.get("tasks") or {}).items():
                if not task.get("parent_task_id") and _copies(str(task.get("description") or ""), source, target):
                    found.append(_copy_task(task_id, catch_up, {"completed": False, "task": task}))
        return tuple(sorted(found, key=lambda task: task.id))

    async def start_copy(self, change: StartCopy) -> str:
        """Create the target if asked, refresh the source so the copy sees every write its checkpoint
        covers, and start the first copy; the task's id."""
        if change.create is not None:
            await self.create(change.create)
            crash_point("migration.target-created")
        await self._call("refresh", "indices", index=change.source)
        return await self._reindex(change.source, change.target, None)

    async def catch_up(self, change: CatchUp) -> str:
        """Block writes to the source (the add-block API waits for the writes under way), refresh it and start
        the copy of what changed since the checkpoint; the task's id. A refusal unblocks the source."""
        await self._call("add_block", "indices", index=change.source, block="write")
        crash_point("migration.source-blocked")
        try:
            await self._call("refresh", "indices", index=change.source)
            since = {"range": {"_seq_no": {"gt": change.checkpoint}}} if change.checkpoint is not None else None
            return await self._reindex(change.source, change.target, since)
        except SearchRefused:
            await self.unblock(change.source)
            raise

    async def _reindex(self, source: str, target: str, query: Mapping[str, Any] | None) -> str:
        body: dict[str, Any] = {"source": {"index": source}, "dest": {"index": target}}
        if query is not None:
            body["source"]["query"] = dict(query)
        started = await self._call("reindex", body=body, wait_for_completion=False)
        return str(started["task"])

    async def switch(self, change: SwitchAlias) -> None:
        """Move the name to the target in one request; a refusal unblocks the source (it serves on)."""
        actions: list[dict[str, Any]] = []
        if change.remove_source_index:
            actions.append({"remove_index": {"index": change.source}})
        actions += [{"remove": {"index": change.source, "alias": alias}} for alias in change.remove_aliases]
        actions.append({"add": {"index": change.target, "alias": change.name, "is_write_index": True}})
        actions += [
            {"add": {"index": change.target, "alias": alias, **definition}}
            for alias, definition in change.add_aliases.items()
        ]
        try:
            await self._call("update_aliases", "indices", body={"actions": actions})
        except SearchRefused:
            await self.unblock(change.source)
            raise

    async def stop(self, change: StopMigration) -> None:
        """Cancel the copies (waiting until they end: a copy into a deleted target would create it again),
        unblock the source, delete the target: each as the change says."""
        for task_id in change.cancel:
            try:
                await self._call("cancel", "tasks", task_id=task_id, wait_for_completion=True)
            except SearchRefused as error:
                if error.status != 404:
                    raise
        if change.unblock:
            await self.unblock(change.source)
        if change.delete_target:
            await self.delete([change.target])

    async def unblock(self, index: str) -> None:
        await self._call("put_settings", "indices", index=index, body={"index.blocks.write": None})

    # --- the pool's needs ------------------------------------------------------------------

    def poll(self) -> None:
        """Nothing to serve: the HTTP libraries run on the event loop."""

    def close(self) -> None:
        if self._api is not None:
            task = asyncio.get_running_loop().create_task(self._api.close())
            _closing.add(task)
            task.add_done_callback(_closing.discard)
            self._api = None


def _copies(description: str, source: str, target: str) -> bool:
    """Whether a reindex task's description names this copy ('reindex from [a] to [b]', 7.x adds '[_doc]')."""
    prefix = f"reindex from [{source}] to [{target}]"
    return description == prefix or description.startswith(prefix + "[")


def _copy_task(task_id: str, catch_up: bool, body: Mapping[str, Any]) -> CopyTask:
    completed = bool(body.get("completed"))
    task = body.get("task") or {}
    response = body.get("response") or {}
    counts = (response if completed and response else None) or task.get("status") or {}
    failures: list[str] = []
    if completed:
        error = body.get("error")
        if isinstance(error, Mapping):
            failures.append(f"{error.get('type', 'error')}: {error.get('reason', '')}")
        listed = response.get("failures") or []
        for failure in listed[:SHOWN_FAILURES]:
            cause = failure.get("cause") or failure.get("reason") or {}
            what = f"{cause.get('type', 'error')}: {cause.get('reason', '')}" if isinstance(cause, Mapping) else cause
            failures.append(f"document '{failure['id']}': {what}" if failure.get("id") else str(what))
        if len(listed) > SHOWN_FAILURES:
            failures.append(f"and {len(listed) - SHOWN_FAILURES} more failure(s)")
        if response.get("timed_out"):
            failures.append("the copy timed out")
        if response.get("canceled"):
            failures.append(f"the copy was cancelled ({response['canceled']})")
    processed = ("created", "updated", "deleted", "noops", "version_conflicts")
    return CopyTask(
        id=task_id,
        catch_up=catch_up,
        completed=completed,
        total=int(counts.get("total") or 0),
        copied=sum(int(counts.get(key) or 0) for key in processed),
        running_seconds=int(task.get("running_time_in_nanos") or 0) / 1e9,
        failures=tuple(failures),
    )


def search_clients(linger: float) -> ClientPool[SearchClient]:
    return ClientPool(
        "Elasticsearch", lambda connection: SearchClient(connection, linger=linger), idle_seconds=IDLE_CLIENT_SECONDS
    )
