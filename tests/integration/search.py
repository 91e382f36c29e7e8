"""What the ElasticsearchIndex tests share: the real search servers, manifests and direct reads."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import elasticsearch
import opensearchpy
import pytest

from tests.integration.helpers import GROUP, VERSION, create_secret

PLURAL = "elasticsearchindices"
# Every search server the stack runs, by the env variable `hack/stack env` sets for it.
SERVERS = {"elasticsearch": "ELASTICSEARCH_URL", "opensearch": "OPENSEARCH_URL"}
WITH_REINDEX = {"opensearch": "OPENSEARCH_URL", "elasticsearch7": "ELASTICSEARCH7_URL"}


@dataclass(frozen=True)
class SearchServer:
    name: str
    url: str
    api: Any  # elasticsearch.Elasticsearch or opensearchpy.OpenSearch

    def index(self, name: str) -> dict[str, Any] | None:
        """The concrete index (or an alias's only index) as the server has it, settings flat; None if absent."""
        got = self.api.indices.get(index=name, flat_settings=True, ignore_unavailable=True, allow_no_indices=True)
        body = dict(got.body if hasattr(got, "body") else got)
        if not body:
            return None
        assert len(body) == 1, f"{name} resolves to {sorted(body)}"
        concrete, details = next(iter(body.items()))
        return {"name": concrete, **details}

    def documents(self, name: str) -> int:
        self.api.indices.refresh(index=name)
        counted = self.api.count(index=name)
        return int(counted["count"])


def connect(name: str, url: str) -> SearchServer:
    if name.startswith("opensearch"):
        return SearchServer(name, url, opensearchpy.OpenSearch(hosts=[url], timeout=30))
    return SearchServer(name, url, elasticsearch.Elasticsearch(hosts=[url], request_timeout=30))


def server_fixture(servers: dict[str, str]) -> Any:
    @pytest.fixture(params=sorted(servers))
    def search_server(request: pytest.FixtureRequest) -> Iterator[SearchServer]:
        url = os.environ.get(servers[request.param])
        if not url:
            pytest.fail(f"{servers[request.param]} is not set: the stack does not run {request.param}")
        server = connect(request.param, url)
        yield server
        server.api.close()

    return search_server


def search_index(name: str, cluster_ref: str | None = "search", **spec: Any) -> dict[str, Any]:
    if cluster_ref is not None:
        spec.setdefault("clusterRef", {"name": cluster_ref})
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ElasticsearchIndex",
        "metadata": {"name": name},
        "spec": spec,
    }


def connection_secret(namespace: str, server: SearchServer, name: str = "search", **extra: str) -> None:
    create_secret(namespace, name, {"url": server.url, **extra})
