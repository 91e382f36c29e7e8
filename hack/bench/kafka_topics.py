"""KafkaTopic benchmark on the local real stack: `make bench-kafka` (BENCH_ARGS='--topics 5000 --latency').

Measures, in one run so the ratios are comparable on a noisy machine:
  floor      a plain script: N KafkaTopic objects created with no operator running (timed: the
             client's create time alone), then one batched CreateTopics for the N topics and N
             status patches - the least work any operator must do - then the intent and the Event
             per object this operator's guarantees add, and each process's CPU over it all
  operator   the operator started, N KafkaTopics applied at once (the client's create time with
             the operator running), then the time until every one is Ready at its generation,
             each process's CPU over it, what the operator wrote to the API server and its Kafka
             requests by type
  idle       no-op resync periods: API-server writes (zero expected), Kafka describe requests,
             and the operator's CPU per resync
  latency    (--latency) one object at a time while idle: a new topic, a config change and a
             partition increase, apply -> Ready as a watch sees it (median and p95 of --samples);
             then new topics applied while a resync of all N is under way
  memory     the operator's peak RSS (VmHWM)

`--sizes 1000,5000,10000 --plot FILE.png` runs the floor/operator/idle phases once per size and
plots time to Ready, peak RSS and resync CPU against N. `--profile` records the operator with
py-spy over the burst and over the idle resyncs (flame graphs in bench-results/).
Prints Markdown tables (docs/benchmarks.md holds the latest ones).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic
from kubernetes import client, config, watch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from common import (  # noqa: E402  (hack/bench/common.py, beside this script)
    OPERATOR_WRITE_VERBS,
    apiserver_metrics,
    apiserver_writes,
    cpu_seconds,
    create_objects,
    delete_namespace,
    free_port,
    is_ready,
    metric_sum,
    peak_rss_mb,
    print_table,
    ready_condition,
    requests_by_type,
    say,
    scrape,
    stack_cpu_seconds,
    start_operator,
    stop_operator,
    wait_all_ready,
    wait_metrics,
)

from controllers.core.kube import KubeApi  # noqa: E402
from controllers.core.objects import ObjectKey  # noqa: E402
from controllers.kafkatopic.model import RESOURCE  # noqa: E402

GROUP, VERSION, PLURAL = RESOURCE.group, RESOURCE.version, RESOURCE.plural
DESCRIBE_REQUESTS = ("Metadata", "DescribeConfigs", "DescribeCluster", "DescribeTopicPartitions")
RESULTS = REPO / "bench-results"
# The servers a KafkaTopic burst keeps busy besides the operator and the client.
BURST_SERVERS = ("kube-apiserver", "etcd", "kafka-1", "kafka-2", "kafka-3")


def topic_manifest(name: str, partitions: int = 1, retention_ms: str = "3600000") -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "KafkaTopic",
        "metadata": {"name": name},
        "spec": {"partitions": partitions, "replicationFactor": 1, "config": {"retention.ms": retention_ms}},
    }


def delete_topics(admin: AdminClient, names: list[str]) -> None:
    for start in range(0, len(names), 1000):
        futures = admin.delete_topics(names[start : start + 1000], operation_timeout=60)
        for future in futures.values():
            with contextlib.suppress(KafkaException):  # already gone (or never made) is fine
                future.result(timeout=90)


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile: with 10 samples, p95 is the largest."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


# --- the floor ---------------------------------------------------------------------------


@dataclass
class Floor:
    client_create_seconds: float  # N objects created with no operator running
    seconds: float  # batched CreateTopics + N status patches
    guarantee_seconds: float  # then the writes the guarantees add: an intent and an Event per object
    cpu: dict[str, float]  # CPU-s by process over all three steps: what the least work costs each server

    @property
    def with_guarantees_seconds(self) -> float:
        return self.client_create_seconds + self.seconds + self.guarantee_seconds


def measure_floor(admin: AdminClient, run: str, n: int) -> Floor:
    """N objects with no operator (timed: the client alone), then one batched CreateTopics and one
    status patch per object, then the two writes per object the operator's guarantees add (the
    intent it records before changing Kafka, the Event it posts after), each step as fast as this
    client goes."""
    namespace = f"bench-floor-{run}"
    names = [f"bench-floor-{run}-{i:05d}" for i in range(n)]
    client.CoreV1Api().create_namespace({"metadata": {"name": namespace}})
    try:
        client_cpu_before, stack_cpu_before = time.process_time(), stack_cpu_seconds(BURST_SERVERS)
        started = time.monotonic()
        create_objects(namespace, PLURAL, [topic_manifest(name) for name in names])
        client_create = time.monotonic() - started
        listed = client.CustomObjectsApi().list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
        involved = {item["metadata"]["name"]: item for item in listed["items"]}
        started = time.monotonic()
        futures = {}
        for start in range(0, n, 1000):  # Kafka refuses a request of more than 10,000 metadata records
            futures |= admin.create_topics(
                [NewTopic(name, 1, 1, config={"retention.ms": "3600000"}) for name in names[start : start + 1000]],
                operation_timeout=120,
            )
        for future in futures.values():
            future.result(timeout=180)
        write_each(namespace, involved, write_ready_status)
        seconds = time.monotonic() - started
        started = time.monotonic()
        write_each(namespace, involved, write_intent_and_event)
        guarantee_seconds = time.monotonic() - started
        return Floor(client_create, seconds, guarantee_seconds, cpu_by_process(client_cpu_before, stack_cpu_before))
    finally:
        delete_namespace(namespace)
        delete_topics(admin, names)


def cpu_by_process(client_cpu_before: float, stack_cpu_before: dict[str, float]) -> dict[str, float]:
    """CPU-s since the readings given: this client's, and each stack server's."""
    stack_cpu_after = stack_cpu_seconds(BURST_SERVERS)
    return {
        "client": time.process_time() - client_cpu_before,
        **{server: stack_cpu_after[server] - stack_cpu_before[server] for server in stack_cpu_after},
    }


FloorWrite = Callable[[KubeApi, ObjectKey, dict[str, Any]], Awaitable[None]]


def write_each(namespace: str, objects: dict[str, dict[str, Any]], write: FloorWrite) -> None:
    """`write` for every object, 32 at a time."""

    async def write_all() -> None:
        kube = KubeApi.from_environment()
        slots = asyncio.Semaphore(32)

        async def one(name: str) -> None:
            async with slots:
                await write(kube, ObjectKey(namespace, name), objects[name])

        await asyncio.gather(*(one(name) for name in objects))
        await kube.close()

    asyncio.run(write_all())


async def write_ready_status(kube: KubeApi, key: ObjectKey, body: dict[str, Any]) -> None:
    status = {"observedGeneration": 1, "conditions": [ready_condition()]}
    await kube.replace_status(RESOURCE, key, body["metadata"]["uid"], status)


async def write_intent_and_event(kube: KubeApi, key: ObjectKey, body: dict[str, Any]) -> None:
    """A status write the size of the operator's intent, and the Event it announces."""
    message = f"Topic '{key.name}' created with 1 partitions, replication factor 1, config retention.ms=3600000."
    event_id = "floor"
    intent = {
        "observedGeneration": 1,
        "conditions": [ready_condition()],
        "pendingEvents": [{"reason": "Created", "message": message, "eventId": event_id, "fields": []}],
    }
    await kube.replace_status(RESOURCE, key, body["metadata"]["uid"], intent)
    await kube.record_event(body, RESOURCE, reason="Created", message=message, warning=False, event_id=event_id)


# --- single-object latency ---------------------------------------------------------------------


def seconds_to_ready(namespace: str, name: str, act: Callable[[], None], timeout: float = 60) -> float:
    """Seconds from `act` (a create or a spec change) until a watch sees the object Ready at its new
    generation. The watch starts at the resourceVersion read before acting, so no event is missed."""
    api = client.CustomObjectsApi()
    listed = api.list_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, field_selector=f"metadata.name={name}"
    )
    before = listed["items"][0]["metadata"]["generation"] if listed["items"] else 0
    seen = threading.Event()
    ready_time: list[float] = []

    def follow() -> None:
        stream = watch.Watch().stream(
            api.list_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            field_selector=f"metadata.name={name}",
            resource_version=listed["metadata"]["resourceVersion"],
            timeout_seconds=int(timeout),
        )
        for event in stream:
            obj = event["object"]
            if obj["metadata"].get("generation", 0) > before and is_ready(obj):
                ready_time.append(time.monotonic())
                seen.set()
                return

    follower = threading.Thread(target=follow, daemon=True)
    follower.start()
    started = time.monotonic()
    act()
    if not seen.wait(timeout):
        raise SystemExit(f"{namespace}/{name} was not Ready {timeout:.0f}s after the change")
    return ready_time[0] - started


@dataclass
class Latencies:
    samples: dict[str, list[float]] = field(default_factory=dict)

    def add(self, what: str, seconds: float) -> None:
        self.samples.setdefault(what, []).append(seconds)

    def rows(self) -> list[tuple[str, str, str]]:
        rows = []
        for what, values in self.samples.items():
            median, p95 = statistics.median(values) * 1000, percentile(values, 0.95) * 1000
            rows.append((f"{what}, median / p95 of {len(values)}", f"{median:.0f} / {p95:.0f} ms", "< 100 ms median"))
        return rows


def measure_latency(namespace: str, run: str, samples: int, metrics_url: str, n: int) -> Latencies:
    api = client.CustomObjectsApi()
    latencies = Latencies()

    def create(name: str) -> Callable[[], None]:
        return lambda: api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, topic_manifest(name))

    def patch(name: str, spec: dict[str, Any]) -> Callable[[], None]:
        return lambda: api.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name, {"spec": spec})

    names = [f"bench-{run}-single-{i:03d}" for i in range(samples)]
    for name in names:
        time.sleep(0.3)  # a lone request: nothing else in flight
        latencies.add("new topic, idle", seconds_to_ready(namespace, name, create(name)))
    for name in names:
        time.sleep(0.3)
        change = patch(name, {"config": {"retention.ms": "7200000"}})
        latencies.add("config change, idle", seconds_to_ready(namespace, name, change))
    for name in names:
        time.sleep(0.3)
        latencies.add("partition increase, idle", seconds_to_ready(namespace, name, patch(name, {"partitions": 2})))
    for i in range(samples):
        wait_for_resync(metrics_url, n)
        name = f"bench-{run}-during-resync-{i:03d}"
        latencies.add(f"new topic, during a resync of {n}", seconds_to_ready(namespace, name, create(name)))
    return latencies


def wait_for_resync(metrics_url: str, n: int, timeout: float = 120) -> None:
    """Until the operator's work queue holds at least a quarter of the N objects: a resync has begun."""
    deadline = time.monotonic() + timeout
    while metric_sum(scrape(metrics_url), "infometis_workqueue_depth", kind="KafkaTopic") < n / 4:
        if time.monotonic() > deadline:
            raise SystemExit(f"no resync of {n} objects began within {timeout:.0f}s")
        time.sleep(0.02)


# --- profiling ------------------------------------------------------------------------------------


@contextlib.contextmanager
def profiled(pid: int, phase: str, run: str, enabled: bool) -> Any:
    """py-spy recording the operator over the block: bench-results/profile-<phase>-<run>.svg."""
    if not enabled:
        yield
        return
    output = RESULTS / f"profile-{phase}-{run}.svg"
    recorder = subprocess.Popen(
        [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(pid), "--output", str(output),
         "--rate", "200", "--nonblocking"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    time.sleep(1)  # py-spy attaches
    try:
        yield
    finally:
        recorder.send_signal(2)  # SIGINT: py-spy writes the flame graph and exits
        recorder.wait(timeout=120)
        say(f"profile of {phase}: {output}")


# --- one size ------------------------------------------------------------------------------------


@dataclass
class Result:
    n: int
    floor: Floor
    client_create_seconds: float  # with the operator running
    ready_after_last_apply: float
    operator_cpu_burst: float
    burst_cpu: dict[str, float]  # per process over the burst: the operator, this client, the stack's servers
    burst_writes: dict[str, float]
    burst_kafka_requests: dict[str, float]  # the operator's, by request type
    idle_writes: float
    describes_per_100_per_resync: float
    cpu_per_resync: float
    peak_rss_mb: float
    latencies: Latencies | None


def run_size(admin: AdminClient, n: int, args: argparse.Namespace) -> Result:
    run = uuid.uuid4().hex[:6]
    say(
        f"floor: {n} objects with no operator, {n} topics in batched CreateTopics, {n} status patches, "
        "then an intent and an Event per object"
    )
    floor = measure_floor(admin, run, n)
    say(
        f"floor: client create {floor.client_create_seconds:.1f}s; create + patches {floor.seconds:.1f}s; "
        f"intents + Events {floor.guarantee_seconds:.1f}s"
    )

    namespace = f"bench-{run}"
    client.CoreV1Api().create_namespace({"metadata": {"name": namespace}})
    metrics_port = free_port()
    operator = start_operator(
        "kafka", namespace, args.resync_interval, metrics_port, RESULTS / f"operator-{run}.log", *args.operator_args
    )
    metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    names = [f"bench-{run}-{i:05d}" for i in range(n)]
    try:
        wait_metrics(metrics_url)
        time.sleep(1)
        say(f"operator: applying {n} KafkaTopics at once")
        writes_before, cpu_before = apiserver_metrics(), cpu_seconds(operator.pid)
        kafka_requests_before = requests_by_type(scrape(metrics_url), "kafka")
        client_cpu_before, stack_cpu_before = time.process_time(), stack_cpu_seconds(BURST_SERVERS)
        with profiled(operator.pid, f"burst-{n}", run, args.profile):
            started = time.monotonic()
            create_objects(namespace, PLURAL, [topic_manifest(name) for name in names])
            client_create = time.monotonic() - started
            say(f"operator: applied in {client_create:.1f}s; waiting for all Ready")
            ready_after_last_apply = wait_all_ready(namespace, PLURAL, n, timeout=900)
        operator_cpu_burst = cpu_seconds(operator.pid) - cpu_before
        burst_cpu = {"operator": operator_cpu_burst, **cpu_by_process(client_cpu_before, stack_cpu_before)}
        # librdkafka's statistics arrive every second: one more, so the last requests are counted.
        time.sleep(1.5)
        kafka_requests_after = requests_by_type(scrape(metrics_url), "kafka")
        burst_kafka_requests = {
            request: total - kafka_requests_before.get(request, 0.0)
            for request, total in sorted(kafka_requests_after.items())
            if total > kafka_requests_before.get(request, 0.0)
        }
        say(f"Kafka requests over the burst: {burst_kafka_requests}")
        say("CPU over the burst: " + ", ".join(f"{name} {seconds:.1f}" for name, seconds in burst_cpu.items()))
        writes_after = apiserver_metrics()
        # The operator's writes: status patches of the kind (the client's creates are POSTs) and Events.
        burst_writes = {
            resource: metric_sum(writes_after, "apiserver_request_total", verb=verbs, resource=resource)
            - metric_sum(writes_before, "apiserver_request_total", verb=verbs, resource=resource)
            for resource, verbs in ((PLURAL, "PATCH|PUT|APPLY"), ("events", OPERATOR_WRITE_VERBS))
        }
        say(f"operator: all Ready {ready_after_last_apply:.1f}s after the last apply; writes {burst_writes}")

        time.sleep(args.resync_interval)  # let the first resync after the burst pass
        before_api, before_operator = apiserver_metrics(), scrape(metrics_url)
        cpu_before = cpu_seconds(operator.pid)
        say(f"idle: {args.idle_periods} resync periods of {args.resync_interval:.0f}s")
        with profiled(operator.pid, f"idle-{n}", run, args.profile):
            time.sleep(args.resync_interval * args.idle_periods)
        cpu_per_resync = (cpu_seconds(operator.pid) - cpu_before) / args.idle_periods
        idle_writes = apiserver_writes(apiserver_metrics(), PLURAL) - apiserver_writes(before_api, PLURAL)
        after_operator = scrape(metrics_url)
        idle_describes = sum(
            metric_sum(after_operator, "infometis_service_protocol_requests_total", request=request)
            - metric_sum(before_operator, "infometis_service_protocol_requests_total", request=request)
            for request in DESCRIBE_REQUESTS
        )
        say(f"idle: {cpu_per_resync:.2f} CPU-s per resync, {idle_writes:.0f} writes")
        latencies = measure_latency(namespace, run, args.samples, metrics_url, n) if args.latency else None
        rss = peak_rss_mb(operator.pid)
    finally:
        stop_operator(operator)
        delete_namespace(namespace, timeout=300)
        delete_topics(admin, names)
    return Result(
        n=n,
        floor=floor,
        client_create_seconds=client_create,
        ready_after_last_apply=ready_after_last_apply,
        operator_cpu_burst=operator_cpu_burst,
        burst_cpu=burst_cpu,
        burst_writes=burst_writes,
        burst_kafka_requests=burst_kafka_requests,
        idle_writes=idle_writes,
        describes_per_100_per_resync=idle_describes / args.idle_periods / (n / 100),
        cpu_per_resync=cpu_per_resync,
        peak_rss_mb=rss,
        latencies=latencies,
    )


def by_process(cpu: dict[str, float]) -> str:
    return ", ".join(f"{name} {seconds:.1f}" for name, seconds in cpu.items())


def rows(result: Result) -> list[tuple[str, str, str]]:
    n = result.n
    floor = result.floor
    first_apply_to_ready = result.client_create_seconds + result.ready_after_last_apply
    table = [
        ("topics", f"{n}", ""),
        ("client: create N objects, no operator running", f"{floor.client_create_seconds:.1f} s", ""),
        ("client: create N objects, operator running", f"{result.client_create_seconds:.1f} s", ""),
        (
            "ratio client create time, operator / none",
            f"{result.client_create_seconds / floor.client_create_seconds:.2f}",
            "as low as the mandatory writes allow",
        ),
        ("floor: batched create + status patches", f"{floor.seconds:.1f} s", ""),
        ("floor: then an intent and an Event per object", f"{floor.guarantee_seconds:.1f} s", ""),
        ("floor with the guarantees' writes, in all", f"{floor.with_guarantees_seconds:.1f} s", ""),
        ("CPU over the floor, by process", by_process(floor.cpu), ""),
        ("operator: last apply -> all Ready", f"{result.ready_after_last_apply:.1f} s", ""),
        ("operator: first apply -> all Ready", f"{first_apply_to_ready:.1f} s", "< 90 s at 10,000"),
        ("operator CPU, first apply -> all Ready", f"{result.operator_cpu_burst:.1f} CPU-s", ""),
        ("CPU over the burst, by process", by_process(result.burst_cpu), ""),
        (
            "operator writes over the burst: status / Events",
            f"{result.burst_writes[PLURAL]:.0f} / {result.burst_writes['events']:.0f}",
            "",
        ),
        (
            "operator's Kafka requests over the burst",
            ", ".join(f"{request} {count:.0f}" for request, count in result.burst_kafka_requests.items()),
            "",
        ),
        ("API-server writes in the no-op resyncs", f"{result.idle_writes:.0f}", "0"),
        ("Kafka describe requests per 100 topics per resync", f"{result.describes_per_100_per_resync:.2f}", ""),
        ("operator CPU per no-op resync", f"{result.cpu_per_resync:.2f} CPU-s", "<= 2 at 5,000 (0.4 ms/topic)"),
        ("operator CPU per topic per resync", f"{result.cpu_per_resync / n * 1000:.2f} ms", "<= 0.4 ms"),
        ("operator peak RSS", f"{result.peak_rss_mb:.0f} MB", "< 300 MB at 10,000"),
    ]
    if result.latencies:
        table.extend(result.latencies.rows())
    return table


def plot(results: list[Result], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [r.n for r in results]
    figure, axes = plt.subplots(1, 3, figsize=(13, 4))
    panels = [
        ("first apply -> all Ready (s)", [r.client_create_seconds + r.ready_after_last_apply for r in results]),
        ("operator peak RSS (MB)", [r.peak_rss_mb for r in results]),
        ("operator CPU per no-op resync (CPU-s)", [r.cpu_per_resync for r in results]),
    ]
    for axis, (title, values) in zip(axes, panels, strict=True):
        axis.plot(sizes, values, marker="o")
        # The line through the origin and the smallest size: what linear growth would give.
        axis.plot([0, sizes[-1]], [0, values[0] / sizes[0] * sizes[-1]], linestyle="--", color="grey")
        axis.set_title(title)
        axis.set_xlabel("KafkaTopics")
        axis.set_xlim(left=0)
        axis.set_ylim(bottom=0)
        axis.grid(alpha=0.3)
    figure.suptitle("KafkaTopic operator against N topics (dashed: linear from the smallest N)")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    say(f"plot: {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--topics", type=int, default=1000)
    parser.add_argument("--sizes", help="comma-separated sizes, run one after another (instead of --topics)")
    parser.add_argument("--plot", type=Path, help="with --sizes: a PNG of the figures against N")
    parser.add_argument("--resync-interval", type=float, default=10.0, help="seconds (default 10)")
    parser.add_argument("--idle-periods", type=int, default=3)
    parser.add_argument("--latency", action="store_true", help="also measure single-object latencies")
    parser.add_argument("--samples", type=int, default=10, help="single-object samples per figure")
    parser.add_argument("--profile", action="store_true", help="record the operator with py-spy")
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    parser.add_argument("operator_args", nargs="*", help="after --: extra flags for the operator")
    args = parser.parse_args()

    config.load_kube_config()
    subprocess.run(["kubectl", "apply", "-k", str(REPO / "crds")], check=True, capture_output=True)
    RESULTS.mkdir(exist_ok=True)
    admin = AdminClient({"bootstrap.servers": os.environ["KAFKA_BOOTSTRAP_SERVERS"]})
    sizes = [int(size) for size in args.sizes.split(",")] if args.sizes else [args.topics]
    results = []
    for n in sizes:
        results.append(run_size(admin, n, args))
        print_table(rows(results[-1]))
    if args.json:
        args.json.write_text(json.dumps([rows(result) for result in results], indent=1))
    if args.plot:
        plot(results, args.plot)


if __name__ == "__main__":
    main()
