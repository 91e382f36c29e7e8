"""hack/stack: idempotent `up`, `status` and `env` that tell the truth, and search servers that answer."""

from __future__ import annotations

import json
import os
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from elasticsearch import ApiError, AsyncElasticsearch, BadRequestError, Elasticsearch
from elasticsearch import ConnectionError as ElasticsearchConnectionError
from opensearchpy import AsyncOpenSearch, OpenSearch
from opensearchpy import RequestError as OpenSearchRequestError

from tests.integration.helpers import REPO, run_stack, stack_command, unique, wait_for

SEARCH_SERVERS = ("elasticsearch", "opensearch", "elasticsearch7")


def running_pids() -> dict[str, str]:
    rows = [line.split() for line in run_stack("status").splitlines()[1:] if line.strip()]
    pids = {row[0]: row[2] for row in rows if len(row) >= 4 and row[1] in ("ready", "starting", "stopped")}
    assert {"etcd", "kube-apiserver", "kafka-1"} <= pids.keys(), pids
    return pids


def test_up_again_reuses_what_runs(broker_ids: list[int]) -> None:
    before = running_pids()
    started = time.monotonic()
    run_stack("up", "--kafka-brokers", str(len(broker_ids)))
    assert time.monotonic() - started < 30
    assert running_pids() == before


def test_up_restarts_a_server_that_runs_with_an_outdated_definition(broker_ids: list[int]) -> None:
    """As after pulling a change to the stack: the next `up` restarts that server and keeps the rest."""
    data = next(line.removeprefix("data: ") for line in run_stack("status").splitlines() if line.startswith("data: "))
    before = running_pids()
    (Path(data) / "pids" / "kube-controller-manager.definition").write_text("an older definition")

    progress = stack_command("up", "--kafka-brokers", str(len(broker_ids))).stderr

    assert "restarting kube-controller-manager" in progress
    after = running_pids()
    assert after["kube-controller-manager"] != before["kube-controller-manager"]
    assert {k: v for k, v in after.items() if k != "kube-controller-manager"} == {
        k: v for k, v in before.items() if k != "kube-controller-manager"
    }


def test_status_names_every_server_ready_and_the_log_folder() -> None:
    status = run_stack("status")
    for server in ("etcd", "kube-apiserver", "kube-controller-manager", "kafka-1", *SEARCH_SERVERS):
        assert any(line.split()[:2] == [server, "ready"] for line in status.splitlines()), status
    assert "logs: " in status


def test_env_exports_what_clients_need() -> None:
    lines = run_stack("env").splitlines()
    exports = dict(line.removeprefix("export ").split("=", 1) for line in lines)
    assert exports["KUBECONFIG"].endswith("kubeconfig")
    assert exports["KAFKA_BOOTSTRAP_SERVERS"].startswith("127.0.0.1:")
    assert exports["KAFKA_SECURE_BOOTSTRAP_SERVERS"].startswith("127.0.0.1:")
    assert exports["KAFKA_SECURE_CA_FILE"].endswith("ca.crt")
    assert exports["KAFKA_SASL_USERNAME"] and len(exports["KAFKA_SASL_PASSWORD"]) == 32
    # The user that ACLs confine to topics under a prefix (test_stack_acls.py).
    assert exports["KAFKA_TENANT_USERNAME"] not in ("", exports["KAFKA_SASL_USERNAME"])
    assert len(exports["KAFKA_TENANT_PASSWORD"]) == 32
    assert exports["KAFKA_TENANT_PASSWORD"] != exports["KAFKA_SASL_PASSWORD"]
    assert exports["KAFKA_TENANT_TOPIC_PREFIX"]
    for variable in ("ELASTICSEARCH_URL", "OPENSEARCH_URL", "ELASTICSEARCH7_URL"):
        assert exports[variable].startswith("http://127.0.0.1:"), variable
    # The secured search server's, whether it runs or not (test_search_tls.py starts it).
    assert exports["OPENSEARCH_SECURE_URL"].startswith("https://127.0.0.1:")
    assert exports["OPENSEARCH_SECURE_CA_FILE"] == exports["KAFKA_SECURE_CA_FILE"]  # the stack's one CA
    users = {exports["OPENSEARCH_SECURE_USERNAME"], exports["OPENSEARCH_SECURE_READER_USERNAME"]}
    passwords = {exports["OPENSEARCH_SECURE_PASSWORD"], exports["OPENSEARCH_SECURE_READER_PASSWORD"]}
    assert len(users) == 2 and "" not in users
    assert len(passwords) == 2 and all(len(password) == 32 for password in passwords)


# --- the search servers, through the clients the operator uses -----------------------------

VERSIONS = dict(
    line.split("=", 1)
    for line in (REPO / "hack" / "versions.env").read_text().splitlines()
    if line and not line.startswith("#")
)
# (URL variable from `hack/stack env`, stack server name, the version it must report)
ELASTICSEARCH_SERVERS = [
    ("ELASTICSEARCH_URL", "elasticsearch", VERSIONS["ELASTICSEARCH_VERSION"]),
    ("ELASTICSEARCH7_URL", "elasticsearch7", VERSIONS["ELASTICSEARCH7_VERSION"]),
]
INDEX_SETTINGS = {"number_of_shards": 1, "number_of_replicas": 0}
INDEX_MAPPINGS = {"properties": {"title": {"type": "text"}, "count": {"type": "integer"}}}


@pytest.mark.parametrize(("url_variable", "name", "version"), ELASTICSEARCH_SERVERS)
def test_elasticsearch_administers_indices_with_the_official_client(url_variable: str, name: str, version: str) -> None:
    """The 9.x client against 9.5 and 7.17: product check, and the index calls an operator makes."""
    es = Elasticsearch(os.environ[url_variable])
    index, alias = unique("stack-es"), unique("stack-alias")
    try:
        # The client's product check accepts the first 2xx response only if it
        # carries X-Elastic-Product; otherwise this raises UnsupportedProductError.
        created = es.indices.create(index=index, settings=INDEX_SETTINGS, mappings=INDEX_MAPPINGS, aliases={alias: {}})
        assert created.meta.headers["x-elastic-product"] == "Elasticsearch"
        assert es.info()["version"]["number"] == version
        assert es.ping()

        got = es.indices.get(index=index)[index]
        assert got["mappings"] == INDEX_MAPPINGS
        assert got["aliases"] == {alias: {}}
        assert got["settings"]["index"]["number_of_shards"] == "1"
        health = es.cluster.health(index=index, wait_for_status="yellow", timeout="30s")
        assert health["status"] in ("green", "yellow") and not health["timed_out"]

        es.indices.put_settings(index=index, settings={"index": {"refresh_interval": "5s"}})
        assert es.indices.get_settings(index=index)[index]["settings"]["index"]["refresh_interval"] == "5s"
        # Set by the stack on all three servers (Elasticsearch 8+'s default).
        with pytest.raises(BadRequestError, match="Wildcard expressions or all indices are not allowed"):
            es.indices.delete(index=f"{index}*")
    finally:
        es.indices.delete(index=index, ignore_unavailable=True)
        es.close()


def test_opensearch_administers_indices_with_its_official_client() -> None:
    client = OpenSearch(os.environ["OPENSEARCH_URL"])
    index, alias = unique("stack-os"), unique("stack-alias")
    try:
        assert client.info()["version"]["number"] == VERSIONS["OPENSEARCH_VERSION"]
        assert client.ping()
        client.indices.create(
            index=index, body={"settings": INDEX_SETTINGS, "mappings": INDEX_MAPPINGS, "aliases": {alias: {}}}
        )
        got = client.indices.get(index=index)[index]
        assert got["mappings"] == INDEX_MAPPINGS
        assert got["aliases"] == {alias: {}}
        # opensearch-py takes a `timeout` argument as its own HTTP timeout unless
        # request_timeout is given; only then does it reach the server.
        health = client.cluster.health(index=index, wait_for_status="yellow", timeout="30s", request_timeout=40)
        assert health["status"] in ("green", "yellow") and not health["timed_out"]

        client.indices.put_settings(index=index, body={"index": {"refresh_interval": "5s"}})
        assert client.indices.get_settings(index=index)[index]["settings"]["index"]["refresh_interval"] == "5s"
        with pytest.raises(OpenSearchRequestError, match="Wildcard expressions or all indices are not allowed"):
            client.indices.delete(index=f"{index}*")
    finally:
        client.indices.delete(index=index, ignore_unavailable=True)
        client.close()


def test_elasticsearch_9_root_endpoint_tells_the_nodes_own_facts() -> None:
    """GET / is the one endpoint the stack's launcher adds (rest-root is not published): it must not invent anything."""
    es = Elasticsearch(os.environ["ELASTICSEARCH_URL"])
    try:
        info = es.info()
        node = next(iter(es.nodes.info(node_id="_local", metric="_none")["nodes"].values()))
        state = es.cluster.state(metric="metadata")
        assert info["name"] == node["name"] == "elasticsearch"
        assert info["cluster_name"] == state["cluster_name"]
        assert info["cluster_uuid"] == state["metadata"]["cluster_uuid"]
        assert info["version"]["number"] == node["version"] == VERSIONS["ELASTICSEARCH_VERSION"]
        assert info["version"]["build_hash"] == node["build_hash"]
        assert info["version"]["build_flavor"] == node["build_flavor"]
        assert info["version"]["build_type"] == node["build_type"]
        assert info["version"]["build_snapshot"] is False
        assert info["version"]["lucene_version"].count(".") == 2
        assert info["tagline"] == "You Know, for Search"
        # The client asks for compatible-with=9 media types and gets them, as from any handler.
        assert info.meta.headers["content-type"] == "application/vnd.elasticsearch+json;compatible-with=9"
        with urllib.request.urlopen(os.environ["ELASTICSEARCH_URL"]) as plain:
            assert plain.headers["Content-Type"] == "application/json"
            assert plain.headers["X-Elastic-Product"] == "Elasticsearch"
            assert json.load(plain)["cluster_uuid"] == info["cluster_uuid"]
    finally:
        es.close()


def test_elasticsearch_9_has_no_reindex() -> None:
    """The reindex module is not on Maven Central for 8.x/9.x, and the stack writes no stand-in.

    POST /_reindex then matches the index routes (`/{index}`), which allow other methods: 405.
    """
    es = Elasticsearch(os.environ["ELASTICSEARCH_URL"])
    try:
        with pytest.raises(ApiError) as refused:
            es.reindex(source={"index": "a"}, dest={"index": "b"}, wait_for_completion=False)
        assert refused.value.meta.status == 405
    finally:
        es.close()


# The 9.x client marks the tasks API as a technical preview.
@pytest.mark.filterwarnings("ignore::elasticsearch.exceptions.GeneralAvailabilityWarning")
def test_elasticsearch_7_reindexes_as_a_task() -> None:
    es = Elasticsearch(os.environ["ELASTICSEARCH7_URL"])
    source, dest = unique("stack-src"), unique("stack-dest")
    try:
        es.indices.create(index=source, settings=INDEX_SETTINGS)
        es.indices.create(index=dest, settings=INDEX_SETTINGS)
        for n in range(3):
            es.index(index=source, id=str(n), document={"count": n})
        es.indices.refresh(index=source)

        task = es.reindex(source={"index": source}, dest={"index": dest}, wait_for_completion=False)["task"]
        done = wait_for(lambda: (status := es.tasks.get(task_id=task).body)["completed"] and status)
        assert done["response"]["created"] == 3 and not done["response"]["failures"]
        es.indices.refresh(index=dest)
        assert es.count(index=dest)["count"] == 3
    finally:
        es.indices.delete(index=f"{source},{dest}", ignore_unavailable=True)
        es.close()


def test_opensearch_reindexes_as_a_task() -> None:
    client = OpenSearch(os.environ["OPENSEARCH_URL"])
    source, dest = unique("stack-src"), unique("stack-dest")
    try:
        client.indices.create(index=source, body={"settings": INDEX_SETTINGS})
        client.indices.create(index=dest, body={"settings": INDEX_SETTINGS})
        for n in range(3):
            client.index(index=source, id=str(n), body={"count": n})
        client.indices.refresh(index=source)

        task = client.reindex(body={"source": {"index": source}, "dest": {"index": dest}}, wait_for_completion=False)
        done = wait_for(lambda: (status := client.tasks.get(task_id=task["task"]))["completed"] and status)
        assert done["response"]["created"] == 3 and not done["response"]["failures"]
        client.indices.refresh(index=dest)
        assert client.count(index=dest)["count"] == 3
    finally:
        client.indices.delete(index=f"{source},{dest}", ignore_unavailable=True)
        client.close()


@pytest.mark.parametrize("url_variable", ["ELASTICSEARCH_URL", "ELASTICSEARCH7_URL", "OPENSEARCH_URL"])
async def test_search_servers_answer_the_async_clients(url_variable: str) -> None:
    url = os.environ[url_variable]
    client = AsyncOpenSearch(url) if url_variable == "OPENSEARCH_URL" else AsyncElasticsearch(url)
    try:
        assert (await client.info())["version"]["number"]
        assert (await client.cluster.health(wait_for_status="yellow"))["status"] in ("green", "yellow")
    finally:
        await client.close()


@pytest.fixture
def elasticsearch_started_afterwards() -> Iterator[None]:
    """Whatever happens in the test, Elasticsearch is running again when it ends."""
    yield
    run_stack("start", "elasticsearch")


def test_a_search_server_stops_and_starts_alone_and_keeps_its_data(elasticsearch_started_afterwards: None) -> None:
    es = Elasticsearch(os.environ["ELASTICSEARCH_URL"], request_timeout=5)
    index = unique("stack-kept")
    before = running_pids()
    try:
        es.indices.create(index=index, settings=INDEX_SETTINGS, mappings=INDEX_MAPPINGS)
        es.index(index=index, id="1", document={"title": "kept"}, refresh=True)

        run_stack("stop", "elasticsearch")
        status = run_stack("status")
        assert any(line.split()[:2] == ["elasticsearch", "stopped"] for line in status.splitlines()), status
        with pytest.raises(ElasticsearchConnectionError):
            es.info()
        run_stack("start", "elasticsearch")

        after = running_pids()
        assert after["elasticsearch"] != before["elasticsearch"]
        assert {k: v for k, v in after.items() if k != "elasticsearch"} == {
            k: v for k, v in before.items() if k != "elasticsearch"
        }
        assert es.indices.get(index=index)[index]["mappings"] == INDEX_MAPPINGS
        es.cluster.health(index=index, wait_for_status="yellow", timeout="30s")
        assert es.get(index=index, id="1")["_source"] == {"title": "kept"}
    finally:
        es.indices.delete(index=index, ignore_unavailable=True)
        es.close()
