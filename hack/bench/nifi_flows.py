"""NiFiFlow benchmark on the local real stack: `make bench-nifi` (BENCH_ARGS='--flows 10').

Measures, in one run so the ratios are comparable on a noisy machine:
  floor      a plain script speaking NiFi's REST API as its UI does, --floor-concurrency flows at a
             time (default 8): per flow, upload the definition the operator would upload (bound to its
             own parameter context, infometis/<namespace>/<name>), set the parameter's value (NiFi's
             asynchronous parameter context update: read its revision, submit, poll every 50 ms,
             delete the request) and start the group; then N status patches (32 at a time)
  operator   N NiFiFlow objects applied at once: time from the last apply until every one is Ready
             at its current generation
  idle       Kubernetes writes and NiFi requests over a few no-op resync periods, by request type,
             from the operator's /metrics (and the API server's own count)
  memory     the operator's peak RSS (VmHWM)
and prints a Markdown table (docs/benchmarks.md holds the latest one).

Each flow is tests/nifi_flows.generate_update_log (GenerateFlowFile -> UpdateAttribute ->
LogAttribute, one parameter). The script removes what it created: the objects (the operator
deletes its groups and parameter contexts, as deletionPolicy Delete says), the floor's groups
and contexts, both namespaces, and whatever either left in NiFi under the run's names.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client, config

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from common import (  # noqa: E402  (hack/bench/common.py, beside this script)
    APPLY_THREADS,
    OPERATOR_WRITE_VERBS,
    apiserver_metrics,
    apiserver_writes,
    cpu_seconds,
    create_objects,
    delete_namespace,
    free_port,
    metric_delta,
    metric_sum,
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
from controllers.nififlow.client import FIRST_POLL_SECONDS  # noqa: E402
from controllers.nififlow.definition import context_name, prepare  # noqa: E402
from controllers.nififlow.model import RESOURCE  # noqa: E402
from tests.nifi_flows import generate_update_log  # noqa: E402

GROUP, VERSION, PLURAL = RESOURCE.group, RESOURCE.version, RESOURCE.plural
SERVICE = "nifi"  # the operator's metrics label
PARAMETER = {"name": "source", "value": "bench"}  # the one parameter generate_update_log's Tag uses
# The requests a no-op resync needs per NiFi: the root group's definition and its recursive status.
RESYNC_READS = ("download", "status")
PATCH_CONCURRENCY = 32
CLIENT_ID = "infometis-bench"
ASYNC_TIMEOUT_SECONDS = 120.0
# The floor polls NiFi's asynchronous parameter updates this often: the least wait, a few more requests.
FLOOR_POLL_SECONDS = 0.05


def flow_manifest(name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "NiFiFlow",
        "metadata": {"name": name},
        "spec": {"flowDefinition": generate_update_log(name), "parameters": [PARAMETER]},
    }


def flow_names(prefix: str, run: str, n: int) -> list[str]:
    width = max(3, len(str(n - 1)))
    return [f"{prefix}{run}-{i:0{width}d}" for i in range(n)]


# --- NiFi, spoken to as its UI does (plain REST) -------------------------------------------------


class NiFiRest:
    """NiFi's REST API over one keep-alive connection pool; counts its requests by what they do."""

    def __init__(self, url: str, connections: int) -> None:
        self.url = url.rstrip("/")
        self._http = urllib3.PoolManager(maxsize=connections, block=True, timeout=urllib3.Timeout(total=60))
        self.requests: Counter[str] = Counter()

    def call(self, what: str, method: str, path: str, body: Any = None, **fields: str) -> Any:
        self.requests[what] += 1
        if body is not None:
            response = self._http.request(
                method, self.url + path, body=json.dumps(body), headers={"Content-Type": "application/json"}
            )
        else:
            response = self._http.request(method, self.url + path, fields=fields or None)
        if response.status >= 400:
            raise RuntimeError(f"NiFi: {method} {path}: HTTP {response.status}: {response.data.decode()[:300]}")
        return json.loads(response.data) if response.data.strip().startswith(b"{") else None

    def upload(self, name: str, definition: dict[str, Any]) -> Any:
        """A group under the root group from a flow definition (the UI's upload, a multipart form)."""
        self.requests["upload"] += 1
        response = self._http.request(
            "POST",
            self.url + "/process-groups/root/process-groups/upload",
            fields={
                "groupName": name,
                "positionX": "0",
                "positionY": "0",
                "clientId": CLIENT_ID,
                "file": ("flow.json", json.dumps(definition).encode(), "application/json"),
            },
        )
        if response.status >= 400:
            raise RuntimeError(f"NiFi: upload of {name}: HTTP {response.status}: {response.data.decode()[:300]}")
        return json.loads(response.data)

    def until_complete(self, what: str, path: str, key: str, finished: str, interval: float) -> None:
        """Poll one of NiFi's asynchronous requests until it is finished, then delete it."""
        deadline = time.monotonic() + ASYNC_TIMEOUT_SECONDS
        try:
            while True:
                answer = self.call(f"{what}-status", "GET", path)[key]
                if answer.get(finished):
                    if answer.get("failureReason"):
                        raise RuntimeError(f"NiFi: {path}: {answer['failureReason']}")
                    return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"NiFi: {path} did not finish within {ASYNC_TIMEOUT_SECONDS:.0f}s")
                time.sleep(interval)
        finally:
            self.call(f"{what}-delete", "DELETE", path)

    def set_parameters(self, context_id: str, values: dict[str, str], interval: float) -> None:
        context = self.call("context", "GET", f"/parameter-contexts/{context_id}")
        body = {
            "revision": context["revision"],
            "id": context_id,
            "component": {
                "id": context_id,
                "parameters": [
                    {"parameter": {"name": k, "sensitive": False, "value": v}} for k, v in sorted(values.items())
                ],
            },
        }
        request = self.call("context-update", "POST", f"/parameter-contexts/{context_id}/update-requests", body)
        request_id = request["request"]["requestId"]
        path = f"/parameter-contexts/{context_id}/update-requests/{request_id}"
        self.until_complete("context-update", path, "request", "complete", interval)

    def schedule(self, group_id: str, state: str) -> None:
        self.call("schedule", "PUT", f"/flow/process-groups/{group_id}", {"id": group_id, "state": state})

    # --- cleaning up ---------------------------------------------------------------------------

    def root_groups(self) -> dict[str, str]:
        """The root group's child groups: name -> id."""
        listing = self.call("list", "GET", "/process-groups/root/process-groups")["processGroups"]
        return {str(g["component"]["name"]): str(g["id"]) for g in listing}

    def contexts(self) -> dict[str, str]:
        """Every parameter context: name -> id."""
        listing = self.call("list", "GET", "/flow/parameter-contexts")["parameterContexts"]
        return {str(c["component"]["name"]): str(c["id"]) for c in listing}

    def delete_group(self, group_id: str) -> None:
        """Stop the group, empty its queues and remove it."""
        self.schedule(group_id, "STOPPED")
        drop = self.call("drop", "POST", f"/process-groups/{group_id}/empty-all-connections-requests")
        path = f"/process-groups/{group_id}/empty-all-connections-requests/{drop['dropRequest']['id']}"
        self.until_complete("drop", path, "dropRequest", "finished", FIRST_POLL_SECONDS)
        version = self.call("group", "GET", f"/process-groups/{group_id}")["revision"]["version"]
        self.call("delete-group", "DELETE", f"/process-groups/{group_id}?version={version}&clientId={CLIENT_ID}")

    def delete_context(self, context_id: str) -> None:
        version = self.call("context", "GET", f"/parameter-contexts/{context_id}")["revision"]["version"]
        self.call(
            "delete-context", "DELETE", f"/parameter-contexts/{context_id}?version={version}&clientId={CLIENT_ID}"
        )

    def remove(self, groups: Collection[str], contexts: Collection[str]) -> tuple[int, int]:
        """Delete these groups (by name, under the root group), then these parameter contexts (by name),
        whichever exist; how many of each there were."""
        found_groups = {n: i for n, i in self.root_groups().items() if n in groups}
        for group_id in found_groups.values():
            self.delete_group(group_id)
        found_contexts = {n: i for n, i in self.contexts().items() if n in contexts}
        for context_id in found_contexts.values():
            self.delete_context(context_id)
        return len(found_groups), len(found_contexts)


def nifi_version(url: str) -> str:
    about = NiFiRest(url, 1).call("about", "GET", "/flow/about")
    return f"NiFi {about['about']['version']}"


# --- the floor ---------------------------------------------------------------------------


def floor_seconds(
    nifi: NiFiRest, namespace: str, names: list[str], concurrency: int, poll: float
) -> tuple[float, float]:
    """Per flow: the operator's upload, the parameter set, the start; then one status patch per object.
    The whole time, and the part spent in NiFi."""
    create_objects(namespace, PLURAL, [flow_manifest(n) for n in names])
    listed = client.CustomObjectsApi().list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
    uids = {item["metadata"]["name"]: item["metadata"]["uid"] for item in listed["items"]}
    definitions = {n: prepare(generate_update_log(n), context_name(namespace, n)).definition for n in names}
    group_ids: dict[str, str] = {}

    def deploy(name: str) -> None:
        group = nifi.upload(name, dict(definitions[name]))
        group_ids[name] = str(group["id"])
        context_id = str(group["component"]["parameterContext"]["id"])
        nifi.set_parameters(context_id, {PARAMETER["name"]: PARAMETER["value"]}, poll)
        nifi.schedule(group_ids[name], "RUNNING")

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(deploy, names))
    in_nifi = time.monotonic() - started

    async def patch_all() -> None:
        kube = KubeApi.from_environment()
        try:
            patches = asyncio.Semaphore(PATCH_CONCURRENCY)

            async def patch(name: str) -> None:
                async with patches:
                    await kube.replace_status(
                        RESOURCE,
                        ObjectKey(namespace, name),
                        uids[name],
                        {
                            "observedGeneration": 1,
                            "processGroupName": name,
                            "processGroupId": group_ids[name],
                            "state": "Running",
                            "conditions": [ready_condition()],
                        },
                    )

            await asyncio.gather(*(patch(n) for n in names))
        finally:
            await kube.close()

    asyncio.run(patch_all())
    return time.monotonic() - started, in_nifi


# --- the operator's objects --------------------------------------------------------------------


def count_objects(namespace: str) -> int:
    listing = client.CustomObjectsApi().list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
    return len(listing["items"])


def delete_objects(namespace: str, timeout: float) -> float | None:
    """Delete every NiFiFlow of the namespace and wait until the operator has let them go; None if it did
    not within `timeout`."""
    client.CustomObjectsApi().delete_collection_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
    started = time.monotonic()
    while count_objects(namespace):
        if time.monotonic() - started > timeout:
            return None
        time.sleep(0.5)
    return time.monotonic() - started


def release_objects(namespace: str) -> int:
    """Take the finalizer off whatever NiFiFlow is left (the operator is gone), so the namespace can go."""
    api = client.CustomObjectsApi()
    left = api.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)["items"]
    for item in left:
        name = item["metadata"]["name"]
        try:
            api.patch_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, name, {"metadata": {"finalizers": None}}
            )
        except client.ApiException as error:
            if error.status != 404:
                raise
    return len(left)


def cleanup_nifi(nifi: NiFiRest, namespace: str, names: list[str]) -> None:
    groups, contexts = nifi.remove(set(names), {context_name(namespace, n) for n in names})
    if groups or contexts:
        say(f"removed from NiFi what was left in {namespace}'s names: {groups} group(s), {contexts} context(s)")


# --- the run -------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--flows", type=int, default=50, help="how many flows (default 50)")
    parser.add_argument("--resync-interval", type=float, default=10.0, help="seconds (default 10)")
    parser.add_argument("--idle-periods", type=int, default=5, help="no-op resync periods watched (default 5)")
    parser.add_argument(
        "--floor-concurrency", type=int, default=8, help="the floor's flows deployed at a time (default 8)"
    )
    parser.add_argument(
        "--floor-poll",
        type=float,
        default=FLOOR_POLL_SECONDS,
        help=f"seconds between the floor's polls of a parameter update (default {FLOOR_POLL_SECONDS}; the "
        f"operator's: {FIRST_POLL_SECONDS}, doubling)",
    )
    parser.add_argument(
        "--operator-log-level", default="WARNING", help="the operator's, logged to bench-results/ (default WARNING)"
    )
    args = parser.parse_args()

    url = os.environ.get("NIFI_URL")
    if not url:
        raise SystemExit('NIFI_URL is not set: run under `eval "$(hack/stack env)"`')
    config.load_kube_config()
    subprocess.run(["kubectl", "apply", "-k", str(REPO / "crds")], check=True, capture_output=True)
    version = nifi_version(url)
    run = uuid.uuid4().hex[:4]
    n = args.flows
    names = flow_names("b", run, n)
    say(f"{version} at {url}; {n} flows (GenerateFlowFile -> UpdateAttribute -> LogAttribute), names like {names[0]}")

    say(
        f"floor: {n} x (upload, parameter update, start), {args.floor_concurrency} flows at a time, "
        f"then {n} status patches"
    )
    floor_namespace = f"bench-nifi-floor-{run}"
    floor_names = flow_names("f", run, n)
    floor_nifi = NiFiRest(url, args.floor_concurrency)
    client.CoreV1Api().create_namespace({"metadata": {"name": floor_namespace}})
    try:
        floor, floor_in_nifi = floor_seconds(
            floor_nifi, floor_namespace, floor_names, args.floor_concurrency, args.floor_poll
        )
    finally:
        floor_requests = dict(floor_nifi.requests)
        cleanup = NiFiRest(url, 1)
        cleanup.remove(set(floor_names), {context_name(floor_namespace, f) for f in floor_names})
        delete_namespace(floor_namespace)
    say(f"floor: {floor:.1f}s ({floor_in_nifi:.1f}s of it in NiFi); requests {floor_requests}")

    namespace = f"bench-nifi-{run}"
    client.CoreV1Api().create_namespace({"metadata": {"name": namespace}})
    metrics_port = free_port()
    log_path = REPO / "bench-results" / f"operator-nifi-{run}.log"
    operator = start_operator(
        "nifi", namespace, args.resync_interval, metrics_port, log_path,
        "--nifi-url", url, "--log-level", args.operator_log_level,
    )  # fmt: skip
    metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    deleted_after: float | None = None
    try:
        wait_metrics(metrics_url)
        time.sleep(1)
        say(f"operator: applying {n} NiFiFlow objects at once")
        cpu_before = cpu_seconds(operator.pid)
        apply_started = time.monotonic()
        create_objects(namespace, PLURAL, [flow_manifest(x) for x in names])
        applied = time.monotonic() - apply_started
        say(f"operator: applied in {applied:.1f}s; waiting for all Ready")
        ready_after_last_apply = wait_all_ready(namespace, PLURAL, n, timeout=900)
        say(f"operator: all Ready {ready_after_last_apply:.1f}s after the last apply")
        busy_cpu = cpu_seconds(operator.pid) - cpu_before
        busy = scrape(metrics_url)

        time.sleep(args.resync_interval)  # let the first resync after the burst pass
        before_api, before = apiserver_metrics(), scrape(metrics_url)
        idle_seconds = args.resync_interval * args.idle_periods
        say(f"idle: watching {args.idle_periods} resync periods of {args.resync_interval:.0f}s")
        time.sleep(idle_seconds)
        after_api = apiserver_metrics()
        after = scrape(metrics_url)
        rss = peak_rss_mb(operator.pid)

        say(f"operator: deleting the {n} objects (deletionPolicy Delete: their groups and contexts go too)")
        deleted_after = delete_objects(namespace, timeout=300)
        if deleted_after is None:
            say("operator: the objects were not all gone after 300s; cleaning up without it")
    finally:
        stop_operator(operator)
        released = release_objects(namespace)
        if released:
            say(f"took the finalizer off {released} object(s) the operator had not deleted")
        delete_namespace(namespace)
        cleanup_nifi(NiFiRest(url, 1), namespace, names)
    say(f"cleaned up: namespaces {floor_namespace} and {namespace}, {2 * n} groups and parameter contexts")

    periods = args.idle_periods
    kube_writes = metric_delta(before, after, "infometis_kube_writes_total")
    api_writes = apiserver_writes(after_api, PLURAL, OPERATOR_WRITE_VERBS) - apiserver_writes(
        before_api, PLURAL, OPERATOR_WRITE_VERBS
    )
    api_deletes = apiserver_writes(after_api, PLURAL, "DELETE") - apiserver_writes(before_api, PLURAL, "DELETE")
    idle = {k: v - requests_by_type(before, SERVICE).get(k, 0.0) for k, v in requests_by_type(after, SERVICE).items()}
    idle = {k: v for k, v in idle.items() if v}
    observe_calls = metric_delta(before, after, "infometis_service_calls_total", operation="observe")
    observe_items = metric_delta(before, after, "infometis_service_call_items_total", operation="observe")
    resync_reads = sum(idle.get(r, 0.0) for r in RESYNC_READS)
    probes = idle.get("about", 0.0)
    other = {k: v for k, v in idle.items() if k not in (*RESYNC_READS, "about")}
    for request, count in sorted(idle.items()):
        say(f"idle: {request}: {count:.0f} ({count / periods:.1f} per resync)")
    say(f"idle: observe batches {observe_calls:.0f} covering {observe_items:.0f} objects")
    say(
        f"idle: operator's Kubernetes writes {kube_writes:.0f}; API server's count of creates, updates and "
        f"patches of {PLURAL} and Events {api_writes:.0f}, of deletes {api_deletes:.0f} (the namespace "
        "controller's, in namespaces being deleted)"
    )
    burst = requests_by_type(busy, SERVICE)
    say("burst (start to all Ready): " + ", ".join(f"{k} {v:.0f}" for k, v in sorted(burst.items())))
    burst_writes = metric_sum(busy, "infometis_kube_writes_total")
    burst_requests = sum(v for k, v in burst.items() if k != "about")
    floor_total = sum(floor_requests.values())

    ratio = ready_after_last_apply / floor
    ratio_from_first = (applied + ready_after_last_apply) / (applied + floor)
    rows = [
        ("server", version, ""),
        ("flows", f"{n}", ""),
        (f"apply of all objects ({APPLY_THREADS} client threads)", f"{applied:.1f} s", ""),
        (
            f"floor: {n} x (upload, parameter update, start), {args.floor_concurrency} at a time, "
            f"+ status patches ({PATCH_CONCURRENCY} at a time)",
            f"{floor:.1f} s",
            "",
        ),
        ("operator: last apply -> all Ready", f"{ready_after_last_apply:.1f} s", ""),
        ("operator: first apply -> all Ready", f"{applied + ready_after_last_apply:.1f} s", ""),
        ("ratio operator / floor (from the last apply)", f"{ratio:.2f}", "<= 2"),
        ("ratio operator / (apply + floor) (from the first apply)", f"{ratio_from_first:.2f}", ""),
        (
            "NiFi requests per flow to Ready: floor / operator (without probes)",
            f"{floor_total / n:.1f} / {burst_requests / n:.1f}",
            "",
        ),
        ("Kubernetes writes per flow to Ready: floor / operator", f"1 / {burst_writes / n:.1f}", ""),
        ("operator CPU from the first apply to all Ready", f"{busy_cpu:.1f} s", ""),
        (
            f"Kubernetes writes in {periods} no-op resyncs (operator / API server: creates, updates, patches)",
            f"{kube_writes:.0f} / {api_writes:.0f}",
            "0",
        ),
        (
            f"  deletes of {PLURAL} and Events meanwhile (namespace controller, other namespaces)",
            f"{api_deletes:.0f}",
            "",
        ),
        ("observe batches per no-op resync", f"{observe_calls / periods:.1f}", ""),
        (
            "requests per no-op resync per NiFi: root definition + recursive status",
            f"{resync_reads / periods:.1f}",
            "<= 2",
        ),
        (
            "  plus other requests per resync" + (f" ({', '.join(sorted(other))})" if other else ""),
            f"{sum(other.values()) / periods:.1f}",
            "",
        ),
        ("  plus readiness probes (GET /flow/about) per resync period", f"{probes / periods:.1f}", ""),
        (
            "operator: delete all -> all gone (groups and contexts removed)",
            f"{deleted_after:.1f} s" if deleted_after is not None else "not within 300 s",
            "",
        ),
        ("operator peak RSS", f"{rss:.0f} MB", "< 200 MB"),
    ]
    print_table(rows)


if __name__ == "__main__":
    main()
