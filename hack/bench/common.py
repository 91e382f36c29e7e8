"""What the benchmarks share: waiting for objects to be Ready, scraping metrics, the process's memory."""

from __future__ import annotations

import os
import re
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from kubernetes import client, watch

REPO = Path(__file__).resolve().parents[2]
GROUP, VERSION = "infometis.io", "v1alpha1"
# How many client threads create the objects: a GitOps tool applying a folder of files.
APPLY_THREADS = 16


def say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def print_table(rows: list[tuple[str, str, str]]) -> None:
    """The benchmark's result as the Markdown table docs/benchmarks.md takes."""
    print("| measure | value | target |\n|---|---|---|")
    for measure, value, target in rows:
        print(f"| {measure} | {value} | {target} |")


def is_ready(obj: dict[str, Any]) -> bool:
    """Ready=True at the object's current generation, as kstatus and `kubectl wait` read it."""
    status = obj.get("status") or {}
    conditions = {c["type"]: c for c in status.get("conditions", [])}
    return (
        status.get("observedGeneration") == obj["metadata"]["generation"]
        and conditions.get("Ready", {}).get("status") == "True"
    )


def create_objects(namespace: str, plural: str, manifests: Sequence[dict[str, Any]]) -> None:
    """Create the objects concurrently (APPLY_THREADS at a time), as a GitOps apply of many files would."""
    configuration = client.Configuration.get_default_copy()
    configuration.connection_pool_maxsize = APPLY_THREADS  # a connection per thread: none opened and dropped
    with client.ApiClient(configuration) as api_client:
        api = client.CustomObjectsApi(api_client)

        def create(manifest: dict[str, Any]) -> None:
            api.create_namespaced_custom_object(GROUP, VERSION, namespace, plural, manifest)

        with ThreadPoolExecutor(max_workers=APPLY_THREADS) as pool:
            list(pool.map(create, manifests))


def delete_namespace(name: str, timeout: float = 120) -> None:
    """Delete a namespace and wait until it is gone (at most `timeout` seconds, then say so)."""
    core = client.CoreV1Api()
    try:
        core.delete_namespace(name)
    except client.ApiException as error:
        if error.status != 404:
            raise
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            core.read_namespace(name)
        except client.ApiException as error:
            if error.status == 404:
                return
            raise
        time.sleep(0.5)
    say(f"namespace {name} is still terminating after {timeout:.0f}s")


def wait_all_ready(namespace: str, plural: str, count: int, timeout: float) -> float:
    """Seconds until `count` objects are Ready, seen by one listing and then a watch from it: listing
    thousands of objects every moment instead would load the API server being measured."""
    started = time.monotonic()
    api = client.CustomObjectsApi()
    listing = api.list_namespaced_custom_object(GROUP, VERSION, namespace, plural)
    ready = {obj["metadata"]["name"] for obj in listing["items"] if is_ready(obj)}
    version = listing["metadata"]["resourceVersion"]
    while len(ready) < count:
        remaining = timeout - (time.monotonic() - started)
        if remaining <= 0:
            raise SystemExit(f"only {len(ready)} of {count} Ready after {timeout:.0f}s")
        stream = watch.Watch()
        for event in stream.stream(
            api.list_namespaced_custom_object, GROUP, VERSION, namespace, plural,
            resource_version=version, timeout_seconds=max(1, int(min(remaining, 60))),
        ):  # fmt: skip
            obj = event["object"]
            version = obj["metadata"]["resourceVersion"]
            if event["type"] != "DELETED" and is_ready(obj):
                ready.add(obj["metadata"]["name"])
            else:
                ready.discard(obj["metadata"]["name"])
            if len(ready) >= count:
                stream.stop()
    return time.monotonic() - started


def ready_condition() -> dict[str, Any]:
    """The condition the floor's status patches write, as the operator's would."""
    return {
        "type": "Ready",
        "status": "True",
        "observedGeneration": 1,
        "lastTransitionTime": "2026-01-01T00:00:00Z",
        "reason": "Succeeded",
        "message": "floor",
    }


def scrape(url: str, context: ssl.SSLContext | None = None) -> str:
    with urllib.request.urlopen(url, timeout=10, context=context) as response:
        return str(response.read().decode())


def metric_sum(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line[: line.rindex("}")]))
        if all(re.fullmatch(pattern, found.get(key, "")) for key, pattern in labels.items()):
            total += float(line.split()[-1])
    return total


def metric_delta(before: str, after: str, name: str, **labels: str) -> float:
    return metric_sum(after, name, **labels) - metric_sum(before, name, **labels)


def requests_by_type(text: str, service: str) -> dict[str, float]:
    """The operator's protocol requests to one service (its metrics label), by request type."""
    counts: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("infometis_service_protocol_requests_total{") and f'service="{service}"' in line:
            request = dict(re.findall(r'(\w+)="([^"]*)"', line[: line.rindex("}")]))["request"]
            counts[request] = counts.get(request, 0.0) + float(line.split()[-1])
    return counts


def wait_metrics(url: str, timeout: float = 30) -> None:
    """Wait until the operator's /metrics answers."""
    started = time.monotonic()
    while True:
        try:
            scrape(url)
            return
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() - started > timeout:
                raise SystemExit(f"the operator's metrics did not answer at {url} within {timeout:.0f}s") from None
            time.sleep(0.2)


def apiserver_metrics() -> str:
    configuration = client.Configuration.get_default_copy()
    context = ssl.create_default_context(cafile=configuration.ssl_ca_cert)
    context.load_cert_chain(configuration.cert_file, configuration.key_file)
    return scrape(configuration.host + "/metrics", context)


# The writes an operator makes: it creates, updates and patches, and never deletes its objects or Events.
# Kubernetes' namespace controller does delete: every kind's collection in each terminating namespace, again
# and again while one is stuck on a finalizer, whoever's namespace it is (the metrics name no namespace).
OPERATOR_WRITE_VERBS = "POST|PUT|PATCH|APPLY"


def apiserver_writes(text: str, plural: str, verbs: str = OPERATOR_WRITE_VERBS) -> float:
    """Writes the API server served for the kind and for Events (`verbs`: a regular expression). Not DELETE by
    default: the operator deletes neither, and the namespace controller deletes both in a namespace stuck
    terminating (every 10 s), which would be charged to the operator."""
    return metric_sum(text, "apiserver_request_total", verb=verbs, resource=f"{plural}|events")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """The process's CPU time so far, user and system."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


STACK_PIDS = (
    Path(
        os.environ.get("INFOMETIS_STACK_DIR")
        or Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local/state") / "infometis-stack"
    )
    / "pids"
)


def stack_cpu_seconds(servers: Sequence[str]) -> dict[str, float]:
    """Each running stack server's CPU time so far (servers named by hack/stack: etcd, kafka-1, ...)."""
    seconds = {}
    for server in servers:
        pid_file = STACK_PIDS / f"{server}.pid"
        if pid_file.exists():
            seconds[server] = cpu_seconds(int(pid_file.read_text()))
    return seconds


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_operator(
    controller: str, namespace: str, resync_interval: float, metrics_port: int, log_path: Path, *extra: str
) -> subprocess.Popen[bytes]:
    """`python -m controllers` for one service, watching one namespace, its /metrics on its own port and no
    health port, logging warnings and errors to `log_path` (`extra` flags come last: they may change that)."""
    log_path.parent.mkdir(exist_ok=True)
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [
                sys.executable, "-m", "controllers",
                "--controllers", controller,
                "--namespace", namespace,
                "--resync-interval", f"{resync_interval}s",
                "--metrics-port", str(metrics_port),
                "--health-port", "0",
                "--log-level", "WARNING",
                *extra,
            ],
            cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip


def stop_operator(process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
