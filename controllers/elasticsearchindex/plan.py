"""Which changes make an index match its spec, and what needs a migration instead (pure).

The servers change dynamic settings, new mapping fields, a few mapping
parameters and aliases in place. Static settings (number_of_shards, codec,
analysis), a field's type or other fixed parameters, and removed fields need
a new index: without spec.migration such a plan changes nothing and names
every offending field with its old and new value.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from controllers.core.kind import Blocker
from controllers.core.model import DriftItem
from controllers.elasticsearchindex.model import VERSION_SEPARATOR, AliasSpec, ElasticsearchIndexSpec
from controllers.elasticsearchindex.normalise import (
    MAPPING_ENTRY_DEFAULTS,
    UPDATABLE_FIELD_PARAMETERS,
    UPDATABLE_MAPPING_ENTRIES,
    alias_definition,
    alias_shown,
    field_defaults,
    flat_settings,
    is_server_owned_setting,
    is_static_setting,
    mapping_entries,
    mapping_fields,
    parameter_equal,
)
from controllers.elasticsearchindex.state import Observation, ObservedIndex

REQUIRES_MIGRATION = "RequiresMigration"
AMBIGUOUS_ALIAS = "AmbiguousAlias"


def _shown(value: Any) -> str:
    if value is None:
        return "unset"
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


@dataclass(frozen=True)
class CreateIndex:
    creates: ClassVar[bool] = True
    settles_later: ClassVar[bool] = False
    event_reason: ClassVar[str | None] = None
    index: str  # the concrete index
    settings: Mapping[str, Any]
    mappings: Mapping[str, Any]
    aliases: Mapping[str, Mapping[str, Any]]

    def undo(self) -> Change | str:
        return "an index just created is kept: documents written to it would be lost"

    def destructive(self) -> str | None:
        return None

    def summary(self) -> str:
        shards = self.settings.get("index.number_of_shards", "default")
        replicas = self.settings.get("index.number_of_replicas", "default")
        fields = len(mapping_fields(self.mappings))
        return (
            f"created with {shards} shard(s), {replicas} replica(s), {fields} mapped field(s), "
            f"{len(self.aliases)} alias(es)"
        )

    def drift(self) -> tuple[DriftItem, ...]:
        return (DriftItem(field="index", desired="exists", actual="missing"),)


@dataclass(frozen=True)
class UpdateSettings:
    creates: ClassVar[bool] = False
    settles_later: ClassVar[bool] = False
    event_reason: ClassVar[str | None] = None
    index: str
    values: Mapping[str, Any]  # flat key -> new value (None resets to the server's default)
    before: Mapping[str, Any]

    def undo(self) -> Change | str:
        return UpdateSettings(
            self.index,
            {key: self.before.get(key) for key in self.values},
            {key: value for key, value in self.values.items()},
        )

    def destructive(self) -> str | None:
        return None

    def summary(self) -> str:
        return "; ".join(
            f"setting {key} {_shown(self.before.get(key))} -> {_shown(value) if value is not None else 'default'}"
            for key, value in sorted(self.values.items())
        )

    def drift(self) -> tuple[DriftItem, ...]:
        return tuple(
            DriftItem(field=f"settings.{key}", desired=_shown(value), actual=_shown(self.before.get(key)))
            for key, value in sorted(self.values.items())
        )


@dataclass(frozen=True)
class PutMapping:
    creates: ClassVar[bool] = False
    settles_later: ClassVar[bool] = False
    event_reason: ClassVar[str | None] = None
    index: str
    mappings: Mapping[str, Any]  # the whole declared mapping: the servers merge it into what they have
    differences: tuple[DriftItem, ...]

    def undo(self) -> Change | str:
        return "mapped fields cannot be removed from an index"

    def destructive(self) -> str | None:
        return None

    def summary(self) -> str:
        return "; ".join(
            f"mapping {d.field.removeprefix('mappings.')} added ({d.desired})"
            if d.actual == "missing"
            else f"mapping {d.field.removeprefix('mappings.')} {d.actual} -> {d.desired}"
            for d in self.differences
        )

    def drift(self) -> tuple[DriftItem, ...]:
        return self.differences


@dataclass(frozen=True)
class UpdateAliases:
    creates: ClassVar[bool] = False
    settles_later: ClassVar[bool] = False
    event_reason: ClassVar[str | None] = None
    index: str
    add: Mapping[str, Mapping[str, Any]]  # alias -> definition as in the create-index API
    remove: tuple[str, ...]
    before: Mapping[str, Mapping[str, Any]]

    def undo(self) -> Change | str:
        after = {**{alias: self.before[alias] for alias in self.before if alias not in self.remove}, **self.add}
        return UpdateAliases(
            self.index,
            add={alias: self.before[alias] for alias in sorted({*self.add, *self.remove}) if alias in self.before},
            remove=tuple(sorted(alias for alias in self.add if alias not in self.before)),
            before=after,
        )

    def destructive(self) -> str | None:
        return None

    def summary(self) -> str:
        parts = [f"alias {alias} {'changed' if alias in self.before else 'added'}" for alias in sorted(self.add)] + [
            f"alias {alias} removed" for alias in self.remove
        ]
        return "; ".join(parts)

    def drift(self) -> tuple[DriftItem, ...]:
        items = [
            DriftItem(
                field=f"aliases.{alias}",
                desired=_shown(alias_shown(definition)),
                actual=_shown(alias_shown(self.before[alias])) if alias in self.before else "missing",
            )
            for alias, definition in sorted(self.add.items())
        ]
        items += [
            DriftItem(
                field=f"aliases.{alias}", desired="absent", actual=_shown(alias_shown(self.before.get(alias, {})))
            )
            for alias in self.remove
        ]
        return tuple(items)


Change = CreateIndex | UpdateSettings | PutMapping | UpdateAliases


@dataclass(frozen=True)
class IndexPlan:
    changes: tuple[Change, ...] = ()
    blocker: Blocker | None = None
    # What the servers cannot change in place: (field, actual, desired).
    migration_needed: tuple[DriftItem, ...] = ()


@dataclass(frozen=True)
class DesiredIndex:
    name: str
    settings: Mapping[str, Any]  # flat, as the servers store them
    mappings: Mapping[str, Any]
    aliases: Mapping[str, Mapping[str, Any]]  # as in the create-index API, unset parts left out
    migration: bool  # spec.migration is set: the name becomes an alias over versioned indices

    @staticmethod
    def from_spec(name: str, spec: ElasticsearchIndexSpec) -> DesiredIndex:
        return DesiredIndex(
            name=name,
            settings=flat_settings(spec.settings),
            mappings=spec.mappings,
            aliases={alias: _alias_body(definition) for alias, definition in spec.aliases.items()},
            migration=spec.migration is not None,
        )


@dataclass(frozen=True)
class Managed:
    """What the spec set when it was last applied (from the status): removed from the spec since, undone."""

    settings: frozenset[str] = frozenset()
    fields: frozenset[str] = frozenset()
    aliases: frozenset[str] = frozenset()


def _alias_body(alias: AliasSpec) -> dict[str, Any]:
    return alias.model_dump(exclude_none=True)


def concrete_index_name(name: str, version: int) -> str:
    return f"{name}{VERSION_SEPARATOR}{version}"


def plan_index(desired: DesiredIndex, observation: Observation, managed: Managed) -> IndexPlan:
    index = observation.index
    if index is None and observation.indices:
        names = ", ".join(sorted(i.name for i in observation.indices))
        return IndexPlan(
            blocker=Blocker(
                AMBIGUOUS_ALIAS,
                f"'{desired.name}' is an alias over {len(observation.indices)} indices ({names}) with no single "
                "write index: the operator cannot tell which one to manage. Nothing was changed.",
            )
        )
    if index is None:
        return IndexPlan(changes=(_create(desired),))
    migration_needed: list[DriftItem] = []
    changes: list[Change] = []
    settings = _settings_change(desired, index, managed, migration_needed)
    if settings:
        changes.append(settings)
    mapping = _mapping_change(desired, index, managed, migration_needed)
    if mapping:
        changes.append(mapping)
    aliases = _aliases_change(desired, index, managed)
    if aliases:
        changes.append(aliases)
    if migration_needed:
        listed = "; ".join(f"{d.field} {d.actual} -> {d.desired}" for d in migration_needed)
        return IndexPlan(
            blocker=Blocker(
                REQUIRES_MIGRATION,
                f"Index '{desired.name}' cannot be changed in place: {listed}. Nothing was changed; set "
                "spec.migration to move the index to a new one by reindexing, or revert these fields.",
            ),
            migration_needed=tuple(migration_needed),
        )
    return IndexPlan(changes=tuple(changes))


def _create(desired: DesiredIndex) -> CreateIndex:
    aliases = dict(desired.aliases)
    concrete = desired.name
    if desired.migration:
        # Created behind its name from the start, so a later migration only moves the alias.
        concrete = concrete_index_name(desired.name, 1)
        aliases[desired.name] = {"is_write_index": True}
    return CreateIndex(index=concrete, settings=desired.settings, mappings=desired.mappings, aliases=aliases)


def _settings_change(
    desired: DesiredIndex, index: ObservedIndex, managed: Managed, migration_needed: list[DriftItem]
) -> UpdateSettings | None:
    values: dict[str, Any] = {}
    for key, value in desired.settings.items():
        if is_server_owned_setting(key):
            continue
        actual = index.settings.get(key)
        if actual == value:
            continue
        if is_static_setting(key):
            migration_needed.append(DriftItem(field=f"settings.{key}", desired=_shown(value), actual=_shown(actual)))
        else:
            values[key] = value
    for key in sorted(managed.settings - desired.settings.keys()):
        if key in index.settings and not is_static_setting(key) and not is_server_owned_setting(key):
            values[key] = None  # no longer the spec's: back to the server's default
    if not values:
        return None
    return UpdateSettings(index=index.name, values=values, before={key: index.settings.get(key) for key in values})


def _mapping_change(
    desired: DesiredIndex, index: ObservedIndex, managed: Managed, migration_needed: list[DriftItem]
) -> PutMapping | None:
    declared = mapping_fields(desired.mappings)
    observed = mapping_fields(index.mappings)
    in_place: list[DriftItem] = []
    for path, parameters in declared.items():
        shown = observed.get(path)
        if shown is None:
            in_place.append(DriftItem(field=f"mappings.{path}", desired=parameters["type"], actual="missing"))
            continue
        for name, value in sorted(parameters.items()):
            actual = shown.get(name)
            if parameter_equal(name, value, actual, field_defaults(parameters["type"])):
                continue
            item = DriftItem(field=f"mappings.{path}.{name}", desired=value, actual=_shown(actual))
            if name in UPDATABLE_FIELD_PARAMETERS:
                in_place.append(item)
            else:
                migration_needed.append(item)
    for path in sorted(managed.fields - declared.keys()):
        if path in observed:
            migration_needed.append(
                DriftItem(field=f"mappings.{path}", desired="removed", actual=observed[path]["type"])
            )
    declared_entries = mapping_entries(desired.mappings)
    observed_entries = mapping_entries(index.mappings)
    for name, value in sorted(declared_entries.items()):
        actual = observed_entries.get(name)
        if parameter_equal(name, value, actual, MAPPING_ENTRY_DEFAULTS):
            continue
        item = DriftItem(field=f"mappings.{name}", desired=value, actual=_shown(actual))
        (in_place if name in UPDATABLE_MAPPING_ENTRIES else migration_needed).append(item)
    if not in_place:
        return None
    return PutMapping(index=index.name, mappings=desired.mappings, differences=tuple(in_place))


def _aliases_change(desired: DesiredIndex, index: ObservedIndex, managed: Managed) -> UpdateAliases | None:
    add = {
        alias: definition
        for alias, definition in desired.aliases.items()
        if alias_definition(definition) != alias_definition(index.aliases.get(alias, {})) or alias not in index.aliases
    }
    remove = tuple(
        sorted(
            alias
            for alias in managed.aliases - desired.aliases.keys()
            if alias in index.aliases and alias != desired.name
        )
    )
    if not add and not remove:
        return None
    return UpdateAliases(index=index.name, add=add, remove=remove, before=dict(index.aliases))


def managed_after(desired: DesiredIndex) -> Managed:
    """What the status records as the spec's once this spec is applied."""
    return Managed(
        settings=frozenset(desired.settings),
        fields=frozenset(mapping_fields(desired.mappings)),
        aliases=frozenset(desired.aliases),
    )
