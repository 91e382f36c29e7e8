"""Settings and mappings in the one form the servers store them, so a spec compares equal to what they show (pure).

Settings may be written nested or flat, with or without the 'index.' prefix,
as numbers, booleans or strings; the servers keep them flat, prefixed, as
strings. Mappings are compared field by field ('address.city', multi-fields
as 'email.raw'); parameters the servers leave out of a mapping because they
hold their default are compared as that default.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

INDEX_PREFIX = "index."

# Settings fixed when an index is created (the servers refuse them on an open
# index), by flat key or key prefix. Anything else is tried in place, and a
# server's "non dynamic settings" refusal is reported the same way.
STATIC_SETTINGS = (
    "index.number_of_shards",
    "index.number_of_routing_shards",
    "index.routing_partition_size",
    "index.codec",
    "index.soft_deletes.",
    "index.sort.",
    "index.store.type",
    "index.shard.check_on_startup",
    "index.load_fixed_bitset_filters_eagerly",
    "index.analysis.",
    "index.similarity.",
    "index.mode",
    "index.mapping.source.mode",
    "index.knn",
)
# Settings the servers set on every index themselves: never the spec's, never drift.
SERVER_OWNED_SETTINGS = (
    "index.uuid",
    "index.creation_date",
    "index.provided_name",
    "index.version.",
    "index.history.uuid",
    "index.resize.",
    "index.routing.allocation.initial_recovery.",
    "index.replication.type",
)

# Mapping parameters the servers change on an existing field (put-mapping); others need a new index.
UPDATABLE_FIELD_PARAMETERS = frozenset(
    {"ignore_above", "meta", "search_analyzer", "search_quote_analyzer", "ignore_malformed", "dynamic"}
)
# Parameters a mapping omits while they hold these values.
FIELD_PARAMETER_DEFAULTS: Mapping[str, str] = {
    "index": "true",
    "doc_values": "true",
    "store": "false",
    "norms": "true",
    "enabled": "true",
    "coerce": "true",
    "ignore_malformed": "false",
    "eager_global_ordinals": "false",
    "index_options": "positions",
    "dynamic": "true",
}
# Where a field type's own default differs from the general one.
TYPE_PARAMETER_DEFAULTS: Mapping[str, Mapping[str, str]] = {
    "keyword": {"norms": "false", "index_options": "docs"},
}
# Top-level mapping entries the servers change in place; '_source', '_routing' and the like need a new index.
UPDATABLE_MAPPING_ENTRIES = frozenset(
    {"dynamic", "_meta", "date_detection", "numeric_detection", "dynamic_templates", "dynamic_date_formats"}
)
MAPPING_ENTRY_DEFAULTS: Mapping[str, str] = {"dynamic": "true", "date_detection": "true", "numeric_detection": "false"}


class SettingsInvalid(ValueError):
    """Settings that cannot be stored as written (one key spelt twice with different values)."""


def setting_value(value: Any) -> Any:
    """A setting value as the servers store it: strings ('true', '3', '1s'), lists of strings, None to reset."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return [setting_value(item) for item in value]
    return str(value)


def flat_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Nested or flat settings as the servers keep them: flat 'index.'-prefixed keys, string values."""
    flat: dict[str, Any] = {}

    def walk(node: Mapping[str, Any], prefix: str) -> None:
        for key, value in node.items():
            path = f"{prefix}{key}"
            if isinstance(value, Mapping):
                walk(value, f"{path}.")
                continue
            full = path if path.startswith(INDEX_PREFIX) else INDEX_PREFIX + path
            stored = setting_value(value)
            if full in flat and flat[full] != stored:
                raise SettingsInvalid(f"settings give {full} twice, as {flat[full]!r} and {stored!r}")
            flat[full] = stored

    walk(settings, "")
    return flat


def is_static_setting(key: str) -> bool:
    return any(key == s or (s.endswith(".") and key.startswith(s)) for s in STATIC_SETTINGS)


def is_server_owned_setting(key: str) -> bool:
    return any(key == s or (s.endswith(".") and key.startswith(s)) for s in SERVER_OWNED_SETTINGS)


def field_defaults(field_type: str) -> Mapping[str, str]:
    """The parameter defaults a mapping omits, for a field of this type."""
    return {**FIELD_PARAMETER_DEFAULTS, **TYPE_PARAMETER_DEFAULTS.get(field_type, {})}


def scalar(value: Any) -> str:
    """One spelling per value for comparing mapping parameters: 256 == '256' == 256.0, True == 'true'."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str | int | float):
        return str(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def mapping_fields(mapping: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """Every field of a mapping by its path ('address.city', 'email.raw'), with its own parameters
    (type included; 'object' when only properties are given), sub-fields left out."""
    fields: dict[str, dict[str, str]] = {}

    def walk(properties: Mapping[str, Any], prefix: str) -> None:
        for name, definition in properties.items():
            path = f"{prefix}{name}"
            if not isinstance(definition, Mapping):
                definition = {}
            parameters = {
                key: scalar(value) for key, value in definition.items() if key not in ("properties", "fields")
            }
            parameters.setdefault("type", "object")
            fields[path] = parameters
            walk(definition.get("properties") or {}, f"{path}.")
            walk(definition.get("fields") or {}, f"{path}.")

    walk(mapping.get("properties") or {}, "")
    return fields


def mapping_entries(mapping: Mapping[str, Any]) -> dict[str, str]:
    """A mapping's top-level entries other than its fields (dynamic, _meta, _source, ...)."""
    return {key: scalar(value) for key, value in mapping.items() if key != "properties"}


def parameter_equal(name: str, declared: str, observed: str | None, defaults: Mapping[str, str]) -> bool:
    if observed is None:
        return defaults.get(name) == declared
    return declared == observed


def alias_shown(alias: Mapping[str, Any]) -> dict[str, Any]:
    """An alias as the servers show it: 'routing' split into index and search routing, unset parts left out."""
    shown = {key: value for key, value in alias.items() if value is not None and key != "routing"}
    routing = alias.get("routing")
    if routing is not None:
        shown.setdefault("index_routing", routing)
        shown.setdefault("search_routing", routing)
    return shown


def alias_definition(alias: Mapping[str, Any]) -> dict[str, str]:
    """An alias as the servers show it, each value spelt one way, for comparing."""
    return {key: scalar(value) for key, value in alias_shown(alias).items()}
