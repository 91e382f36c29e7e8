"""Settings and mappings in the form the servers store them: every accepted spelling, one stored form. No servers."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controllers.elasticsearchindex.model import ElasticsearchIndexSpec
from controllers.elasticsearchindex.normalise import (
    FIELD_PARAMETER_DEFAULTS,
    SettingsInvalid,
    alias_definition,
    flat_settings,
    is_server_owned_setting,
    is_static_setting,
    mapping_entries,
    mapping_fields,
    parameter_equal,
    scalar,
    setting_value,
)
from controllers.elasticsearchindex.plan import DesiredIndex, IndexPlan, Managed, managed_after, plan_index
from controllers.elasticsearchindex.state import ClusterFacts, Observation, ObservedIndex

# Leaf settings (path below 'index.', no path a prefix of another) and the values each may take.
SETTING_VALUES: dict[tuple[str, ...], st.SearchStrategy[Any]] = {
    ("number_of_shards",): st.integers(1, 64),
    ("number_of_replicas",): st.integers(0, 5),
    ("refresh_interval",): st.sampled_from(["1s", "30s", "-1"]),
    ("codec",): st.sampled_from(["default", "best_compression"]),
    ("max_result_window",): st.integers(1, 10**6),
    ("blocks", "write"): st.booleans(),
    ("blocks", "read_only_allow_delete"): st.booleans(),
    ("routing", "allocation", "include", "_tier_preference"): st.sampled_from(["data_hot", "data_hot,data_warm"]),
    ("routing", "allocation", "total_shards_per_node"): st.integers(-1, 8),
    ("mapping", "total_fields", "limit"): st.integers(1000, 5000),
    ("search", "slowlog", "threshold", "query", "warn"): st.sampled_from(["10s", "500ms"]),
    ("analysis", "analyzer", "folded", "tokenizer"): st.sampled_from(["standard", "whitespace"]),
    ("sort", "field"): st.lists(st.sampled_from(["date", "user", "id"]), min_size=1, max_size=3, unique=True),
}
# What the servers add to every index themselves.
SERVER_SETTINGS = {
    "index.uuid": "Xb3c1qZUQ2GyT1mD8u0n0g",
    "index.creation_date": "1764201600000",
    "index.provided_name": "orders",
    "index.version.created": "8512000",
}
CLUSTER = ClusterFacts(uuid="cluster-1", distribution="elasticsearch", version="8.15.0")


def stored(value: Any) -> Any:
    """The value as the servers keep it, written out here independently of setting_value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return [stored(item) for item in value]
    return str(value)


@st.composite
def value_spellings(draw: st.DrawFn, value: Any) -> Any:
    """A value as a spec may write it: 3 or '3', true or 'true', a list as is."""
    if isinstance(value, bool | int):
        return draw(st.sampled_from([value, stored(value)]))
    return value


@st.composite
def key_spellings(draw: st.DrawFn, path: tuple[str, ...]) -> list[str]:
    """The keys a setting may be written under, outermost first: with or without 'index.', each dot a
    dot in one key or a level of nesting ('index': {'routing.allocation': {...}})."""
    segments = ["index", *path] if draw(st.booleans()) else list(path)
    cuts = [draw(st.booleans()) for _ in segments[1:]]
    keys, current = [], segments[0]
    for segment, cut in zip(segments[1:], cuts, strict=True):
        if cut:
            keys.append(current)
            current = segment
        else:
            current = f"{current}.{segment}"
    return [*keys, current]


def put(tree: dict[str, Any], keys: list[str], value: Any) -> None:
    for key in keys[:-1]:
        tree = tree.setdefault(key, {})
    tree[keys[-1]] = value


@st.composite
def spelt_settings(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """(settings as a spec may write them, the same settings as the servers store them)."""
    paths = draw(st.lists(st.sampled_from(sorted(SETTING_VALUES)), unique=True, max_size=len(SETTING_VALUES)))
    written: dict[str, Any] = {}
    expected: dict[str, Any] = {}
    for path in paths:
        value = draw(SETTING_VALUES[path])
        put(written, draw(key_spellings(path)), draw(value_spellings(value)))
        expected["index." + ".".join(path)] = stored(value)
    return written, expected


@pytest.mark.parametrize(
    "written",
    [
        {"index": {"number_of_shards": 3}},
        {"number_of_shards": 3},
        {"index.number_of_shards": 3},
        {"number_of_shards": "3"},
        {"index.number_of_shards": "3"},
        {"index": {"number_of_shards": "3"}},
        {"index.number_of_shards": 3, "number_of_shards": "3", "index": {"number_of_shards": 3}},
    ],
)
def test_every_spelling_of_a_setting_is_stored_flat_prefixed_and_as_a_string(written: dict[str, Any]) -> None:
    assert flat_settings(written) == {"index.number_of_shards": "3"}


def test_mixed_nesting_is_flattened_below_a_flat_key() -> None:
    written = {
        "index.routing": {"allocation": {"include": {"_tier_preference": "data_hot"}, "total_shards_per_node": 2}}
    }
    assert flat_settings(written) == {
        "index.routing.allocation.include._tier_preference": "data_hot",
        "index.routing.allocation.total_shards_per_node": "2",
    }


@pytest.mark.parametrize(
    ("value", "kept"),
    [(3, "3"), ("3", "3"), (True, "true"), (False, "false"), ("1s", "1s"), (0.5, "0.5"), (None, None)],
)
def test_setting_values_are_stored_as_strings(value: Any, kept: Any) -> None:
    assert setting_value(value) == kept


def test_a_list_setting_is_stored_as_a_list_of_strings() -> None:
    assert flat_settings({"sort.field": ["date", "id"], "sort": {"order": ("desc", True)}}) == {
        "index.sort.field": ["date", "id"],
        "index.sort.order": ["desc", "true"],
    }


@given(spelt_settings())
@settings(max_examples=25)
def test_settings_spelt_any_accepted_way_normalise_to_the_stored_form(
    case: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    written, expected = case
    assert flat_settings(written) == expected
    assert flat_settings(expected) == expected  # the stored form is its own normal form


@given(spelt_settings())
@settings(max_examples=25)
def test_a_spec_matches_an_index_holding_its_settings_as_stored(case: tuple[dict[str, Any], dict[str, Any]]) -> None:
    written, expected = case
    spec = ElasticsearchIndexSpec(settings=written)
    desired = DesiredIndex.from_spec("orders", spec)
    index = ObservedIndex("orders", "uuid-1", {**SERVER_SETTINGS, **expected}, {}, {})
    observation = Observation("orders", CLUSTER, (index,))
    for managed in (Managed(), managed_after(desired)):
        assert plan_index(desired, observation, managed) == IndexPlan()


@pytest.mark.parametrize(
    "written",
    [
        {"index": {"number_of_shards": 3}, "number_of_shards": 4},
        {"index.number_of_shards": 3, "number_of_shards": "4"},
        {"index.blocks": {"write": True}, "blocks.write": "false"},
        {
            "index.routing": {"allocation.total_shards_per_node": 1},
            "routing": {"allocation": {"total_shards_per_node": 2}},
        },
    ],
)
def test_a_key_given_twice_with_different_values_is_refused(written: dict[str, Any]) -> None:
    with pytest.raises(SettingsInvalid, match="twice"):
        flat_settings(written)


@given(st.sampled_from(sorted(SETTING_VALUES)), st.data())
@settings(max_examples=25)
def test_any_two_spellings_of_a_key_with_different_values_are_refused(
    path: tuple[str, ...], data: st.DataObject
) -> None:
    first = data.draw(SETTING_VALUES[path])
    second = data.draw(SETTING_VALUES[path].filter(lambda v: stored(v) != stored(first)))
    written: dict[str, Any] = {}
    put(written, data.draw(key_spellings(path)), data.draw(value_spellings(first)))
    keys = data.draw(key_spellings(path).filter(lambda k: k[0] not in written))  # a second spelling, not overwriting
    put(written, keys, data.draw(value_spellings(second)))
    with pytest.raises(SettingsInvalid, match="twice"):
        flat_settings(written)


@pytest.mark.parametrize(
    "key",
    [
        "index.number_of_shards",
        "index.number_of_routing_shards",
        "index.codec",
        "index.analysis.analyzer.folded.tokenizer",
        "index.analysis.filter.synonyms.synonyms",
        "index.sort.field",
        "index.similarity.default.type",
        "index.store.type",
    ],
)
def test_settings_fixed_at_creation_are_static(key: str) -> None:
    assert is_static_setting(key)
    assert not is_server_owned_setting(key)


@pytest.mark.parametrize(
    "key",
    ["index.number_of_replicas", "index.refresh_interval", "index.blocks.write", "index.sorting", "index.codecs"],
)
def test_other_settings_are_dynamic(key: str) -> None:
    assert not is_static_setting(key)
    assert not is_server_owned_setting(key)


@pytest.mark.parametrize(
    "key",
    [
        "index.uuid",
        "index.creation_date",
        "index.provided_name",
        "index.version.created",
        "index.version.upgraded",
        "index.history.uuid",
    ],
)
def test_settings_the_servers_set_themselves_are_server_owned(key: str) -> None:
    assert is_server_owned_setting(key)


@pytest.mark.parametrize(
    ("value", "spelt"),
    [(256, "256"), ("256", "256"), (True, "true"), (False, "false"), ("keyword", "keyword")],
)
def test_a_mapping_parameter_has_one_spelling(value: Any, spelt: str) -> None:
    assert scalar(value) == spelt


def test_structured_mapping_parameters_compare_regardless_of_key_order() -> None:
    assert scalar({"b": 1, "a": [1, 2]}) == scalar({"a": [1, 2], "b": 1})
    assert scalar({"a": 1}) != scalar({"a": 2})


def test_mapping_fields_are_listed_by_path_with_their_own_parameters() -> None:
    mapping = {
        "dynamic": "strict",
        "properties": {
            "title": {"type": "text", "fields": {"raw": {"type": "keyword", "ignore_above": 256}}},
            "address": {"properties": {"city": {"type": "keyword", "index": True}}},
            "tags": {"type": "nested", "properties": {"name": {"type": "keyword"}}},
        },
    }
    assert mapping_fields(mapping) == {
        "title": {"type": "text"},
        "title.raw": {"type": "keyword", "ignore_above": "256"},
        "address": {"type": "object"},
        "address.city": {"type": "keyword", "index": "true"},
        "tags": {"type": "nested"},
        "tags.name": {"type": "keyword"},
    }


def test_an_object_field_reads_the_same_with_or_without_its_type() -> None:
    implicit = {"properties": {"address": {"properties": {"city": {"type": "keyword"}}}}}
    explicit = {"properties": {"address": {"type": "object", "properties": {"city": {"type": "keyword"}}}}}
    assert mapping_fields(implicit) == mapping_fields(explicit)


def test_mapping_entries_are_the_top_level_entries_other_than_fields() -> None:
    mapping = {"dynamic": False, "_source": {"excludes": ["secret"]}, "properties": {"a": {"type": "keyword"}}}
    assert mapping_entries(mapping) == {"dynamic": "false", "_source": '{"excludes":["secret"]}'}


@pytest.mark.parametrize(("name", "value"), sorted(FIELD_PARAMETER_DEFAULTS.items()))
def test_a_parameter_the_server_leaves_out_equals_its_default_only(name: str, value: str) -> None:
    assert parameter_equal(name, value, None, FIELD_PARAMETER_DEFAULTS)
    assert not parameter_equal(name, value + "x", None, FIELD_PARAMETER_DEFAULTS)
    assert parameter_equal(name, value, value, FIELD_PARAMETER_DEFAULTS)


def test_a_parameter_without_a_default_is_unequal_when_left_out() -> None:
    assert not parameter_equal("analyzer", "standard", None, FIELD_PARAMETER_DEFAULTS)


def test_an_alias_is_shown_with_routing_split_and_unset_parts_left_out() -> None:
    declared = {"routing": "1", "filter": {"term": {"user": "a"}}, "is_write_index": None}
    assert alias_definition(declared) == alias_definition(
        {"index_routing": "1", "search_routing": "1", "filter": {"term": {"user": "a"}}}
    )
    assert alias_definition({"is_write_index": True}) == {"is_write_index": "true"}
    assert alias_definition({}) == {}
