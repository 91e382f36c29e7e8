"""KafkaTopic benchmark on the local real stack: `make bench-kafka` (BENCH_ARGS=--topics 200).

Measures, in one run so the ratios are comparable on a noisy machine:
  floor      a plain script: one batched CreateTopics for N topics, then N status patches
  operator   N KafkaTopics applied at once: time from the last apply until every one is
             Ready at its current generation
  idle       API-server writes and Kafka requests over five no-op resync periods
  memory     the operator's peak RSS (VmHWM)
and prints a Markdown table (docs/benchmarks.md holds the latest one).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic
from kubernetes import client, config

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from common import (  # noqa: E402  (hack/bench/common.py, beside this script)
    apiserver_metrics,
    apiserver_writes,
    free_port,
    metric_sum,
    peak_rss_mb,
    print_table,
    ready_condition,
    say,
    scrape,
    wait_all_ready,
)

from controllers.core.kube import KubeApi  # noqa: E402
from controllers.core.objects import ObjectKey  # noqa: E402
from controllers.kafkatopic.model import RESOURCE  # noqa: E402

GROUP, VERSION, PLURAL = RESOURCE.group, RESOURCE.version, RESOURCE.plural
DESCRIBE_REQUESTS = ("Metadata", "DescribeConfigs", "DescribeCluster")


def topic_manifest(name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "KafkaTopic",
        "metadata": {"name": name},
        "spec": {"partitions": 1, "replicationFactor": 1, "config": {"retention.ms": "3600000"}},
    }


def create_objects(namespace: str, names: list[str]) -> None:
    """Create the KafkaTopic objects concurrently, as a GitOps apply of many files would."""
    api = client.CustomObjectsApi()

    def create(name: str) -> None:
        api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, topic_manifest(name))

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(create, names))


def delete_namespace(name: str) -> None:
    client.CoreV1Api().delete_namespace(name)


def delete_topics(admin: AdminClient, names: list[str]) -> None:
    for start in range(0, len(names), 500):
        futures = admin.delete_topics(names[start : start + 500], operation_timeout=60)
        for future in futures.values():
            with contextlib.suppress(KafkaException):  # already gone is fine
                future.result(timeout=90)


# --- the floor ---------------------------------------------------------------------------


def floor_seconds(admin: AdminClient, namespace: str, names: list[str]) -> float:
    """One batched CreateTopics, then one status patch per object, as fast as this client goes."""
    create_objects(namespace, names)
    listed = client.CustomObjectsApi().list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
    uids = {item["metadata"]["name"]: item["metadata"]["uid"] for item in listed["items"]}
    started = time.monotonic()
    futures = admin.create_topics(
        [NewTopic(n, 1, 1, config={"retention.ms": "3600000"}) for n in names], operation_timeout=120
    )
    for future in futures.values():
        future.result(timeout=180)

    async def patch_all() -> None:
        kube = KubeApi.from_environment()
        slots = asyncio.Semaphore(32)

        async def patch(name: str) -> None:
            async with slots:
                await kube.replace_status(
                    RESOURCE,
                    ObjectKey(namespace, name),
                    uids[name],
                    {"observedGeneration": 1, "conditions": [ready_condition()]},
                )

        await asyncio.gather(*(patch(n) for n in names))
        await kube.close()

    asyncio.run(patch_all())
    return time.monotonic() - started


# --- metrics -----------------------------------------------------------------------------


def kafka_describe_requests(text: str) -> float:
    return metric_sum(text, "infometis_service_protocol_requests_total", request="|".join(DESCRIBE_REQUESTS))


# --- the run -------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--topics", type=int, default=1000)
    parser.add_argument("--resync-interval", type=float, default=10.0, help="seconds (default 10)")
    parser.add_argument("--idle-periods", type=int, default=5)
    args = parser.parse_args()

    config.load_kube_config()
    kubectl_env = {**os.environ}
    subprocess.run(["kubectl", "apply", "-k", str(REPO / "crds")], check=True, capture_output=True, env=kubectl_env)
    admin = AdminClient({"bootstrap.servers": os.environ["KAFKA_BOOTSTRAP_SERVERS"]})
    run = uuid.uuid4().hex[:6]
    n = args.topics

    say(f"floor: {n} topics in one batched CreateTopics, then {n} status patches")
    floor_namespace = f"bench-floor-{run}"
    client.CoreV1Api().create_namespace({"metadata": {"name": floor_namespace}})
    floor_names = [f"bench-floor-{run}-{i:05d}" for i in range(n)]
    floor = floor_seconds(admin, floor_namespace, floor_names)
    delete_namespace(floor_namespace)
    delete_topics(admin, floor_names)
    say(f"floor: {floor:.1f}s")

    namespace = f"bench-{run}"
    client.CoreV1Api().create_namespace({"metadata": {"name": namespace}})
    metrics_port = free_port()
    log_path = REPO / "bench-results" / f"operator-{run}.log"
    log_path.parent.mkdir(exist_ok=True)
    with log_path.open("wb") as log:
        operator = subprocess.Popen(
            [
                sys.executable, "-m", "controllers",
                "--namespace", namespace,
                "--resync-interval", f"{args.resync_interval}s",
                "--metrics-port", str(metrics_port),
                "--health-port", "0",
                "--log-level", "WARNING",
            ],
            cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    names = [f"bench-{run}-{i:05d}" for i in range(n)]
    try:
        time.sleep(2)
        say(f"operator: applying {n} KafkaTopics at once")
        apply_started = time.monotonic()
        create_objects(namespace, names)
        applied = time.monotonic() - apply_started
        say(f"operator: applied in {applied:.1f}s; waiting for all Ready")
        ready_after_last_apply = wait_all_ready(namespace, PLURAL, n, timeout=600)
        say(f"operator: all Ready {ready_after_last_apply:.1f}s after the last apply")

        time.sleep(args.resync_interval)  # let the first resync after the burst pass
        before_api, before_operator = apiserver_writes(apiserver_metrics(), PLURAL), scrape(metrics_url)
        say(f"idle: watching {args.idle_periods} resync periods of {args.resync_interval:.0f}s")
        time.sleep(args.resync_interval * args.idle_periods)
        idle_writes = apiserver_writes(apiserver_metrics(), PLURAL) - before_api
        after_operator = scrape(metrics_url)
        idle_describes = kafka_describe_requests(after_operator) - kafka_describe_requests(before_operator)
        for request in DESCRIBE_REQUESTS:
            delta = metric_sum(after_operator, "infometis_service_protocol_requests_total", request=request)
            delta -= metric_sum(before_operator, "infometis_service_protocol_requests_total", request=request)
            say(f"idle: {request} requests: {delta:.0f}")
        for operation in ("describe_topics", "describe_configs", "describe_cluster"):
            delta = metric_sum(after_operator, "infometis_service_calls_total", operation=operation)
            delta -= metric_sum(before_operator, "infometis_service_calls_total", operation=operation)
            say(f"idle: batched {operation} calls: {delta:.0f}")
        rss = peak_rss_mb(operator.pid)
    finally:
        operator.terminate()
        operator.wait(timeout=30)
        delete_namespace(namespace)
        delete_topics(admin, names)

    per_100 = idle_describes / args.idle_periods / (n / 100)
    ratio = ready_after_last_apply / floor
    rows = [
        ("topics", f"{n}", ""),
        ("apply of all objects (16 client threads)", f"{applied:.1f} s", ""),
        ("floor: batched create + status patches", f"{floor:.1f} s", ""),
        ("operator: last apply -> all Ready", f"{ready_after_last_apply:.1f} s", "<= 30 s"),
        ("operator: first apply -> all Ready", f"{applied + ready_after_last_apply:.1f} s", ""),
        ("ratio operator / floor", f"{ratio:.2f}", "<= 2"),
        (f"API-server writes in {args.idle_periods} no-op resyncs", f"{idle_writes:.0f}", "0"),
        ("Kafka describe requests per 100 topics per resync", f"{per_100:.2f}", "<= 1"),
        ("operator peak RSS", f"{rss:.0f} MB", "< 200 MB"),
    ]
    print_table(rows)


if __name__ == "__main__":
    main()
