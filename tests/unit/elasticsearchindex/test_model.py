"""The ElasticsearchIndex spec refuses what the servers would refuse, even if admission was bypassed."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from controllers.elasticsearchindex.model import (
    MAX_INDEX_NAME_BYTES,
    ElasticsearchIndexPolicy,
    ElasticsearchIndexSpec,
    index_name_of,
    index_name_refusal,
)
from controllers.elasticsearchindex.plan import DesiredIndex

FORBIDDEN = '\\/*?"<>|,#: '


@pytest.mark.parametrize(
    "name",
    [
        "orders",
        "a",
        "logs-2026.11.27",
        "orders_v2",
        "a+b",
        "a-",
        "a.",
        "9lives",
        "café",
        "日本語",
        "a" * 255,
        "é" * 127 + "a",  # 255 bytes in 128 characters
        "€" * 85,  # 255 bytes
        "😀" * 63 + "abc",  # 255 bytes
    ],
)
def test_valid_index_names_are_accepted(name: str) -> None:
    assert index_name_refusal(name) is None
    assert ElasticsearchIndexSpec(index_name=name).index_name == name


@pytest.mark.parametrize(
    "name",
    [
        ".",
        "..",
        ".hidden",
        ".security-7",
        "-orders",
        "_orders",
        "+orders",
        "Orders",
        "ordErs",
        *(f"a{char}b" for char in FORBIDDEN),
        *(f"{char}a" for char in FORBIDDEN),
    ],
)
def test_names_the_servers_refuse_are_refused(name: str) -> None:
    assert index_name_refusal(name) is not None
    with pytest.raises(ValidationError):
        ElasticsearchIndexSpec(index_name=name)


@pytest.mark.parametrize(
    "name",
    [
        "a" * 256,
        "é" * 128,  # 256 bytes in 128 characters
        "a" * 254 + "é",  # 256 bytes in 255 characters
        "€" * 86,  # 258 bytes in 86 characters
        "😀" * 64,  # 256 bytes in 64 characters
    ],
)
def test_names_over_255_utf8_bytes_are_refused_however_few_characters(name: str) -> None:
    assert len(name.encode()) > MAX_INDEX_NAME_BYTES
    assert index_name_refusal(name) == "index names are at most 255 bytes"
    with pytest.raises(ValidationError, match="at most 255 bytes"):
        ElasticsearchIndexSpec(index_name=name)


def test_an_empty_index_name_is_refused() -> None:
    with pytest.raises(ValidationError):
        ElasticsearchIndexSpec(index_name="")


@pytest.mark.parametrize("name", ["Éa", "aÄ", "straße-ΣΑΣ"])
def test_names_with_non_ascii_capitals_are_refused(name: str) -> None:
    assert index_name_refusal(name) is not None


def servers_refuse(name: str) -> bool:
    """The servers' rules (and the operator's no leading '.'), written out independently of the model."""
    return (
        name in ("", ".", "..")
        or len(name.encode()) > MAX_INDEX_NAME_BYTES
        or name != name.lower()
        or any(char in FORBIDDEN for char in name)
        or name[0] in "-_+."
    )


# Lowercase-able characters only where the model's A-Z rule and the servers' lowercase rule agree.
NAME_CHARACTERS = st.sampled_from(list("abcxyz019-_+.ABZ") + list(FORBIDDEN) + ["é", "€", "日", "😀"])


@given(st.text(NAME_CHARACTERS, max_size=8) | st.text(NAME_CHARACTERS, min_size=60, max_size=260))
@settings(max_examples=60)
def test_an_index_name_is_refused_exactly_when_the_servers_would(name: str) -> None:
    assert (index_name_refusal(name) is not None) == servers_refuse(name)
    try:
        ElasticsearchIndexSpec(index_name=name)
    except ValidationError:
        refused = True
    else:
        refused = False
    assert refused == servers_refuse(name)


@pytest.mark.parametrize(
    "written",
    [
        {"index": {"number_of_shards": 3}, "number_of_shards": 4},
        {"index.refresh_interval": "1s", "refresh_interval": "5s"},
        {"index": {"blocks": {"write": True}}, "index.blocks.write": False},
    ],
)
def test_a_setting_given_twice_with_different_values_is_refused(written: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="twice"):
        ElasticsearchIndexSpec(settings=written)


def test_a_setting_given_twice_with_the_same_stored_value_is_accepted() -> None:
    written = {
        "index": {"number_of_shards": 3},
        "number_of_shards": "3",
        "index.blocks.write": True,
        "blocks.write": "true",
    }
    assert ElasticsearchIndexSpec(settings=written).settings == written


def test_a_spec_is_read_as_kubernetes_writes_it() -> None:
    spec = ElasticsearchIndexSpec.model_validate(
        {
            "indexName": "orders",
            "settings": {"index": {"number_of_shards": 3}},
            "mappings": {"properties": {"title": {"type": "text"}}},
            "aliases": {"orders-read": {"is_write_index": True, "routing": "1"}},
            "migration": {"strategy": "Reindex", "deleteOldIndex": True},
        }
    )
    desired = DesiredIndex.from_spec("orders", spec)
    assert desired.settings == {"index.number_of_shards": "3"}
    assert desired.aliases == {"orders-read": {"is_write_index": True, "routing": "1"}}
    assert desired.migration


def test_an_alias_field_the_servers_do_not_know_is_refused() -> None:
    with pytest.raises(ValidationError):
        ElasticsearchIndexSpec.model_validate({"aliases": {"orders-read": {"isWriteIndex": True}}})


def test_the_index_name_is_the_spec_index_name_else_the_object_name() -> None:
    assert index_name_of({"metadata": {"name": "orders"}, "spec": {"indexName": "orders-2026"}}) == "orders-2026"
    assert index_name_of({"metadata": {"name": "orders"}, "spec": {}}) == "orders"
    assert index_name_of({"metadata": {"name": "orders"}}) == "orders"


@pytest.mark.parametrize(
    ("written", "refused"),
    [
        ({"number_of_shards": 3}, False),
        ({"index": {"number_of_shards": "4"}}, True),
        ({"index.number_of_replicas": 2}, True),
        ({"number_of_replicas": "1"}, False),
        ({}, False),
    ],
)
def test_the_tenancy_policy_reads_shards_and_replicas_however_they_are_spelt(
    written: dict[str, Any], refused: bool
) -> None:
    policy = ElasticsearchIndexPolicy(max_shards=3, max_replicas=1)
    refusal = policy.refusal("team-a", "orders", ElasticsearchIndexSpec(settings=written))
    assert (refusal is not None) == refused
    if refused:
        assert refusal is not None and "above the tenancy policy's limit" in refusal
