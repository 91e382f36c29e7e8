"""Flow definitions compared by content, not by ids or positions (pure).

A flow definition (what NiFi's "Download flow definition" writes, and what
`GET /process-groups/{id}/download` returns for a deployed group) names every
component by generated ids and places it on a canvas. Two definitions are the
same flow when the same components, by kind and name, have the same
configuration and are connected the same way. Components are keyed
'processor GenerateFlowFile', 'group Enrich/processor LogAttribute',
'connection processor A -> processor B [success]'; a reference to a
controller service by id reads as the service's key instead.

Only what the desired definition spells is compared: NiFi fills in defaults
for whatever a hand-written definition leaves out, and those are not
differences. Properties are the exception: a dynamic property present on
NiFi and absent from the definition is one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

# Where each component sits and which ids NiFi gave it: never content.
IGNORED_FIELDS = frozenset(
    {
        "identifier",
        "instanceIdentifier",
        "groupIdentifier",
        "position",
        "bends",
        "labelIndex",
        "zIndex",
        "style",
        "componentType",
        "propertyDescriptors",
        "versionedFlowCoordinates",
        "parameterContextName",  # the operator binds the context it owns
        "name",  # part of the key
        "width",
        "height",
    }
)
# A group's children, by the kind each list holds.
CHILD_KINDS = (
    ("processGroups", "group"),
    ("processors", "processor"),
    ("controllerServices", "controller service"),
    ("inputPorts", "input port"),
    ("outputPorts", "output port"),
    ("funnels", "funnel"),
    ("labels", "label"),
    ("remoteProcessGroups", "remote process group"),
)
CHILD_LISTS = frozenset(field for field, _ in CHILD_KINDS) | {"connections"}


class FlowDefinitionInvalid(ValueError):
    """A flow definition the operator cannot read (no flowContents, a component without a kind it knows)."""


@dataclass(frozen=True)
class FlowContent:
    """A flow as comparable content: each component's configuration by key, ids and positions gone."""

    components: Mapping[str, Mapping[str, Any]]
    # Per component key, the names of its properties NiFi treats as sensitive or dynamic.
    sensitive: Mapping[str, frozenset[str]]
    dynamic: Mapping[str, frozenset[str]]

    def digest(self) -> str:
        canonical = json.dumps(self.components, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Difference:
    key: str  # the component ('processor GenerateFlowFile') or 'key: field.path'
    desired: str
    actual: str

    def shown(self) -> str:
        return f"{self.key} {self.actual} -> {self.desired}"


def flow_contents(definition: Mapping[str, Any]) -> Mapping[str, Any]:
    """The root process group of a flow definition (its 'flowContents')."""
    contents = definition.get("flowContents")
    if not isinstance(contents, Mapping):
        raise FlowDefinitionInvalid(
            "the flow definition has no flowContents (export it with 'Download flow definition')"
        )
    return contents


def flow_content(group: Mapping[str, Any]) -> FlowContent:
    """The comparable content of a process group (a definition's flowContents, or a download of a live group)."""
    components: dict[str, dict[str, Any]] = {}
    sensitive: dict[str, frozenset[str]] = {}
    dynamic: dict[str, frozenset[str]] = {}
    components["group"] = _fields(group, {})
    for key, kind, component, references in walk_components(group):
        components[key] = _fields(component, references)
        if kind == "controller service":
            # NiFi downloads every service as DISABLED, running or not; the operator enables the
            # flow's services itself and observes their state apart from the definition.
            components[key].pop("scheduledState", None)
        descriptors = component.get("propertyDescriptors") or {}
        sensitive[key] = frozenset(n for n, d in descriptors.items() if isinstance(d, Mapping) and d.get("sensitive"))
        dynamic[key] = frozenset(n for n, d in descriptors.items() if isinstance(d, Mapping) and d.get("dynamic"))
    return FlowContent(components=components, sensitive=sensitive, dynamic=dynamic)


def differences(desired: FlowContent, actual: FlowContent) -> list[Difference]:
    """What differs, component by component: missing, extra, and each field the desired flow spells."""
    found: list[Difference] = []
    for key, wanted in sorted(desired.components.items()):
        have = actual.components.get(key)
        if have is None:
            found.append(Difference(key, "present", "missing"))
            continue
        found.extend(_field_differences(key, wanted, have, desired, actual))
    for key in sorted(actual.components.keys() - desired.components.keys()):
        found.append(Difference(key, "absent", "present"))
    return found


def _field_differences(
    key: str, wanted: Mapping[str, Any], have: Mapping[str, Any], desired: FlowContent, actual: FlowContent
) -> Iterator[Difference]:
    prefix = "" if key == "group" else f"{key}: "
    for field, value in sorted(wanted.items()):
        if field == "properties" and isinstance(value, Mapping):
            yield from _property_differences(key, prefix, value, have.get("properties") or {}, actual)
        elif _canonical(value) != _canonical(have.get(field)):
            yield Difference(f"{prefix}{field}", _shown(value), _shown(have.get(field)))


def _property_differences(
    key: str, prefix: str, wanted: Mapping[str, Any], have: Mapping[str, Any], actual: FlowContent
) -> Iterator[Difference]:
    secret = actual.sensitive.get(key, frozenset())
    for name, value in sorted(wanted.items()):
        if name in secret and have.get(name) is None and not _is_parameter_reference(value):
            continue  # NiFi never shows a sensitive value it holds
        if _canonical(value) != _canonical(have.get(name)):
            yield Difference(f"{prefix}properties.{name}", _shown(value), _shown(have.get(name)))
    for name in sorted(actual.dynamic.get(key, frozenset()) - wanted.keys()):
        if have.get(name) is not None:
            yield Difference(f"{prefix}properties.{name}", "unset", _shown(have[name]))


def walk_components(
    group: Mapping[str, Any], path: str = "", inherited: Mapping[str, str] | None = None
) -> Iterator[tuple[str, str, Mapping[str, Any], Mapping[str, str]]]:
    """Every component below `group`: its key, its kind ('processor', 'controller service', ...,
    'connection'), itself, and the controller services it may name (its group's and its ancestors',
    by id); connections last, their ends read by key."""
    keys_by_id: dict[str, str] = {}
    children: list[tuple[str, str, Mapping[str, Any]]] = []
    for field, kind in CHILD_KINDS:
        for key, component in _keyed(group.get(field) or [], f"{path}{kind}"):
            children.append((key, kind, component))
            for id_field in ("identifier", "instanceIdentifier"):
                if component.get(id_field):
                    keys_by_id[str(component[id_field])] = key
    services = {
        ident: key
        for key, kind, component in children
        if kind == "controller service"
        for ident in (component.get("identifier"), component.get("instanceIdentifier"))
        if ident
    }
    references = {**(inherited or {}), **services}
    for key, kind, component in children:
        yield key, kind, component, references
        if kind == "group":
            yield from walk_components(component, f"{key}/", references)
    connections = [(_connection_label(c, keys_by_id, path), c) for c in group.get("connections") or []]
    for key, component in _keyed_by_label(connections, f"{path}connection"):
        yield key, "connection", component, references


def _keyed(components: list[Any], prefix: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    labelled = []
    for component in components:
        if not isinstance(component, Mapping):
            raise FlowDefinitionInvalid(f"{prefix}: a component is not an object")
        name = component.get("name") or component.get("label") or ""
        labelled.append((str(name), component))
    yield from _keyed_by_label(labelled, prefix)


def _keyed_by_label(
    labelled: list[tuple[str, Mapping[str, Any]]], prefix: str
) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Keys from labels; components sharing one are told apart by their content's order (#2, #3, ...)."""
    by_label: dict[str, list[Mapping[str, Any]]] = {}
    for label, component in labelled:
        by_label.setdefault(label, []).append(component)
    for label, same in by_label.items():
        same.sort(key=lambda c: json.dumps(_fields(c, {}), sort_keys=True, default=str))
        for number, component in enumerate(same, start=1):
            suffix = "" if number == 1 else f"#{number}"
            yield (f"{prefix} {label}{suffix}" if label else f"{prefix}{suffix}"), component


def _connection_label(connection: Mapping[str, Any], keys_by_id: Mapping[str, str], path: str) -> str:
    def end(side: str) -> str:
        reference = connection.get(side) or {}
        ident = str(reference.get("id") or "")
        if ident in keys_by_id:
            return keys_by_id[ident].removeprefix(path)
        # A port of a child group: by the group's key and the port's name.
        kind = str(reference.get("type") or "").lower().replace("_", " ")
        group = keys_by_id.get(str(reference.get("groupId") or ""), "")
        where = f"{group.removeprefix(path)}/" if group else ""
        return f"{where}{kind} {reference.get('name') or ident}"

    relationships = ",".join(sorted(connection.get("selectedRelationships") or []))
    return f"{end('source')} -> {end('destination')} [{relationships}]"


def _fields(component: Mapping[str, Any], references: Mapping[str, str]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for field, value in component.items():
        if field in IGNORED_FIELDS or field in CHILD_LISTS or field in ("source", "destination"):
            continue
        if field == "properties" and isinstance(value, Mapping):
            value = {name: references.get(str(v), v) for name, v in value.items()}
        fields[field] = value
    return fields


def _is_parameter_reference(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("#{") and value.endswith("}")


def _canonical(value: Any) -> str:
    """Values as NiFi round-trips them: numbers and booleans as their text, lists of names as sets."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return json.dumps(sorted(value))
    return json.dumps(value, sort_keys=True, default=str)


def _shown(value: Any) -> str:
    shown = _canonical(value)
    return shown if shown else "unset"
