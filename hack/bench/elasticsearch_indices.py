"""ElasticsearchIndex benchmark on the local real stack: `make bench-elasticsearch`
(BENCH_ARGS='--indices 500 --server opensearch').

Measures, in one run so the ratios are comparable on a noisy machine:
  floor      a plain script with the server's official client: N create-index requests
             (--floor-concurrency at a time, default 32), then N status patches (32 at a time)
  operator   N ElasticsearchIndex objects applied at once: time from the last apply until
             every one is Ready at its current generation
  idle       Kubernetes writes and search requests over a few no-op resync periods, by
             request type, from the operator's /metrics (and the API server's own count)
  memory     the operator's peak RSS (VmHWM)
and prints a Markdown table (docs/benchmarks.md holds the latest one).

Index names are short (10 characters for up to 10,000 indices) so that 200 of them fit in
one request line (client.MAX_NAMES_IN_URL: 3,000 characters of names); --name-length pads
them, to see what a batch of names too long for one line costs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import elasticsearch
import opensearchpy
from kubernetes import client, config

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from common import (  # noqa: E402  (hack/bench/common.py, beside this script)
    APPLY_THREADS,
    apiserver_metrics,
    apiserver_writes,
    create_objects,
    delete_namespace,
    free_port,
    metric_delta,
    peak_rss_mb,
    print_table,
    ready_condition,
    requests_by_type,
    say,
    scrape,
    start_operator,
    stop_operator,
    wait_all_ready,
    wait_metrics,
)

from controllers.core.kube import KubeApi  # noqa: E402
from controllers.core.objects import ObjectKey  # noqa: E402
from controllers.elasticsearchindex.client import MAX_BATCH, MAX_NAMES_IN_URL, _name_batches  # noqa: E402
from controllers.elasticsearchindex.model import RESOURCE  # noqa: E402

GROUP, VERSION, PLURAL = RESOURCE.group, RESOURCE.version, RESOURCE.plural
SERVERS = {"elasticsearch": "ELASTICSEARCH_URL", "opensearch": "OPENSEARCH_URL"}
SERVICE = "elasticsearch"  # the operator's metrics label for both servers
# What every benchmark index declares: one shard and no replica (green on one node), one
# dynamic setting, two fields.
SETTINGS = {"number_of_shards": 1, "number_of_replicas": 0, "refresh_interval": "5s"}
MAPPINGS = {"properties": {"user_id": {"type": "keyword"}, "created_at": {"type": "date"}}}
PATCH_CONCURRENCY = 32


def index_manifest(name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ElasticsearchIndex",
        "metadata": {"name": name},
        "spec": {"settings": SETTINGS, "mappings": MAPPINGS},
    }


def index_names(prefix: str, run: str, n: int, length: int) -> list[str]:
    """Short unique names ('b1a2f-0042'), padded to `length` characters when that is longer."""
    width = max(4, len(str(n - 1)))
    short = f"{prefix}{run}-"
    pad = "x" * max(0, length - len(short) - width - 1)
    return [f"{short}{pad}{'-' if pad else ''}{i:0{width}d}" for i in range(n)]


# --- the search server, through its official client ------------------------------------------


def search_api(server: str, url: str) -> Any:
    if server == "opensearch":
        return opensearchpy.AsyncOpenSearch(hosts=[url], timeout=120)
    return elasticsearch.AsyncElasticsearch(hosts=[url], request_timeout=120)


def delete_indices(server: str, url: str, names: Sequence[str]) -> None:
    async def delete() -> None:
        api = search_api(server, url)
        try:
            for chunk in _name_batches(names):  # URLs the servers accept
                await api.indices.delete(index=",".join(chunk), ignore_unavailable=True)
        finally:
            await api.close()

    asyncio.run(delete())


def server_version(server: str, url: str) -> str:
    async def info() -> str:
        api = search_api(server, url)
        try:
            body = await api.info()
            version = (body.get("version") or {}).get("number", "?")
            return f"{'OpenSearch' if server == 'opensearch' else 'Elasticsearch'} {version}"
        finally:
            await api.close()

    return asyncio.run(info())


# --- the floor ---------------------------------------------------------------------------


def floor_seconds(server: str, url: str, namespace: str, names: list[str], concurrency: int) -> float:
    """N create-index requests with the official client, then one status patch per object."""
    create_objects(namespace, PLURAL, [index_manifest(n) for n in names])
    listed = client.CustomObjectsApi().list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
    uids = {item["metadata"]["name"]: item["metadata"]["uid"] for item in listed["items"]}

    async def run() -> float:
        api = search_api(server, url)
        kube = KubeApi.from_environment()
        started = time.monotonic()
        try:
            creates = asyncio.Semaphore(concurrency)

            async def create(name: str) -> None:
                async with creates:
                    await api.indices.create(index=name, body={"settings": SETTINGS, "mappings": MAPPINGS})

            await asyncio.gather(*(create(n) for n in names))
            patches = asyncio.Semaphore(PATCH_CONCURRENCY)

            async def patch(name: str) -> None:
                async with patches:
                    await kube.replace_status(
                        RESOURCE,
                        ObjectKey(namespace, name),
                        uids[name],
                        {"observedGeneration": 1, "conditions": [ready_condition()]},
                    )

            await asyncio.gather(*(patch(n) for n in names))
            return time.monotonic() - started
        finally:
            await api.close()
            await kube.close()

    return asyncio.run(run())


# --- the run -------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--indices", type=int, default=200, help="how many indices (default 200)")
    parser.add_argument("--server", choices=sorted(SERVERS), default="elasticsearch")
    parser.add_argument("--resync-interval", type=float, default=10.0, help="seconds (default 10)")
    parser.add_argument("--idle-periods", type=int, default=5, help="no-op resync periods watched (default 5)")
    parser.add_argument(
        "--floor-concurrency", type=int, default=32, help="the floor's create requests at a time (default 32)"
    )
    parser.add_argument(
        "--name-length",
        type=int,
        default=0,
        help="pad index names to this many characters, to see a batch go over the URL budget (default: shortest)",
    )
    args = parser.parse_args()

    url = os.environ.get(SERVERS[args.server])
    if not url:
        raise SystemExit(f'{SERVERS[args.server]} is not set: run under `eval "$(hack/stack env)"`')
    config.load_kube_config()
    subprocess.run(["kubectl", "apply", "-k", str(REPO / "crds")], check=True, capture_output=True)
    version = server_version(args.server, url)
    run = uuid.uuid4().hex[:4]
    n = args.indices
    names = index_names("b", run, n, args.name_length)
    batches = len(_name_batches(names))
    say(
        f"{version} at {url}; {n} indices, names like {names[0]}: {sum(len(x) + 1 for x in names)} characters in "
        f"URLs: {batches} request line(s) when read by name (budget {MAX_NAMES_IN_URL}, at most {MAX_BATCH} a batch)"
    )

    say(f"floor: {n} create-index requests ({args.floor_concurrency} at a time), then {n} status patches")
    floor_namespace = f"bench-es-floor-{run}"
    floor_names = index_names("f", run, n, args.name_length)
    client.CoreV1Api().create_namespace({"metadata": {"name": floor_namespace}})
    try:
        floor = floor_seconds(args.server, url, floor_namespace, floor_names, args.floor_concurrency)
    finally:
        delete_namespace(floor_namespace)
        delete_indices(args.server, url, floor_names)
    say(f"floor: {floor:.1f}s")

    namespace = f"bench-es-{run}"
    client.CoreV1Api().create_namespace({"metadata": {"name": namespace}})
    metrics_port = free_port()
    log_path = REPO / "bench-results" / f"operator-es-{run}.log"
    operator = start_operator(
        "elasticsearch", namespace, args.resync_interval, metrics_port, log_path, "--elasticsearch-url", url
    )
    metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    try:
        wait_metrics(metrics_url)
        time.sleep(1)
        say(f"operator: applying {n} ElasticsearchIndex objects at once")
        apply_started = time.monotonic()
        create_objects(namespace, PLURAL, [index_manifest(n) for n in names])
        applied = time.monotonic() - apply_started
        say(f"operator: applied in {applied:.1f}s; waiting for all Ready")
        ready_after_last_apply = wait_all_ready(namespace, PLURAL, n, timeout=900)
        say(f"operator: all Ready {ready_after_last_apply:.1f}s after the last apply")
        busy = scrape(metrics_url)

        time.sleep(args.resync_interval)  # let the first resync after the burst pass
        before_api, before = apiserver_writes(apiserver_metrics(), PLURAL), scrape(metrics_url)
        idle_seconds = args.resync_interval * args.idle_periods
        say(f"idle: watching {args.idle_periods} resync periods of {args.resync_interval:.0f}s")
        time.sleep(idle_seconds)
        api_writes = apiserver_writes(apiserver_metrics(), PLURAL) - before_api
        after = scrape(metrics_url)
        rss = peak_rss_mb(operator.pid)
    finally:
        stop_operator(operator)
        delete_namespace(namespace)
        delete_indices(args.server, url, names)
    say(f"cleaned up: namespaces {floor_namespace} and {namespace}, {2 * n} indices")

    periods = args.idle_periods
    kube_writes = metric_delta(before, after, "infometis_kube_writes_total")
    idle = {k: v - requests_by_type(before, SERVICE).get(k, 0.0) for k, v in requests_by_type(after, SERVICE).items()}
    idle = {k: v for k, v in idle.items() if v}
    observe_calls = metric_delta(before, after, "infometis_service_calls_total", operation="observe")
    observe_items = metric_delta(before, after, "infometis_service_call_items_total", operation="observe")
    health = idle.get("cluster.health", 0.0)
    # An observe batch sends one get-index and one health request per URL batch (every index
    # exists here); every other get-index is the unmanaged-index report's listing (GET /*, once
    # per resync period).
    observe_gets = health
    listing_gets = idle.get("indices.get", 0.0) - observe_gets
    info = idle.get("info", 0.0)
    for request, count in sorted(idle.items()):
        say(f"idle: {request}: {count:.0f} ({count / periods:.1f} per resync)")
    say(f"idle: observe batches {observe_calls:.0f} covering {observe_items:.0f} objects")
    say(f"idle: operator's Kubernetes writes {kube_writes:.0f}, API server's count {api_writes:.0f}")
    burst = requests_by_type(busy, SERVICE)
    say("burst (start to all Ready): " + ", ".join(f"{k} {v:.0f}" for k, v in sorted(burst.items())))

    ratio = ready_after_last_apply / floor
    ratio_from_first = (applied + ready_after_last_apply) / (applied + floor)
    rows = [
        ("server", version, ""),
        ("indices", f"{n}", ""),
        (f"apply of all objects ({APPLY_THREADS} client threads)", f"{applied:.1f} s", ""),
        (
            f"floor: {n} creates ({args.floor_concurrency} at a time) + status patches ({PATCH_CONCURRENCY} at a time)",
            f"{floor:.1f} s",
            "",
        ),
        ("operator: last apply -> all Ready", f"{ready_after_last_apply:.1f} s", ""),
        ("operator: first apply -> all Ready", f"{applied + ready_after_last_apply:.1f} s", ""),
        ("ratio operator / floor (from the last apply)", f"{ratio:.2f}", "<= 2"),
        ("ratio operator / (apply + floor) (from the first apply)", f"{ratio_from_first:.2f}", ""),
        (
            f"Kubernetes writes in {periods} no-op resyncs (operator / API server count)",
            f"{kube_writes:.0f} / {api_writes:.0f}",
            "0",
        ),
        ("observe batches per no-op resync", f"{observe_calls / periods:.1f}", ""),
        (
            "requests per no-op resync per cluster: get-index + health of the managed indices",
            f"{(observe_gets + health) / periods:.1f}",
            "<= 2",
        ),
        ("  plus the unmanaged-index listing (get-index of *) per resync", f"{listing_gets / periods:.1f}", ""),
        ("  plus readiness probes (GET /) per resync period", f"{info / periods:.1f}", ""),
        ("operator peak RSS", f"{rss:.0f} MB", "< 200 MB"),
    ]
    print_table(rows)


if __name__ == "__main__":
    main()
