"""How many requests the search client spends observing a batch of indices (a resync's cost)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from controllers.core.connections import Connection
from controllers.elasticsearchindex.client import (
    MAX_NAMES_IN_URL,
    SearchClient,
    SearchRefused,
    _name_batches,
)
from controllers.elasticsearchindex.state import ClusterFacts


class FakeServer:
    """Answers the client's get-index and health calls from a set of indices; records each request."""

    def __init__(self, indices: list[str], aliases: dict[str, str] | None = None) -> None:
        self.indices = indices
        self.aliases = aliases or {}  # alias -> index
        self.requests: list[tuple[str, str]] = []  # (api, index argument)
        self.refuse_wildcards = False

    def _details(self, name: str) -> dict[str, Any]:
        return {
            "settings": {"index.uuid": f"uuid-{name}", "index.number_of_shards": "1"},
            "mappings": {},
            "aliases": {alias: {} for alias, index in self.aliases.items() if index == name},
        }

    async def call(self, method: str, *path: str, **arguments: Any) -> Any:
        api = ".".join((*path, method))
        index = arguments.get("index", "")
        self.requests.append((api, index))
        assert len(quote(index, safe=",*")) <= MAX_NAMES_IN_URL + 10, "a request line the servers refuse"
        if index == "*" and self.refuse_wildcards:
            raise SearchRefused(403, "security_exception", "no permissions for [indices:admin/get]")
        if index in ("", "*"):
            asked = set(self.indices)
        else:
            asked = {self.aliases.get(name, name) for name in index.split(",")} & set(self.indices)
        if api == "indices.get":
            return {name: self._details(name) for name in sorted(asked)}
        assert api == "cluster.health"
        return {"indices": {name: {"status": "green"} for name in sorted(asked)}}


@pytest.fixture
def server() -> FakeServer:
    return FakeServer([])


def client_for(server: FakeServer) -> SearchClient:
    client = SearchClient(Connection("default", {"url": "http://search:9200"}, frozenset()), linger=0.0)
    client._facts = ClusterFacts(uuid="c1", distribution="elasticsearch", version="9.5.3")
    client._call = server.call  # type: ignore[method-assign]
    return client


def names(count: int, length: int) -> list[str]:
    return [f"{i:0{length}d}" for i in range(count)]


def counted(server: FakeServer) -> dict[str, int]:
    counts: dict[str, int] = {}
    for api, _ in server.requests:
        counts[api] = counts.get(api, 0) + 1
    return counts


def test_names_are_batched_by_their_length_in_the_url_not_in_characters() -> None:
    short = names(200, 10)
    assert len(_name_batches(short)) == 1  # 200 x 11 characters: one request line
    assert len(_name_batches(names(200, 24))) == 2
    # 'é' is two bytes, each percent-encoded: 6 characters in the path, which the servers count.
    accented = [f"{i:03d}-" + "é" * 60 for i in range(40)]
    batches = _name_batches(accented)
    assert len(batches) > 1
    for batch in batches:
        assert len(quote(",".join(batch), safe=",*")) <= MAX_NAMES_IN_URL
    assert [name for batch in batches for name in batch] == accented


async def test_a_batch_in_one_request_line_costs_one_get_and_one_health(server: FakeServer) -> None:
    wanted = names(200, 10)
    server.indices = [*wanted, "unmanaged"]
    client = client_for(server)

    observed = await client._observe_batch(wanted)

    assert counted(server) == {"indices.get": 1, "cluster.health": 1}
    assert all(observed[name].index.name == name for name in wanted)  # type: ignore[union-attr]


async def test_a_batch_over_the_url_budget_reads_every_index_in_two_requests(server: FakeServer) -> None:
    wanted = names(200, 24)
    server.indices = [*wanted[:-1], "unmanaged", "concrete-v1"]
    server.aliases = {wanted[-1]: "concrete-v1"}  # the last name is an alias over another index
    client = client_for(server)
    await client.index_names()  # the unmanaged-index report lists the cluster every resync
    server.requests.clear()

    observed = await client._observe_batch([*wanted, "absent"])

    assert server.requests == [("indices.get", "*"), ("cluster.health", "")]
    assert {name: observed[name].index.name for name in wanted[:-1]} == {n: n for n in wanted[:-1]}  # type: ignore[union-attr]
    behind = observed[wanted[-1]]
    assert behind.name_is_alias and behind.index is not None and behind.index.name == "concrete-v1"
    assert observed["absent"].index is None
    assert "unmanaged" not in observed


async def test_before_the_cluster_was_listed_a_long_batch_is_read_by_name(server: FakeServer) -> None:
    wanted = names(200, 24)
    server.indices = list(wanted)
    client = client_for(server)

    observed = await client._observe_batch(wanted)

    assert counted(server) == {"indices.get": 2, "cluster.health": 2}
    assert all(observed[name].index is not None for name in wanted)


async def test_in_a_cluster_of_many_more_indices_a_long_batch_is_read_by_name(server: FakeServer) -> None:
    wanted = names(200, 24)
    server.indices = [*wanted, *(f"logs-{day:04d}" for day in range(1000))]
    client = client_for(server)
    await client.index_names()
    server.requests.clear()

    await client._observe_batch(wanted)

    assert counted(server) == {"indices.get": 2, "cluster.health": 2}
    assert ("indices.get", "*") not in server.requests


async def test_a_refused_wildcard_falls_back_to_names_for_good(server: FakeServer) -> None:
    wanted = names(200, 24)
    server.indices = list(wanted)
    client = client_for(server)
    await client.index_names()
    server.refuse_wildcards = True
    server.requests.clear()

    observed = await client._observe_batch(wanted)
    await client._observe_batch(wanted)

    assert all(observed[name].index is not None for name in wanted)
    assert server.requests.count(("indices.get", "*")) == 1  # tried once, never again
    assert counted(server) == {"indices.get": 5, "cluster.health": 4}
