"""The thin edge to Kafka: observe topics and apply changes, batched.

One KafkaAdmin per distinct connection. Every operation goes through a
Batcher, so the reconciles of many KafkaTopics that run together share one
Admin request per operation (one DescribeTopics, one DescribeConfigs, one
CreateTopics, ...). confluent-kafka serves most of it; kafka-python serves
partition reassignment, which confluent-kafka's AdminClient lacks, and config
reads, which it can ask for by key where confluent-kafka reads every key.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import logging
import ssl
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from confluent_kafka import KafkaError, KafkaException, TopicCollection
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
    ResourceType,
)
from kafka import TopicPartition
from kafka import errors as kafka_python_errors
from kafka.admin import ConfigResource as KafkaPythonConfigResource
from kafka.admin import ConfigResourceType, ConfigSourceType, KafkaAdminClient
from kafka.net.compat import KafkaNetClient

from controllers.core import metrics
from controllers.core.batching import Batcher
from controllers.core.clients import ClientPool
from controllers.core.connections import ClusterRefInvalid, Connection
from controllers.kafkatopic.plan import AlterConfig, CreateTopic, IncreasePartitions, ReassignReplicas
from controllers.kafkatopic.state import ClusterFacts, ConfigValue, Observation, ObservedTopic

log = logging.getLogger("infometis.kafka")
REQUEST_TIMEOUT_SECONDS = 15.0
# How long the operator waits for a client library's answer, whatever timeout the library was given: a
# client whose I/O thread is wedged costs one failed, retried call, not its batch and every object
# queued behind it for good.
CLIENT_DEADLINE_SECONDS = 3 * REQUEST_TIMEOUT_SECONDS
# Brokers come and go rarely; one DescribeCluster serves every batch within
# this age, so a resync costs one Metadata and one DescribeConfigs per batch.
CLUSTER_FACTS_MAX_AGE_SECONDS = 10.0
MAX_BATCH = 1000
# What sys.getrefcount sees of a described topic's id inside release_leaked_topic_id when the client leaked
# one: the description's attribute, the function's local name, getrefcount's argument, and the leak.
LEAKED_TOPIC_ID_REFERENCES = 4
# KRaft's controller refuses, as a whole, a request that would write more than 10,000
# metadata records ("POLICY_VIOLATION: Unable to perform excessively large batch
# operation"); a new topic writes one record, plus one per partition and one per config
# key. Creations and partition increases are split into requests well below that.
MAX_RECORDS_PER_REQUEST = 5000
IDLE_CLIENT_SECONDS = 600.0

# Error codes meaning "the broker will refuse this request again"; anything
# else (timeouts, unreachable brokers, leader moves) is retried with backoff.
REFUSALS = {
    KafkaError.INVALID_CONFIG,
    KafkaError.INVALID_REPLICATION_FACTOR,
    KafkaError.INVALID_PARTITIONS,
    KafkaError.INVALID_REPLICA_ASSIGNMENT,
    KafkaError.POLICY_VIOLATION,
    KafkaError.INVALID_REQUEST,
    KafkaError.TOPIC_AUTHORIZATION_FAILED,
    KafkaError.CLUSTER_AUTHORIZATION_FAILED,
    KafkaError.TOPIC_EXCEPTION,
}

# librdkafka property -> kafka-python argument, for the reassignment client.
# With KAFKA_PYTHON_TLS_PROPERTIES, every key a connection may hold.
KAFKA_PYTHON_ARGUMENTS = {
    "bootstrap.servers": "bootstrap_servers",
    "security.protocol": "security_protocol",
    "sasl.mechanism": "sasl_mechanism",
    "sasl.mechanisms": "sasl_mechanism",
    "sasl.username": "sasl_plain_username",
    "sasl.password": "sasl_plain_password",
    "client.id": "client_id",
}
# The TLS properties, which kafka-python takes as one ssl.SSLContext.
KAFKA_PYTHON_TLS_PROPERTIES = frozenset(
    {"ssl.ca.pem", "ssl.certificate.pem", "ssl.key.pem", "ssl.key.password", "ssl.endpoint.identification.algorithm"}
)

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class TopicQuery:
    """What one reconcile asks of a topic: the topic, and the config keys its plan compares."""

    name: str
    config_keys: frozenset[str]


class KafkaUnavailable(Exception):
    """A transient failure: Kafka did not answer, or answered 'try again'."""


class BrokersBehind(KafkaUnavailable):
    """A broker does not list a topic Kafka's controller has: its copy of the metadata lags."""


class TopicMissing(KafkaUnavailable):
    """The topic does not exist (or not yet, on the broker that answered)."""


class TopicAlreadyExists(KafkaUnavailable):
    """CreateTopics found the name taken: created meanwhile, or still being deleted."""


class KafkaRefused(Exception):
    """Kafka refused the request and would refuse it again."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _kafka_error(exception: BaseException) -> Exception:
    if isinstance(exception, KafkaException) and isinstance(exception.args[0], KafkaError):
        error: KafkaError = exception.args[0]
        if error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
            return TopicMissing(error.str())
        if error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
            return TopicAlreadyExists(error.str())
        if error.code() in REFUSALS:
            return KafkaRefused(error.name(), error.str())
        return KafkaUnavailable(f"{error.name()}: {error.str()}")
    return KafkaUnavailable(str(exception) or type(exception).__name__)


def _error_code(exception: BaseException) -> str:
    """How the request-error metric names a failure: Kafka's error name, else 'unavailable'."""
    if isinstance(exception, KafkaException) and isinstance(exception.args[0], KafkaError):
        return str(exception.args[0].name())
    if isinstance(exception, KafkaRefused):
        return exception.code
    return "unavailable"


def _no_answer(client: str) -> KafkaUnavailable:
    return KafkaUnavailable(f"{client} gave no answer within {CLIENT_DEADLINE_SECONDS:.0f}s")


def _outcome(future: Future[Any]) -> Any:
    """A settled future's result or exception; one still running past the deadline is a failure."""
    if not future.done():
        return _no_answer("Kafka's client (librdkafka)")
    return future.exception() or future.result()


async def _all_done(futures: Collection[Future[Any]]) -> None:
    """Wait until every future is done, or CLIENT_DEADLINE_SECONDS have passed, with one wake-up of the
    event loop for them all: a future wrapped each (as asyncio.wrap_future does) costs the loop a
    callback and a wake-up per topic."""
    loop = asyncio.get_running_loop()
    all_done: asyncio.Future[None] = loop.create_future()
    remaining = len(futures)
    lock = threading.Lock()  # librdkafka's thread completes the futures

    def finish() -> None:
        if not all_done.done():
            all_done.set_result(None)

    def one_done(_: Future[Any]) -> None:
        nonlocal remaining
        with lock:
            remaining -= 1
            last = remaining == 0
        if last:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody waits
                loop.call_soon_threadsafe(finish)

    for future in futures:
        future.add_done_callback(one_done)
    if futures:
        with contextlib.suppress(TimeoutError):  # the callers read a future not done as a failure
            async with asyncio.timeout(CLIENT_DEADLINE_SECONDS):
                await all_done


async def _settle(operation: str, futures: Mapping[T, Future[Any]]) -> dict[T, Any]:
    """Each key's result, or its error as a KafkaUnavailable/KafkaRefused value; the request's time and
    each key's error go to the request metrics."""
    keys = list(futures)
    started = time.monotonic()
    await _all_done(futures.values())
    outcomes = [_outcome(futures[k]) for k in keys]
    metrics.SERVICE_REQUEST_SECONDS.labels("kafka", operation).observe(time.monotonic() - started)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            metrics.SERVICE_REQUEST_ERRORS.labels("kafka", operation, _error_code(outcome)).inc()
    return {k: (_kafka_error(o) if isinstance(o, BaseException) else o) for k, o in zip(keys, outcomes, strict=True)}


class KafkaAdmin:
    def __init__(self, connection: Connection, *, linger: float) -> None:
        self.connection = connection
        self.last_used = time.monotonic()
        self._request_counts: dict[tuple[str, str], int] = {}
        try:
            self._client = AdminClient(
                {
                    **connection.properties,
                    "statistics.interval.ms": 1000,
                    "stats_cb": self._count_requests,
                    "error_cb": self._remember_error,
                    "logger": logging.getLogger("infometis.librdkafka"),
                }
            )
        except (KafkaException, ValueError, TypeError) as error:
            raise ClusterRefInvalid(
                connection.redact(f"{connection.name} holds settings Kafka's client refuses: {error}")
            ) from None
        self._kafka_python: Any = None  # kafka-python's KafkaAdminClient, made on first use
        self._kafka_python_lock = asyncio.Lock()
        self._last_client_error: tuple[float, str] | None = None
        self._cluster: tuple[float, ClusterFacts] | None = None
        self._cluster_lock = asyncio.Lock()

        def batcher(call: Callable[[list[Any]], Awaitable[Mapping[Any, Any]]]) -> Batcher[Any, Any]:
            async def errors_as_values(items: list[Any]) -> Mapping[Any, Any]:
                try:
                    return await call(items)
                except ClusterRefInvalid:
                    raise
                except Exception as error:
                    # A client raising instead of answering per item: every item gets the
                    # failure in this edge's terms, never a raw client exception.
                    return dict.fromkeys(items, _kafka_error(error))

            return Batcher(errors_as_values, linger=linger, max_items=MAX_BATCH)

        self._observe = batcher(self._observe_batch)
        self._create = batcher(self._create_batch)
        self._partitions = batcher(self._partitions_batch)
        self._alter = batcher(self._alter_batch)
        self._delete = batcher(self._delete_batch)
        self._reassign = batcher(self._reassign_batch)
        self._reassigning = batcher(self._reassigning_batch)

    # --- the operations reconcilers call ------------------------------------------

    async def observe(self, topic: str, config_keys: frozenset[str]) -> Observation:
        """The topic as Kafka has it, with the values of `config_keys` only (the keys a plan compares)."""
        observation: Observation = await self._submit(self._observe, TopicQuery(topic, config_keys))
        return observation

    async def create(self, change: CreateTopic) -> None:
        await self._submit(self._create, change)

    async def increase_partitions(self, change: IncreasePartitions) -> None:
        await self._submit(self._partitions, change)

    async def alter_config(self, change: AlterConfig) -> None:
        await self._submit(self._alter, change)

    async def reassign(self, change: ReassignReplicas) -> None:
        await self._submit(self._reassign, change)

    async def partitions_being_reassigned(self, topic: str) -> frozenset[int]:
        result: frozenset[int] = await self._submit(self._reassigning, topic)
        return result

    async def delete(self, topic: str) -> None:
        await self._submit(self._delete, topic)

    async def known_to_controller(self, topic: str) -> bool:
        """Whether Kafka's controller has the topic. A describe is answered by a broker from its copy of the
        cluster's metadata, which lags behind the controller in a burst of creations; a CreateTopics that only
        validates is answered by the controller, and refused when the topic exists. Any other answer (no right
        to create, say) proves nothing: False."""
        self._count_call("create_topics_validate_only", 1)
        self.last_used = time.monotonic()
        futures = self._client.create_topics(
            [NewTopic(topic, -1, -1)], validate_only=True, request_timeout=REQUEST_TIMEOUT_SECONDS
        )
        await _all_done(futures.values())
        error = _outcome(futures[topic])
        return isinstance(error, KafkaException) and error.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS

    async def topic_names(self) -> tuple[str, frozenset[str]]:
        """The cluster id and the name of every topic on it (one Metadata request, off the event loop)."""
        self._count_call("list_topics", 1)
        try:
            with metrics.service_request("kafka", "list_topics", _error_code):
                async with asyncio.timeout(CLIENT_DEADLINE_SECONDS):
                    metadata = await asyncio.to_thread(self._client.list_topics, timeout=REQUEST_TIMEOUT_SECONDS)
        except KafkaException as error:
            raise _kafka_error(error) from None
        except TimeoutError:
            raise _no_answer("Kafka's client (librdkafka)") from None
        return metadata.cluster_id, frozenset(metadata.topics)

    async def probe(self, timeout: float) -> None:
        """Raise KafkaUnavailable, in the client's words, unless Kafka answers (or did within the
        cluster-facts age): readiness asks this of the default connection."""
        self.last_used = time.monotonic()  # a probed connection keeps its client
        try:
            await asyncio.wait_for(self._cluster_facts(), timeout)
        except TimeoutError:
            raise KafkaUnavailable(self.explain(KafkaUnavailable(f"no answer within {timeout:.0f}s"))) from None
        except KafkaUnavailable as error:
            raise KafkaUnavailable(self.explain(error)) from None

    def explain(self, error: Exception) -> str:
        """A failure in words, leading with the client's latest connection error: a
        request timing out says little, "SASL authentication error" says what to fix."""
        if self._last_client_error and time.monotonic() - self._last_client_error[0] < 60:
            text = (
                f"Kafka could not be reached ({self.connection.name}): {self._last_client_error[1]}; "
                f"the request ended with: {error}"
            )
        else:
            text = f"Kafka did not answer ({self.connection.name}): {error}"
        return self.connection.redact(text)

    def poll(self) -> None:
        """Serve librdkafka's callbacks (statistics, logs)."""
        self._client.poll(0)

    def close(self) -> None:
        if self._kafka_python is not None:
            self._kafka_python.close()

    async def _submit(self, batcher: Batcher[Any, Any], item: Any) -> Any:
        self.last_used = time.monotonic()
        return await batcher.submit(item)

    # --- batches --------------------------------------------------------------------

    def _count_call(self, operation: str, items: int) -> None:
        metrics.SERVICE_CALLS.labels("kafka", operation).inc()
        metrics.SERVICE_CALL_ITEMS.labels("kafka", operation).inc(items)

    async def _cluster_facts(self) -> ClusterFacts:
        try:
            # The wait for the lock counts too: callers queued behind an unanswered DescribeCluster
            # each fail at their own deadline, not one deadline after the caller before them.
            async with asyncio.timeout(CLIENT_DEADLINE_SECONDS):
                async with self._cluster_lock:  # one DescribeCluster however many callers are waiting
                    if self._cluster is None or time.monotonic() - self._cluster[0] > CLUSTER_FACTS_MAX_AGE_SECONDS:
                        self._cluster = (time.monotonic(), await self._describe_cluster())
                    return self._cluster[1]
        except TimeoutError:
            raise _no_answer("Kafka's client (librdkafka)") from None

    async def _describe_cluster(self) -> ClusterFacts:
        self._count_call("describe_cluster", 1)
        try:
            with metrics.service_request("kafka", "describe_cluster", _error_code):
                described = await asyncio.wrap_future(
                    self._client.describe_cluster(request_timeout=REQUEST_TIMEOUT_SECONDS)
                )
        except KafkaException as error:
            raise _kafka_error(error) from None
        return ClusterFacts(described.cluster_id, tuple(sorted(node.id for node in described.nodes)))

    async def _observe_batch(self, queries: list[TopicQuery]) -> dict[TopicQuery, Observation | Exception]:
        topics = sorted({query.name for query in queries})
        self._count_call("describe_topics", len(topics))
        described_futures = self._client.describe_topics(
            TopicCollection(topics), request_timeout=REQUEST_TIMEOUT_SECONDS
        )
        # The describe requests are already in flight in librdkafka; awaiting in turn
        # costs no time and starts no task that could outlive this call.
        cluster = await self._cluster_facts()
        described = await _settle("describe_topics", described_futures)
        found = {name: d for name, d in described.items() if not isinstance(d, TopicMissing)}
        for description in found.values():
            if not isinstance(description, Exception):
                release_leaked_topic_id(description)
        keys_by_topic: dict[str, frozenset[str]] = {}
        for query in queries:
            if query.config_keys and not isinstance(found.get(query.name, TopicMissing()), Exception):
                keys_by_topic[query.name] = keys_by_topic.get(query.name, frozenset()) | query.config_keys
        configs = await self._describe_configs(keys_by_topic) if keys_by_topic else {}

        results: dict[TopicQuery, Observation | Exception] = {}
        for query in queries:
            name = query.name
            topic_configs = configs.get(name, {})
            if name not in found or isinstance(topic_configs, TopicMissing):  # deleted between the two calls
                results[query] = Observation(topic=None, cluster=cluster)
            elif isinstance(found[name], Exception):
                results[query] = found[name]
            elif isinstance(topic_configs, Exception):
                results[query] = topic_configs
            else:
                results[query] = Observation(topic=_observed_topic(found[name], topic_configs), cluster=cluster)
        return results

    async def _describe_configs(
        self, keys_by_topic: Mapping[str, frozenset[str]]
    ) -> dict[str, dict[str, ConfigValue] | Exception]:
        """The values of the given keys of each topic, in one DescribeConfigs request.

        kafka-python asks the broker for these keys only; confluent-kafka can only ask for
        every key of a topic and builds a Python object for each of the ~40 it gets back,
        which made the configs most of a resync's CPU (see docs/benchmarks.md).
        """
        self._count_call("describe_configs", len(keys_by_topic))
        try:
            with metrics.service_request("kafka", "describe_configs", _error_code):
                response = await self._kafka_python_call(_describe_topic_configs, keys_by_topic)
        except ClusterRefInvalid:
            raise
        except Exception as error:
            failure = self._kafka_python_error(error)
            return dict.fromkeys(keys_by_topic, failure)
        results: dict[str, dict[str, ConfigValue] | Exception] = {}
        for result in response.results:
            if result.error_code:
                refusal = kafka_python_errors.for_code(result.error_code)(result.error_message)
                metrics.SERVICE_REQUEST_ERRORS.labels("kafka", "describe_configs", refusal.message).inc()
                results[result.resource_name] = (
                    TopicMissing(refusal.description)
                    if isinstance(refusal, kafka_python_errors.UnknownTopicOrPartitionError)
                    else self._kafka_python_error(refusal)
                )
            else:
                results[result.resource_name] = {
                    entry.name: ConfigValue(entry.value, entry.config_source == ConfigSourceType.DYNAMIC_TOPIC_CONFIG)
                    for entry in result.configs
                }
        return results

    async def _create_batch(self, changes: list[CreateTopic]) -> dict[CreateTopic, Any]:
        futures: dict[str, Future[Any]] = {}
        for chunk in record_bounded_chunks(changes, creation_records):
            self._count_call("create_topics", len(chunk))
            futures |= self._client.create_topics(
                [NewTopic(c.name, c.partitions, c.replication_factor, config=dict(c.config)) for c in chunk],
                operation_timeout=REQUEST_TIMEOUT_SECONDS,
                request_timeout=REQUEST_TIMEOUT_SECONDS,
            )
        settled = await _settle("create_topics", futures)
        return {c: settled[c.name] for c in changes}

    async def _partitions_batch(self, changes: list[IncreasePartitions]) -> dict[IncreasePartitions, Any]:
        futures: dict[str, Future[Any]] = {}
        for chunk in record_bounded_chunks(changes, lambda change: change.desired - change.current):
            self._count_call("create_partitions", len(chunk))
            futures |= self._client.create_partitions(
                [NewPartitions(c.name, c.desired) for c in chunk],
                operation_timeout=REQUEST_TIMEOUT_SECONDS,
                request_timeout=REQUEST_TIMEOUT_SECONDS,
            )
        settled = await _settle("create_partitions", futures)
        return {c: settled[c.name] for c in changes}

    async def _alter_batch(self, changes: list[AlterConfig]) -> dict[AlterConfig, Any]:
        self._count_call("incremental_alter_configs", len(changes))
        resources = [
            ConfigResource(
                ResourceType.TOPIC,
                change.name,
                incremental_configs=[
                    ConfigEntry(u.key, u.desired, incremental_operation=AlterConfigOpType.SET)
                    if u.desired is not None
                    else ConfigEntry(u.key, None, incremental_operation=AlterConfigOpType.DELETE)
                    for u in change.updates
                ],
            )
            for change in changes
        ]
        futures = self._client.incremental_alter_configs(resources, request_timeout=REQUEST_TIMEOUT_SECONDS)
        settled = {
            resource.name: outcome
            for resource, outcome in (await _settle("incremental_alter_configs", futures)).items()
        }
        return {c: settled[c.name] for c in changes}

    async def _delete_batch(self, topics: list[str]) -> dict[str, Any]:
        self._count_call("delete_topics", len(topics))
        futures = self._client.delete_topics(
            topics, operation_timeout=REQUEST_TIMEOUT_SECONDS, request_timeout=REQUEST_TIMEOUT_SECONDS
        )
        settled = await _settle("delete_topics", futures)
        # Already gone is as good as deleted.
        return {t: None if isinstance(o, TopicMissing) else o for t, o in settled.items()}

    async def _reassign_batch(self, changes: list[ReassignReplicas]) -> dict[ReassignReplicas, Any]:
        self._count_call("alter_partition_reassignments", len(changes))
        request = {
            TopicPartition(c.name, partition): list(replicas) for c in changes for partition, replicas in c.assignment
        }
        try:
            with metrics.service_request("kafka", "alter_partition_reassignments", _error_code):
                answers = await self._kafka_python_call(lambda client: client.alter_partition_reassignments(request))
        except ClusterRefInvalid:
            raise
        except Exception as error:
            return dict.fromkeys(changes, self._kafka_python_error(error))
        results: dict[ReassignReplicas, Any] = {}
        for change in changes:
            errors = [answers.get(TopicPartition(change.name, p)) for p, _ in change.assignment]
            refused = next((e for e in errors if e is not None), None)
            results[change] = KafkaRefused(refused.message, refused.description) if refused else None
        return results

    async def _reassigning_batch(self, topics: list[str]) -> dict[str, Any]:
        self._count_call("list_partition_reassignments", len(topics))
        try:
            with metrics.service_request("kafka", "list_partition_reassignments", _error_code):
                ongoing = await self._kafka_python_call(lambda client: client.list_partition_reassignments())
        except ClusterRefInvalid:
            raise
        except Exception as error:
            return dict.fromkeys(topics, self._kafka_python_error(error))
        return {t: frozenset(tp.partition for tp in ongoing if tp.topic == t) for t in topics}

    def _kafka_python_error(self, error: Exception) -> Exception:
        """kafka-python's error in this edge's terms: a refusal Kafka would repeat (lack of rights, say)
        by its code and description (its text dumps the controller's internal request), else a
        transient failure."""
        code = getattr(error, "message", None)
        if getattr(error, "retriable", True) is False and isinstance(code, str) and code.isupper():
            return KafkaRefused(code, str(getattr(error, "description", code)))
        return KafkaUnavailable(self.connection.redact(str(error)))

    async def _kafka_python_call(self, call: Callable[..., R], *args: Any) -> R:
        """`call(client, *args)` with kafka-python's admin client, off the event loop (its calls block).

        Past CLIENT_DEADLINE_SECONDS (counted from the call, waiting for the client included) the client
        is taken as wedged: it is closed, which ends the wait of the thread still in the call while its
        I/O loop runs, and the next call builds a new one.
        """
        client = None
        try:
            async with asyncio.timeout(CLIENT_DEADLINE_SECONDS):
                client = await self._kafka_python_client()
                return await asyncio.to_thread(call, client, *args)
        except TimeoutError:
            if client is not None and self._kafka_python is client:
                self._kafka_python = None
                # Closing joins its I/O thread, which may be what is stuck: not on the event loop, not awaited.
                threading.Thread(target=client.close, name="kafka-python-close", daemon=True).start()
            raise _no_answer("kafka-python's client") from None

    async def _kafka_python_client(self) -> Any:
        """kafka-python's admin client, built from the same connection properties.

        Its constructor connects and waits for the cluster (up to the request
        timeout), so it is built off the event loop, and by one caller at a time.
        """
        async with self._kafka_python_lock:
            if self._kafka_python is None:
                self._kafka_python = await asyncio.to_thread(_kafka_python_admin, self.connection)
            return self._kafka_python

    # --- statistics -------------------------------------------------------------------

    def _remember_error(self, error: KafkaError) -> None:
        self._last_client_error = (time.monotonic(), error.str())

    def _count_requests(self, stats_json: str) -> None:
        """librdkafka's cumulative per-broker request counts -> the Prometheus counter."""
        stats = json.loads(stats_json)
        for broker, broker_stats in stats.get("brokers", {}).items():
            for request, total in (broker_stats.get("req") or {}).items():
                before = self._request_counts.get((broker, request), 0)
                if total > before:
                    metrics.SERVICE_REQUESTS.labels("kafka", request).inc(total - before)
                    self._request_counts[(broker, request)] = total


def creation_records(change: CreateTopic) -> int:
    """The metadata records creating the topic writes: the topic, its partitions, its config keys."""
    return 1 + change.partitions + len(change.config)


def record_bounded_chunks(changes: list[T], records: Callable[[T], int]) -> list[list[T]]:
    """The changes in order, in requests of at most MAX_RECORDS_PER_REQUEST records each (a change
    larger than that alone goes in a request of its own, for Kafka to answer)."""
    chunks: list[list[T]] = []
    weight = 0
    for change in changes:
        cost = records(change)
        if not chunks or weight + cost > MAX_RECORDS_PER_REQUEST:
            chunks.append([])
            weight = 0
        chunks[-1].append(change)
        weight += cost
    return chunks


def kafka_python_arguments(connection: Connection) -> dict[str, Any]:
    """kafka-python's arguments for the connection's librdkafka properties."""
    timeout_ms = int(REQUEST_TIMEOUT_SECONDS * 1000)
    arguments: dict[str, Any] = {"request_timeout_ms": timeout_ms, "bootstrap_timeout_ms": timeout_ms}
    properties = connection.properties
    for key, argument in KAFKA_PYTHON_ARGUMENTS.items():
        if key in properties:
            arguments[argument] = properties[key]
    if KAFKA_PYTHON_TLS_PROPERTIES & properties.keys():
        try:
            arguments["ssl_context"] = _ssl_context(properties)
        except ssl.SSLError as error:  # what librdkafka accepted and Python's ssl does not, e.g. a certificate alone
            raise ClusterRefInvalid(
                f"config reads and replication-factor changes use kafka-python, which cannot use the TLS settings of "
                f"{connection.name}: {connection.redact(str(error))}"
            ) from None
    return arguments


def _ssl_context(properties: Mapping[str, str]) -> ssl.SSLContext:
    context = ssl.create_default_context(cadata=properties.get("ssl.ca.pem"))  # no CA given: the system's
    context.check_hostname = properties.get("ssl.endpoint.identification.algorithm", "https").lower() == "https"
    if "ssl.certificate.pem" in properties:
        # Python's ssl loads a key pair only from files: these live in a directory
        # only this user can read, for as long as loading takes.
        with tempfile.TemporaryDirectory() as folder:
            certificate, key = Path(folder, "certificate.pem"), Path(folder, "key.pem")
            certificate.write_text(properties["ssl.certificate.pem"])
            key.write_text(properties.get("ssl.key.pem", ""))
            context.load_cert_chain(certificate, key, password=properties.get("ssl.key.password"))
    return context


def _kafka_python_admin(connection: Connection) -> Any:
    """A connected KafkaAdminClient; blocks until the cluster answers or the bootstrap times out."""
    arguments = kafka_python_arguments(connection)
    network: list[Any] = []

    def network_client(**configs: Any) -> Any:
        network.append(KafkaNetClient(**configs))
        return network[-1]

    try:
        return KafkaAdminClient(**arguments, kafka_client=network_client)
    except Exception:
        # The constructor starts its I/O thread before connecting and leaves it
        # running when the connection fails: one leaked thread per retry.
        for client in network:
            client.close()
        raise


def _describe_topic_configs(client: Any, keys_by_topic: Mapping[str, frozenset[str]]) -> Any:
    """One DescribeConfigs request for these keys of these topics; the response (blocks: run in a thread).

    Sent as a request because kafka-python's describe_configs drops each topic's error code
    (an authorization failure would read as "no value set"); the response keeps it.
    """
    resources = [
        KafkaPythonConfigResource(ConfigResourceType.TOPIC, name, configs=dict.fromkeys(sorted(keys)))
        for name, keys in keys_by_topic.items()
    ]

    async def describe() -> Any:
        return await client._manager.send(client._describe_configs_request(resources))

    return client._manager.run(describe)


def release_leaked_topic_id(description: Any) -> None:
    """Give back the reference confluent-kafka (2.16.1) leaks on each TopicDescription's topic id.

    Its C code makes the topic id's Uuid object and never releases its own reference, so every topic
    described stays in memory for good: one object per topic per resync (185 MB a day at 1,000 topics and
    the default 30 s, and each one more for every full garbage collection to walk). The leak is seen, not
    assumed: the Uuid has exactly one reference more than the description's own (and the local name and
    the argument here), so a client that stops leaking is left alone, and each description is released
    at most once however often it is asked.
    """
    topic_id = description.topic_id
    if topic_id is not None and sys.getrefcount(topic_id) == LEAKED_TOPIC_ID_REFERENCES:
        ctypes.pythonapi.Py_DecRef(ctypes.py_object(topic_id))


def _observed_topic(described: Any, config: Mapping[str, ConfigValue]) -> ObservedTopic:
    partitions = sorted(described.partitions, key=lambda p: p.id)
    return ObservedTopic(
        name=described.name,
        topic_id=str(described.topic_id),
        replicas=tuple(tuple(node.id for node in p.replicas) for p in partitions),
        internal=bool(described.is_internal),
        config=config,
    )


def kafka_admins(*, linger: float) -> ClientPool[KafkaAdmin]:
    """One KafkaAdmin per distinct connection, closed after IDLE_CLIENT_SECONDS unused."""
    return ClientPool(
        "Kafka admin", lambda connection: KafkaAdmin(connection, linger=linger), idle_seconds=IDLE_CLIENT_SECONDS
    )
