"""plan_index: desired vs observed index -> changes made in place, or why a migration is needed. No servers."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controllers.core.model import DriftItem
from controllers.elasticsearchindex.model import ElasticsearchIndexSpec, MigrationSpec, MigrationStrategy
from controllers.elasticsearchindex.plan import (
    AMBIGUOUS_ALIAS,
    REQUIRES_MIGRATION,
    Change,
    CreateIndex,
    DesiredIndex,
    IndexPlan,
    Managed,
    PutMapping,
    UpdateAliases,
    UpdateSettings,
    managed_after,
    plan_index,
)
from controllers.elasticsearchindex.state import ClusterFacts, Observation, ObservedIndex

CLUSTER = ClusterFacts(uuid="cluster-1", distribution="elasticsearch", version="8.15.0")
# What the servers show of every index besides what the spec set.
SERVER_SETTINGS = {
    "index.uuid": "Xb3c1qZUQ2GyT1mD8u0n0g",
    "index.creation_date": "1764201600000",
    "index.provided_name": "orders",
    "index.version.created": "8512000",
}
# What the servers set on an index by default, which a spec may also set.
DEFAULT_SETTINGS = {"index.routing.allocation.include._tier_preference": "data_content"}


def desired(
    settings: dict[str, Any] | None = None,
    mappings: dict[str, Any] | None = None,
    aliases: dict[str, Any] | None = None,
    *,
    migration: bool = False,
) -> DesiredIndex:
    spec = ElasticsearchIndexSpec(
        settings=settings or {},
        mappings=mappings or {},
        aliases=aliases or {},
        migration=MigrationSpec(strategy=MigrationStrategy.REINDEX) if migration else None,
    )
    return DesiredIndex.from_spec("orders", spec)


def index(
    settings: dict[str, Any] | None = None,
    mappings: dict[str, Any] | None = None,
    aliases: dict[str, Any] | None = None,
    *,
    name: str = "orders",
) -> ObservedIndex:
    shown = {
        "index.number_of_shards": "1",
        "index.number_of_replicas": "1",
        **SERVER_SETTINGS,
        **DEFAULT_SETTINGS,
        **(settings or {}),
    }
    return ObservedIndex(name, f"uuid-{name}", shown, mappings or {}, aliases or {})


def observation(*indices: ObservedIndex, alias: bool = False) -> Observation:
    return Observation("orders", CLUSTER, indices, name_is_alias=alias)


def plan(want: DesiredIndex, *have: ObservedIndex, managed: Managed | None = None, alias: bool = False) -> IndexPlan:
    return plan_index(want, observation(*have, alias=alias), managed or Managed())


def props(**fields: Any) -> dict[str, Any]:
    return {"properties": fields}


def migration_message(result: IndexPlan) -> str:
    assert result.changes == ()
    assert result.blocker is not None and result.blocker.reason == REQUIRES_MIGRATION
    return result.blocker.message


# Creating


def test_a_missing_index_is_created_with_the_declared_settings_mappings_and_aliases() -> None:
    want = desired(
        {"index": {"number_of_shards": 3}, "number_of_replicas": "1"},
        props(title={"type": "text"}, sku={"type": "keyword"}),
        {"orders-read": {}},
    )
    result = plan(want)
    assert result.blocker is None
    assert result.changes == (
        CreateIndex(
            index="orders",
            settings={"index.number_of_shards": "3", "index.number_of_replicas": "1"},
            mappings=props(title={"type": "text"}, sku={"type": "keyword"}),
            aliases={"orders-read": {}},
        ),
    )
    (change,) = result.changes
    assert change.summary() == "created with 3 shard(s), 1 replica(s), 2 mapped field(s), 1 alias(es)"
    assert change.drift() == (DriftItem(field="index", desired="exists", actual="missing"),)


def test_with_migration_set_the_index_is_created_as_version_1_behind_its_name() -> None:
    result = plan(desired({"number_of_shards": 2}, aliases={"orders-read": {"routing": "1"}}, migration=True))
    (change,) = result.changes
    assert isinstance(change, CreateIndex)
    assert change.index == "orders-v1"
    assert change.settings == {"index.number_of_shards": "2"}
    assert change.aliases == {"orders-read": {"routing": "1"}, "orders": {"is_write_index": True}}


def test_an_index_that_matches_its_spec_needs_nothing() -> None:
    want = desired(
        {"number_of_shards": 1, "index.refresh_interval": "5s"},
        props(title={"type": "text"}),
        {"orders-read": {"is_write_index": False}},
    )
    have = index(
        {"index.refresh_interval": "5s"}, props(title={"type": "text"}), {"orders-read": {"is_write_index": False}}
    )
    assert plan(want, have) == IndexPlan()
    assert plan(want, have, managed=managed_after(want)) == IndexPlan()


# Settings


def test_a_changed_dynamic_setting_is_updated_in_place() -> None:
    result = plan(desired({"refresh_interval": "30s"}), index({"index.refresh_interval": "1s"}))
    assert result.changes == (
        UpdateSettings(
            index="orders", values={"index.refresh_interval": "30s"}, before={"index.refresh_interval": "1s"}
        ),
    )
    (change,) = result.changes
    assert change.summary() == "setting index.refresh_interval 1s -> 30s"
    assert change.drift() == (DriftItem(field="settings.index.refresh_interval", desired="30s", actual="1s"),)


def test_a_dynamic_setting_the_index_does_not_show_is_set() -> None:
    (change,) = plan(desired({"index": {"blocks": {"write": True}}}), index()).changes
    assert isinstance(change, UpdateSettings)
    assert change.values == {"index.blocks.write": "true"}
    assert change.summary() == "setting index.blocks.write unset -> true"


def test_a_managed_setting_removed_from_the_spec_is_reset_to_the_default() -> None:
    managed = Managed(settings=frozenset({"index.refresh_interval", "index.number_of_replicas"}))
    result = plan(desired({"number_of_replicas": 1}), index({"index.refresh_interval": "30s"}), managed=managed)
    assert result.changes == (
        UpdateSettings(
            index="orders", values={"index.refresh_interval": None}, before={"index.refresh_interval": "30s"}
        ),
    )
    (change,) = result.changes
    assert change.summary() == "setting index.refresh_interval 30s -> default"
    assert change.drift() == (DriftItem(field="settings.index.refresh_interval", desired="unset", actual="30s"),)


def test_a_managed_setting_removed_from_the_spec_and_gone_from_the_index_needs_nothing() -> None:
    assert plan(desired(), index(), managed=Managed(settings=frozenset({"index.refresh_interval"}))) == IndexPlan()


def test_settings_the_spec_never_set_are_left_alone() -> None:
    assert plan(desired(), index({"index.refresh_interval": "30s", "index.blocks.write": "true"})) == IndexPlan()


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("index.uuid", "another-uuid"),
        ("index.creation_date", "1"),
        ("creation_date", "1"),
        ("index.provided_name", "something-else"),
        ("index.version.created", "7170099"),
        ("version", {"created": "7170099"}),
    ],
)
def test_settings_the_servers_own_are_never_planned(key: str, value: Any) -> None:
    want = desired({key: value})
    assert plan(want, index()) == IndexPlan()
    managed = Managed(settings=frozenset(SERVER_SETTINGS))
    assert plan(desired(), index(), managed=managed) == IndexPlan()


@pytest.mark.parametrize(
    ("written", "shown", "named"),
    [
        ({"number_of_shards": 3}, {}, "settings.index.number_of_shards 1 -> 3"),
        (
            {"index.codec": "best_compression"},
            {"index.codec": "default"},
            "settings.index.codec default -> best_compression",
        ),
        ({"codec": "best_compression"}, {}, "settings.index.codec unset -> best_compression"),
        (
            {"analysis": {"analyzer": {"folded": {"tokenizer": "whitespace"}}}},
            {"index.analysis.analyzer.folded.tokenizer": "standard"},
            "settings.index.analysis.analyzer.folded.tokenizer standard -> whitespace",
        ),
        (
            {"index.analysis.filter.syn.synonyms": ["a, b"]},
            {"index.analysis.filter.syn.synonyms": ["a, c"]},
            'settings.index.analysis.filter.syn.synonyms ["a, c"] -> ["a, b"]',
        ),
    ],
)
def test_a_changed_static_setting_requires_a_migration_and_changes_nothing(
    written: dict[str, Any], shown: dict[str, Any], named: str
) -> None:
    result = plan(desired(written), index(shown))
    assert named in migration_message(result)
    assert len(result.migration_needed) == 1


def test_a_migration_blocks_the_in_place_changes_too_and_names_every_offending_field() -> None:
    want = desired(
        {"number_of_shards": 3, "codec": "best_compression", "refresh_interval": "30s"},
        props(price={"type": "long"}, sku={"type": "keyword"}),
        {"orders-read": {}},
    )
    have = index({"index.codec": "default"}, props(price={"type": "float"}))
    result = plan(want, have)
    message = migration_message(result)
    for named in (
        "settings.index.number_of_shards 1 -> 3",
        "settings.index.codec default -> best_compression",
        "mappings.price.type float -> long",
    ):
        assert named in message
    assert "refresh_interval" not in message and "sku" not in message and "orders-read" not in message
    assert {d.field for d in result.migration_needed} == {
        "settings.index.number_of_shards",
        "settings.index.codec",
        "mappings.price.type",
    }
    assert "spec.migration" in message


def test_a_managed_static_setting_removed_from_the_spec_is_left_as_it_is() -> None:
    managed = Managed(settings=frozenset({"index.number_of_shards", "index.codec"}))
    have = index({"index.number_of_shards": "3", "index.codec": "best_compression"})
    assert plan(desired(), have, managed=managed) == IndexPlan()


# Mappings

TITLE = {"type": "text", "fields": {"raw": {"type": "keyword", "ignore_above": 256}}}


def test_a_new_field_is_added_in_place() -> None:
    want = desired(mappings=props(title={"type": "text"}, sku={"type": "keyword"}))
    result = plan(want, index(mappings=props(title={"type": "text"})))
    assert result.changes == (
        PutMapping(
            index="orders",
            mappings=want.mappings,
            differences=(DriftItem(field="mappings.sku", desired="keyword", actual="missing"),),
        ),
    )
    (change,) = result.changes
    assert change.summary() == "mapping sku added (keyword)"


def test_a_new_field_in_an_object_is_added_in_place() -> None:
    want = desired(mappings=props(address=props(city={"type": "keyword"}, zip={"type": "keyword"})))
    (change,) = plan(want, index(mappings=props(address=props(city={"type": "keyword"})))).changes
    assert isinstance(change, PutMapping)
    assert [d.field for d in change.differences] == ["mappings.address.zip"]


def test_a_new_multi_field_is_added_in_place() -> None:
    (change,) = plan(desired(mappings=props(title=TITLE)), index(mappings=props(title={"type": "text"}))).changes
    assert isinstance(change, PutMapping)
    assert change.differences == (DriftItem(field="mappings.title.raw", desired="keyword", actual="missing"),)


def test_a_changed_type_requires_a_migration() -> None:
    result = plan(desired(mappings=props(price={"type": "long"})), index(mappings=props(price={"type": "float"})))
    assert "mappings.price.type float -> long" in migration_message(result)
    assert result.migration_needed == (DriftItem(field="mappings.price.type", desired="long", actual="float"),)


def test_a_changed_fixed_parameter_requires_a_migration() -> None:
    want = desired(mappings=props(title={"type": "text", "analyzer": "english"}))
    result = plan(want, index(mappings=props(title={"type": "text", "analyzer": "standard"})))
    assert "mappings.title.analyzer standard -> english" in migration_message(result)


def test_a_changed_multi_field_type_requires_a_migration() -> None:
    want = desired(mappings=props(title={"type": "text", "fields": {"raw": {"type": "wildcard"}}}))
    result = plan(want, index(mappings=props(title=TITLE)))
    assert "mappings.title.raw.type keyword -> wildcard" in migration_message(result)


def test_an_object_declared_where_the_index_has_a_nested_field_requires_a_migration() -> None:
    want = desired(mappings=props(lines=props(sku={"type": "keyword"})))
    result = plan(want, index(mappings=props(lines={"type": "nested", **props(sku={"type": "keyword"})})))
    assert "mappings.lines.type nested -> object" in migration_message(result)


def test_a_removed_managed_field_still_on_the_index_requires_a_migration() -> None:
    have = index(mappings=props(title=TITLE, legacy={"type": "keyword"}))
    managed = Managed(fields=frozenset({"title", "title.raw", "legacy"}))
    result = plan(desired(mappings=props(title={"type": "text"})), have, managed=managed)
    message = migration_message(result)
    assert "mappings.legacy keyword -> removed" in message
    assert "mappings.title.raw keyword -> removed" in message


def test_a_removed_managed_field_not_on_the_index_needs_nothing() -> None:
    have = index(mappings=props(title={"type": "text"}))
    managed = Managed(fields=frozenset({"title", "legacy"}))
    assert plan(desired(mappings=props(title={"type": "text"})), have, managed=managed) == IndexPlan()


def test_fields_added_by_documents_are_left_alone() -> None:
    dynamic = {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}}
    have = index(mappings=props(title={"type": "text"}, note=dynamic, address=props(city={"type": "keyword"})))
    want = desired(mappings=props(title={"type": "text"}))
    assert plan(want, have) == IndexPlan()
    assert plan(want, have, managed=managed_after(want)) == IndexPlan()


@pytest.mark.parametrize(
    ("declared", "shown"),
    [
        ({"type": "keyword", "index": True, "doc_values": True}, {"type": "keyword"}),
        ({"type": "keyword", "store": False, "eager_global_ordinals": False}, {"type": "keyword"}),
        ({"type": "text", "norms": True, "index_options": "positions"}, {"type": "text"}),
        ({"type": "long", "coerce": True, "ignore_malformed": False}, {"type": "long"}),
        ({"type": "keyword", "index": "true"}, {"type": "keyword"}),
        ({"properties": {"a": {"type": "keyword"}}, "enabled": True, "dynamic": True}, props(a={"type": "keyword"})),
    ],
)
def test_declared_defaults_the_server_leaves_out_need_nothing(declared: dict[str, Any], shown: dict[str, Any]) -> None:
    assert plan(desired(mappings=props(field=declared)), index(mappings=props(field=shown))) == IndexPlan()


def test_a_declared_non_default_the_server_does_not_show_requires_a_migration() -> None:
    result = plan(
        desired(mappings=props(tag={"type": "keyword", "doc_values": False})),
        index(mappings=props(tag={"type": "keyword"})),
    )
    assert "mappings.tag.doc_values unset -> false" in migration_message(result)


@pytest.mark.parametrize("declared", [{"norms": False}, {"index_options": "docs"}])
def test_a_keyword_fields_own_defaults_the_server_leaves_out_need_nothing(declared: dict[str, Any]) -> None:
    want = desired(mappings=props(tag={"type": "keyword", **declared}))
    assert plan(want, index(mappings=props(tag={"type": "keyword"}))) == IndexPlan()


def test_a_whole_number_declared_for_a_floating_point_parameter_matches_how_the_server_shows_it() -> None:
    want = desired(mappings=props(price={"type": "scaled_float", "scaling_factor": 100}))
    have = index(mappings=props(price={"type": "scaled_float", "scaling_factor": 100.0}))
    assert plan(want, have) == IndexPlan()


def test_a_changed_ignore_above_is_updated_in_place() -> None:
    want = desired(mappings=props(tag={"type": "keyword", "ignore_above": 512}))
    (change,) = plan(want, index(mappings=props(tag={"type": "keyword", "ignore_above": 256}))).changes
    assert isinstance(change, PutMapping)
    assert change.differences == (DriftItem(field="mappings.tag.ignore_above", desired="512", actual="256"),)
    assert change.summary() == "mapping tag.ignore_above 256 -> 512"


def test_an_ignore_above_written_as_a_string_matches_the_number_shown() -> None:
    want = desired(mappings=props(tag={"type": "keyword", "ignore_above": "256"}))
    assert plan(want, index(mappings=props(tag={"type": "keyword", "ignore_above": 256}))) == IndexPlan()


@pytest.mark.parametrize(
    "declared", [props(city={"type": "keyword"}), {"type": "object", **props(city={"type": "keyword"})}]
)
def test_an_object_field_compares_to_the_servers_object_shown_without_a_type(declared: dict[str, Any]) -> None:
    have = index(mappings=props(address=props(city={"type": "keyword"})))
    assert plan(desired(mappings=props(address=declared)), have) == IndexPlan()


def test_a_changed_dynamic_on_an_object_is_updated_in_place() -> None:
    want = desired(mappings=props(address={"dynamic": "strict", **props(city={"type": "keyword"})}))
    (change,) = plan(want, index(mappings=props(address=props(city={"type": "keyword"})))).changes
    assert isinstance(change, PutMapping)
    assert change.differences == (DriftItem(field="mappings.address.dynamic", desired="strict", actual="unset"),)


def test_top_level_mapping_entries_the_servers_change_in_place_are_put() -> None:
    want = desired(mappings={"dynamic": "strict", "_meta": {"owner": "team-a"}, **props(a={"type": "keyword"})})
    have = index(mappings={"dynamic": "true", "_meta": {"owner": "team-b"}, **props(a={"type": "keyword"})})
    (change,) = plan(want, have).changes
    assert isinstance(change, PutMapping)
    assert [d.field for d in change.differences] == ["mappings._meta", "mappings.dynamic"]


def test_a_top_level_entry_left_at_its_default_needs_nothing() -> None:
    assert plan(desired(mappings={"dynamic": True, "date_detection": True}), index()) == IndexPlan()


def test_a_changed_source_entry_requires_a_migration() -> None:
    want = desired(mappings={"_source": {"enabled": False}})
    result = plan(want, index(mappings={"_source": {"enabled": True}}))
    assert 'mappings._source {"enabled":true} -> {"enabled":false}' in migration_message(result)


# Aliases


def test_a_declared_alias_missing_from_the_index_is_added() -> None:
    result = plan(desired(aliases={"orders-read": {}}), index(aliases={"unmanaged": {}}))
    assert result.changes == (
        UpdateAliases(index="orders", add={"orders-read": {}}, remove=(), before={"unmanaged": {}}),
    )
    (change,) = result.changes
    assert change.summary() == "alias orders-read added"
    assert change.drift() == (DriftItem(field="aliases.orders-read", desired="{}", actual="missing"),)


@pytest.mark.parametrize(
    ("declared", "shown"),
    [
        ({"filter": {"term": {"user": "a"}}}, {"filter": {"term": {"user": "b"}}}),
        ({"filter": {"term": {"user": "a"}}}, {}),
        ({"routing": "1"}, {"index_routing": "2", "search_routing": "2"}),
        ({"routing": "1"}, {"index_routing": "1"}),
        ({"index_routing": "1"}, {}),
        ({"search_routing": "1,2"}, {"search_routing": "1"}),
        ({"is_write_index": True}, {"is_write_index": False}),
        ({"is_write_index": True}, {}),
        ({}, {"is_write_index": True}),
        ({"is_hidden": True}, {}),
    ],
)
def test_a_changed_alias_is_updated(declared: dict[str, Any], shown: dict[str, Any]) -> None:
    result = plan(desired(aliases={"orders-read": declared}), index(aliases={"orders-read": shown}))
    assert result.changes == (
        UpdateAliases(index="orders", add={"orders-read": declared}, remove=(), before={"orders-read": shown}),
    )
    (change,) = result.changes
    assert change.summary() == "alias orders-read changed"


def test_an_alias_drift_shows_desired_and_actual_in_the_same_form() -> None:
    declared = {"filter": {"term": {"user": "a"}}, "is_write_index": True}
    shown = {"filter": {"term": {"user": "a"}}, "is_write_index": False}
    (change,) = plan(desired(aliases={"orders-read": declared}), index(aliases={"orders-read": shown})).changes
    assert change.drift() == (
        DriftItem(
            field="aliases.orders-read",
            desired='{"filter": {"term": {"user": "a"}}, "is_write_index": true}',
            actual='{"filter": {"term": {"user": "a"}}, "is_write_index": false}',
        ),
    )


def test_a_managed_alias_no_longer_declared_is_removed() -> None:
    have = index(aliases={"orders-read": {}, "orders-old": {}, "unmanaged": {}})
    managed = Managed(aliases=frozenset({"orders-read", "orders-old"}))
    result = plan(desired(aliases={"orders-read": {}}), have, managed=managed)
    assert result.changes == (UpdateAliases(index="orders", add={}, remove=("orders-old",), before=have.aliases),)
    (change,) = result.changes
    assert change.summary() == "alias orders-old removed"
    assert change.drift() == (DriftItem(field="aliases.orders-old", desired="absent", actual="{}"),)


def test_a_managed_alias_gone_from_the_index_needs_nothing() -> None:
    assert plan(desired(), index(), managed=Managed(aliases=frozenset({"orders-old"}))) == IndexPlan()


def test_declared_routing_matches_the_index_and_search_routing_the_server_shows() -> None:
    want = desired(aliases={"orders-read": {"routing": "1", "filter": {"term": {"user": "a"}}}})
    have = index(
        aliases={"orders-read": {"index_routing": "1", "search_routing": "1", "filter": {"term": {"user": "a"}}}}
    )
    assert plan(want, have) == IndexPlan()


def test_aliases_the_spec_never_declared_are_left_alone() -> None:
    have = index(aliases={"someone-elses": {"is_write_index": True}, "other": {"filter": {"match_all": {}}}})
    assert plan(
        desired(aliases={"orders-read": {}}), have, managed=Managed(aliases=frozenset({"orders-read"}))
    ) == IndexPlan(changes=(UpdateAliases(index="orders", add={"orders-read": {}}, remove=(), before=have.aliases),))
    assert plan(desired(), have) == IndexPlan()


def test_the_name_of_a_migrated_index_is_never_removed_as_an_alias() -> None:
    have = index(aliases={"orders": {"is_write_index": True}}, name="orders-v2")
    managed = Managed(aliases=frozenset({"orders"}))
    assert plan(desired(migration=True), have, managed=managed, alias=True) == IndexPlan()


# Alias over several indices


def test_an_alias_over_several_indices_without_a_write_index_is_ambiguous() -> None:
    first = index(aliases={"orders": {}}, name="orders-v1")
    second = index(aliases={"orders": {"is_write_index": False}}, name="orders-v2")
    result = plan(desired({"refresh_interval": "5s"}), first, second, alias=True)
    assert result.changes == ()
    assert result.blocker is not None and result.blocker.reason == AMBIGUOUS_ALIAS
    assert "alias over 2 indices (orders-v1, orders-v2)" in result.blocker.message
    assert "Nothing was changed" in result.blocker.message


def test_an_alias_over_several_indices_plans_against_its_write_index() -> None:
    old = index({"index.refresh_interval": "5s"}, aliases={"orders": {}}, name="orders-v1")
    new = index({"index.refresh_interval": "1s"}, aliases={"orders": {"is_write_index": True}}, name="orders-v2")
    (change,) = plan(desired({"refresh_interval": "5s"}), old, new, alias=True).changes
    assert change == UpdateSettings(
        index="orders-v2", values={"index.refresh_interval": "5s"}, before={"index.refresh_interval": "1s"}
    )


def test_an_alias_over_one_index_plans_against_that_index() -> None:
    only = index(aliases={"orders": {}}, name="orders-v1")
    (change,) = plan(desired({"refresh_interval": "5s"}), only, alias=True).changes
    assert isinstance(change, UpdateSettings) and change.index == "orders-v1"


# Drift and summaries


def drifted_plan() -> IndexPlan:
    want = desired(
        {"refresh_interval": "5s", "number_of_replicas": 2},
        {"dynamic": "strict", **props(title=TITLE, tag={"type": "keyword", "ignore_above": 512})},
        {"orders-read": {"routing": "1"}, "orders-new": {}},
    )
    have = index(
        {"index.refresh_interval": "1s", "index.max_result_window": "500"},
        props(title={"type": "text"}, tag={"type": "keyword", "ignore_above": 256}),
        {"orders-read": {}, "orders-old": {}},
    )
    managed = Managed(
        settings=frozenset({"index.refresh_interval", "index.max_result_window"}),
        fields=frozenset({"title", "tag"}),
        aliases=frozenset({"orders-read", "orders-old"}),
    )
    return plan(want, have, managed=managed)


def test_every_kind_of_in_place_change_is_planned_together() -> None:
    result = drifted_plan()
    assert result.blocker is None
    assert [type(c) for c in result.changes] == [UpdateSettings, PutMapping, UpdateAliases]


SECTIONS = {
    UpdateSettings: ("settings.", "setting"),
    PutMapping: ("mappings.", "mapping"),
    UpdateAliases: ("aliases.", "alias"),
}


def assert_drift_named_in_summary(change: Change) -> None:
    prefix, word = SECTIONS[type(change)]
    summary = change.summary()
    parts = summary.split("; ")
    items = change.drift()
    assert len(items) == len(parts)
    for item, part in zip(items, parts, strict=True):
        assert item.field.startswith(prefix)
        named = item.field.removeprefix(prefix)
        assert part.startswith(f"{word} {named} ")


def test_every_changes_drift_items_are_named_as_in_its_summary() -> None:
    changes = drifted_plan().changes
    for change in changes:
        assert_drift_named_in_summary(change)
    assert {d.field for c in changes for d in c.drift()} == {
        "settings.index.refresh_interval",
        "settings.index.number_of_replicas",
        "settings.index.max_result_window",
        "mappings.title.raw",
        "mappings.tag.ignore_above",
        "mappings.dynamic",
        "aliases.orders-read",
        "aliases.orders-new",
        "aliases.orders-old",
    }


def test_a_migration_blocker_names_every_item_as_the_drift_does() -> None:
    result = plan(
        desired({"number_of_shards": 2}, props(price={"type": "long"})),
        index(mappings=props(price={"type": "float"}, legacy={"type": "keyword"})),
        managed=Managed(fields=frozenset({"price", "legacy"})),
    )
    message = migration_message(result)
    assert len(result.migration_needed) == 3
    for item in result.migration_needed:
        assert f"{item.field} {item.actual} -> {item.desired}" in message


def test_managed_after_records_flat_settings_field_paths_and_aliases() -> None:
    want = desired(
        {"index": {"number_of_shards": 1}, "refresh_interval": "1s"}, props(title=TITLE), {"orders-read": {}}
    )
    assert managed_after(want) == Managed(
        settings=frozenset({"index.number_of_shards", "index.refresh_interval"}),
        fields=frozenset({"title", "title.raw"}),
        aliases=frozenset({"orders-read"}),
    )


# Properties

DYNAMIC_VALUES = {
    "index.refresh_interval": st.sampled_from(["1s", "5s", "30s", "-1"]),
    "index.number_of_replicas": st.sampled_from(["0", "1", "2"]),
    "index.max_result_window": st.sampled_from(["10000", "50000"]),
    "index.blocks.write": st.sampled_from(["true", "false"]),
}


def apply(have: ObservedIndex, change: Change) -> ObservedIndex:
    """The index as the servers show it once a settings or alias change is made."""
    settings_ = dict(have.settings)
    aliases = dict(have.aliases)
    if isinstance(change, UpdateSettings):
        for key, value in change.values.items():
            if value is None:
                settings_.pop(key, None)
            else:
                settings_[key] = value
    if isinstance(change, UpdateAliases):
        for alias in change.remove:
            aliases.pop(alias)
        for alias, definition in change.add.items():
            shown = {k: v for k, v in definition.items() if k != "routing"}
            if "routing" in definition:
                shown.setdefault("index_routing", definition["routing"])
                shown.setdefault("search_routing", definition["routing"])
            aliases[alias] = shown
    return ObservedIndex(have.name, have.uuid, settings_, have.mappings, aliases)


ALIAS_DEFINITIONS = st.fixed_dictionaries(
    {},
    optional={
        "filter": st.sampled_from([{"term": {"user": "a"}}, {"range": {"age": {"gte": 18}}}]),
        "routing": st.sampled_from(["1", "2"]),
        "is_write_index": st.booleans(),
        "is_hidden": st.booleans(),
    },
)


@given(
    st.dictionaries(st.sampled_from(sorted(DYNAMIC_VALUES)), st.just(None)).flatmap(
        lambda keys: st.fixed_dictionaries({k: DYNAMIC_VALUES[k] for k in keys})
    ),
    st.dictionaries(st.sampled_from(sorted(DYNAMIC_VALUES)), st.just(None)).flatmap(
        lambda keys: st.fixed_dictionaries({k: DYNAMIC_VALUES[k] for k in keys})
    ),
    st.dictionaries(st.sampled_from(["a", "b", "c"]), ALIAS_DEFINITIONS, max_size=3),
    st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), ALIAS_DEFINITIONS, max_size=3),
    st.frozensets(st.sampled_from(sorted(DYNAMIC_VALUES))),
    st.frozensets(st.sampled_from(["a", "b", "c", "d"])),
)
@settings(max_examples=25)
def test_once_its_in_place_changes_are_made_a_plan_needs_nothing_more(
    wanted_settings: dict[str, str],
    shown_settings: dict[str, str],
    wanted_aliases: dict[str, dict[str, Any]],
    shown_aliases: dict[str, dict[str, Any]],
    managed_settings: frozenset[str],
    managed_aliases: frozenset[str],
) -> None:
    want = desired(wanted_settings, aliases=wanted_aliases)
    have = index(shown_settings, aliases=shown_aliases)
    managed = Managed(settings=managed_settings | frozenset(want.settings), aliases=managed_aliases)
    result = plan(want, have, managed=managed)
    assert result.blocker is None
    for change in result.changes:
        assert_drift_named_in_summary(change)
        have = apply(have, change)
    assert plan(want, have, managed=managed_after(want)) == IndexPlan()
    for alias in set(shown_aliases) - set(wanted_aliases) - managed_aliases:
        assert have.aliases[alias] == shown_aliases[alias]  # never the spec's: untouched
    for key in set(shown_settings) - set(wanted_settings) - managed_settings:
        assert have.settings[key] == shown_settings[key]


# A mapping as a spec may write it, and as the servers then show it (defaults and object types left out).
LEAVES: list[tuple[dict[str, Any], dict[str, Any]]] = [
    ({"type": "keyword"}, {"type": "keyword"}),
    ({"type": "keyword", "index": True, "doc_values": "true"}, {"type": "keyword"}),
    ({"type": "keyword", "ignore_above": "256"}, {"type": "keyword", "ignore_above": 256}),
    ({"type": "text", "norms": True, "index_options": "positions"}, {"type": "text"}),
    ({"type": "text", "analyzer": "english"}, {"type": "text", "analyzer": "english"}),
    (
        {"type": "text", "fields": {"raw": {"type": "keyword", "ignore_above": 256, "store": False}}},
        {"type": "text", "fields": {"raw": {"type": "keyword", "ignore_above": 256}}},
    ),
    ({"type": "long", "coerce": True, "ignore_malformed": False}, {"type": "long"}),
    ({"type": "date", "format": "strict_date_optional_time"}, {"type": "date", "format": "strict_date_optional_time"}),
    ({"type": "boolean", "doc_values": False}, {"type": "boolean", "doc_values": False}),
]
NAMES = st.sampled_from(["city", "email", "title", "tags", "price", "created"])


def object_of(
    children: dict[str, tuple[dict[str, Any], dict[str, Any]]],
) -> st.SearchStrategy[tuple[dict[str, Any], dict[str, Any]]]:
    declared = {"properties": {name: pair[0] for name, pair in children.items()}}
    shown = {"properties": {name: pair[1] for name, pair in children.items()}}
    return st.sampled_from(
        [
            (declared, shown),
            ({"type": "object", **declared}, shown),
            ({"dynamic": True, "enabled": True, **declared}, shown),
            ({"dynamic": "strict", **declared}, {"dynamic": "strict", **shown}),
            ({"type": "nested", **declared}, {"type": "nested", **shown}),
        ]
    )


FIELDS = st.recursive(
    st.sampled_from(LEAVES),
    lambda inner: st.dictionaries(NAMES, inner, min_size=1, max_size=3).flatmap(object_of),
    max_leaves=8,
)
TREES = st.dictionaries(NAMES, FIELDS, min_size=1, max_size=4)
DOCUMENT_FIELD = {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}}


@given(TREES, st.booleans())
@settings(max_examples=25)
def test_a_mapping_matches_how_the_servers_show_it_with_fields_documents_added(
    tree: dict[str, tuple[dict[str, Any], dict[str, Any]]], documents_added: bool
) -> None:
    want = desired(mappings={"properties": {name: pair[0] for name, pair in tree.items()}})
    shown = {name: pair[1] for name, pair in tree.items()}
    if documents_added:
        shown["added_by_a_document"] = DOCUMENT_FIELD
    have = index(mappings={"properties": shown})
    assert plan(want, have) == IndexPlan()
    assert plan(want, have, managed=managed_after(want)) == IndexPlan()


@given(TREES, st.data())
@settings(max_examples=25)
def test_a_declared_field_missing_from_the_index_is_added_in_place(
    tree: dict[str, tuple[dict[str, Any], dict[str, Any]]], data: st.DataObject
) -> None:
    want = desired(mappings={"properties": {name: pair[0] for name, pair in tree.items()}})
    missing = data.draw(st.sampled_from(sorted(tree)))
    have = index(mappings={"properties": {name: pair[1] for name, pair in tree.items() if name != missing}})
    (change,) = plan(want, have).changes
    assert isinstance(change, PutMapping)
    assert change.mappings == want.mappings
    assert change.differences[0].field == f"mappings.{missing}"
    assert {d.actual for d in change.differences} == {"missing"}
    assert {d.field for d in change.differences} == {
        f"mappings.{path}" for path in managed_after(want).fields if path == missing or path.startswith(f"{missing}.")
    }
    assert_drift_named_in_summary(change)


def test_settings_are_undone_to_their_values_before_and_a_setting_that_was_unset_is_reset() -> None:
    change = UpdateSettings(
        "i", {"index.number_of_replicas": "1", "index.refresh_interval": "5s"}, {"index.number_of_replicas": "0"}
    )
    undo = change.undo()
    assert isinstance(undo, UpdateSettings)
    assert undo.values == {"index.number_of_replicas": "0", "index.refresh_interval": None}


def test_aliases_are_undone_by_restoring_the_changed_and_removed_and_dropping_the_added() -> None:
    before = {"read": {"filter": {"term": {"a": 1}}}, "gone": {}}
    change = UpdateAliases("i", add={"read": {}, "new": {}}, remove=("gone",), before=before)
    undo = change.undo()
    assert isinstance(undo, UpdateAliases)
    assert undo.add == {"gone": {}, "read": {"filter": {"term": {"a": 1}}}}
    assert undo.remove == ("new",)


def test_mapped_fields_cannot_be_removed_and_say_so() -> None:
    assert isinstance(PutMapping("i", {}, ()).undo(), str)
