"""ElasticsearchIndex migration benchmark on the local real servers (not part of `make test`).

    eval "$(hack/stack env)" && .venv/bin/python hack/bench/index_migration.py [--documents 100000]

For each server with a real _reindex (OpenSearch, Elasticsearch 7.17), in one run so the ratio is
comparable on a noisy machine, alternating round by round:
  plain      what a person would do by hand: create the new index (3 shards, a field's type changed),
             `_reindex` the 1-shard index of N small documents into it (waiting), refresh it
  migration  an ElasticsearchIndex holding the same documents behind its name, its spec changed the
             same way: time from the spec patch until it is Ready with the name on the new index
  block      the longest stretch a writer (one write every 10 ms through the name) saw its writes
             refused by the final copy's write block
and prints a Markdown table with the medians and the ratio (target: migration within 2x plain).
"""

from __future__ import annotations

import argparse
import base64
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
import warnings
from pathlib import Path
from typing import Any

import elasticsearch
import opensearchpy
from kubernetes import client, config

REPO = Path(__file__).resolve().parents[2]
warnings.filterwarnings("ignore", category=elasticsearch.exceptions.GeneralAvailabilityWarning)
GROUP, VERSION, PLURAL = "infometis.io", "v1alpha1", "elasticsearchindices"
SERVERS = {
    "opensearch": ("OPENSEARCH_URL", "http://127.0.0.1:29201"),
    "elasticsearch7": ("ELASTICSEARCH7_URL", "http://127.0.0.1:29207"),
}
OLD = {
    "settings": {"number_of_shards": 1, "number_of_replicas": 0},
    "mappings": {"properties": {"value": {"type": "long"}, "tag": {"type": "keyword"}}},
}
NEW = {
    "settings": {"number_of_shards": 3, "number_of_replicas": 0},
    "mappings": {"properties": {"value": {"type": "keyword"}, "tag": {"type": "keyword"}}},
}


def say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def body(response: Any) -> Any:
    return response.body if hasattr(response, "body") else response


def connect(name: str, url: str) -> Any:
    if name.startswith("opensearch"):
        return opensearchpy.OpenSearch(hosts=[url], timeout=600)
    return elasticsearch.Elasticsearch(hosts=[url], request_timeout=600)


def load(api: Any, index: str, documents: int) -> None:
    for start in range(0, documents, 10_000):
        lines: list[dict[str, Any]] = []
        for n in range(start, min(start + 10_000, documents)):
            lines += [{"index": {"_index": index, "_id": str(n)}}, {"value": n, "tag": f"t{n % 10}"}]
        answer = body(api.bulk(body=lines))
        assert not answer["errors"], answer["items"][:2]
    api.indices.refresh(index=index)


def count(api: Any, index: str) -> int:
    api.indices.refresh(index=index)
    return int(body(api.count(index=index))["count"])


def plain_reindex(api: Any, run: str, documents: int) -> float:
    source, target = f"bench-plain-{run}", f"bench-plain-{run}-new"
    api.indices.create(index=source, body=OLD)
    load(api, source, documents)
    started = time.monotonic()
    api.indices.create(index=target, body=NEW)
    # As a task, polled every 50 ms: waiting in the request, OpenSearch 3.8 answers with one
    # TASK_RESOURCE_USAGE header per batch, more than Python's http.client accepts (100).
    task = body(api.reindex(body={"source": {"index": source}, "dest": {"index": target}}, wait_for_completion=False))
    while not (answer := body(api.tasks.get(task_id=task["task"]))).get("completed"):
        time.sleep(0.05)
    api.indices.refresh(index=target)
    took = time.monotonic() - started
    assert not answer["response"].get("failures") and count(api, target) == documents, answer
    api.indices.delete(index=f"{source},{target}")
    return took


def ready_on(namespace: str, name: str, concrete: str) -> bool:
    obj = client.CustomObjectsApi().get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    status = obj.get("status") or {}
    ready = next((c for c in status.get("conditions", []) if c["type"] == "Ready"), None)
    return bool(
        ready
        and ready["status"] == "True"
        and status.get("observedGeneration") == obj["metadata"]["generation"]
        and status.get("concreteIndex") == concrete
        and "migration" not in status
    )


def wait(condition: Any, timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(interval)


class BlockWatch:
    """A writer through the name, one write every 10 ms: the longest run of write-block refusals."""

    def __init__(self, api: Any, name: str) -> None:
        self.api, self.name = api, name
        self.longest = 0.0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        blocked_since: float | None = None
        i = 0
        while not self.stopping.is_set():
            i += 1
            try:
                self.api.index(index=self.name, id=f"probe-{i % 100}", body={"value": i, "tag": "probe"})
                if blocked_since is not None:
                    self.longest = max(self.longest, time.monotonic() - blocked_since)
                    blocked_since = None
            except Exception as error:
                if "cluster_block_exception" not in str(error):
                    raise
                blocked_since = blocked_since or time.monotonic()
            time.sleep(0.01)

    def stop(self) -> float:
        self.stopping.set()
        self.thread.join(timeout=30)
        return self.longest


def migration(api: Any, namespace: str, secret: str, run: str, documents: int) -> tuple[float, float]:
    name = f"bench-mig-{run}"
    objects = client.CustomObjectsApi()
    spec = {"clusterRef": {"name": secret}, **OLD, "migration": {"strategy": "Reindex", "deleteOldIndex": True}}
    manifest = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "ElasticsearchIndex", "metadata": {"name": name}}
    objects.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, {**manifest, "spec": spec})
    wait(lambda: ready_on(namespace, name, f"{name}-v1"), 60, f"{name} Ready")
    load(api, name, documents)
    watch = BlockWatch(api, name)
    time.sleep(0.5)
    started = time.monotonic()
    objects.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name, {"spec": NEW})
    wait(lambda: ready_on(namespace, name, f"{name}-v2"), 900, f"{name} migrated")
    took = time.monotonic() - started
    block = watch.stop()
    assert count(api, name) == documents + 100, count(api, name)  # the probe writes 100 documents
    objects.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    api.indices.delete(index=f"{name}-v2", ignore_unavailable=True)
    return took, block


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--documents", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--servers", default=",".join(SERVERS))
    args = parser.parse_args()

    config.load_kube_config()
    subprocess.run(["kubectl", "apply", "-k", str(REPO / "crds")], check=True, capture_output=True)
    run = uuid.uuid4().hex[:6]
    namespace = f"bench-migration-{run}"
    core = client.CoreV1Api()
    core.create_namespace({"metadata": {"name": namespace}})
    servers = {}
    for server in args.servers.split(","):
        variable, default = SERVERS[server]
        url = os.environ.get(variable, default)
        servers[server] = connect(server, url)
        encoded = base64.b64encode(url.encode()).decode()
        core.create_namespaced_secret(namespace, {"metadata": {"name": server}, "data": {"url": encoded}})
    log_path = REPO / "bench-results" / f"operator-migration-{run}.log"
    log_path.parent.mkdir(exist_ok=True)
    with log_path.open("wb") as log:
        operator = subprocess.Popen(
            [
                sys.executable, "-m", "controllers",
                "--namespace", namespace,
                "--controllers", "elasticsearch",
                "--resync-interval", "30s",
                "--metrics-port", "0",
                "--health-port", "0",
                "--log-level", "WARNING",
            ],
            cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    rows = []
    try:
        time.sleep(3)
        for server, api in servers.items():
            plain_times, migration_times, blocks = [], [], []
            for round_number in range(args.rounds):
                tag = f"{run}-{round_number}"
                plain_times.append(plain_reindex(api, tag, args.documents))
                say(f"{server}: plain _reindex of {args.documents} documents: {plain_times[-1]:.1f}s")
                took, block = migration(api, namespace, server, tag, args.documents)
                migration_times.append(took)
                blocks.append(block)
                say(f"{server}: migration: {took:.1f}s, writes blocked for at most {block:.2f}s")
            plain, migrated = statistics.median(plain_times), statistics.median(migration_times)
            rows.append((server, plain, migrated, migrated / plain, max(blocks)))
    finally:
        operator.terminate()
        operator.wait(timeout=30)
        core.delete_namespace(namespace)
    medians = f"median of {args.rounds}"
    print(f"| server | documents | plain `_reindex` ({medians}) | migration ({medians}) | ratio | write block |")
    print("|---|---|---|---|---|---|")
    for server, plain, migrated, ratio, block in rows:
        print(f"| {server} | {args.documents} | {plain:.1f} s | {migrated:.1f} s | {ratio:.2f} | {block:.2f} s |")


if __name__ == "__main__":
    main()
