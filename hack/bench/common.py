"""What the benchmarks share: waiting for objects to be Ready, scraping metrics, the process's memory."""

from __future__ import annotations

import re
import socket
import ssl
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from kubernetes import client

GROUP, VERSION = "infometis.io", "v1alpha1"


def say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def count_ready(namespace: str, plural: str) -> int:
    listing = client.CustomObjectsApi().list_namespaced_custom_object(GROUP, VERSION, namespace, plural)
    ready = 0
    for obj in listing["items"]:
        status = obj.get("status") or {}
        conditions = {c["type"]: c for c in status.get("conditions", [])}
        if (
            status.get("observedGeneration") == obj["metadata"]["generation"]
            and conditions.get("Ready", {}).get("status") == "True"
        ):
            ready += 1
    return ready


def wait_all_ready(namespace: str, plural: str, count: int, timeout: float) -> float:
    started = time.monotonic()
    while (ready := count_ready(namespace, plural)) < count:
        if time.monotonic() - started > timeout:
            raise SystemExit(f"only {ready} of {count} Ready after {timeout:.0f}s")
        time.sleep(0.25)
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


def apiserver_metrics() -> str:
    configuration = client.Configuration.get_default_copy()
    context = ssl.create_default_context(cafile=configuration.ssl_ca_cert)
    context.load_cert_chain(configuration.cert_file, configuration.key_file)
    return scrape(configuration.host + "/metrics", context)


def apiserver_writes(text: str, plural: str) -> float:
    """Writes the API server served for the kind and for Events."""
    return metric_sum(text, "apiserver_request_total", verb="POST|PUT|PATCH|DELETE|APPLY", resource=f"{plural}|events")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
