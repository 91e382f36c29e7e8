"""A flow definition as the operator deploys it: bound to the one parameter context the object owns (pure).

A definition exported from NiFi carries its parameter contexts by name, and
NiFi binds an uploaded flow to an existing context of that name, values and
sensitive values included. Deployed as written, a flow from one namespace
could name another team's context and read its secrets. So every group of
the flow is bound to the context the object owns (named after the object),
the definition's own contexts are dropped, and their plain values only serve
as defaults under `spec.parameters`.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from controllers.nififlow.normalise import FlowDefinitionInvalid, flow_contents, walk_components

# Parameter context names: the object's, so two objects never share one.
CONTEXT_NAME_PREFIX = "infometis"
# How NiFi names a component instance, a controller service included.
COMPONENT_ID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
PARAMETER_REFERENCE = re.compile(r"#\{([^}]+)\}")


@dataclass(frozen=True)
class PreparedDefinition:
    definition: Mapping[str, Any]  # what is uploaded or replaced
    default_parameters: Mapping[str, str]  # plain values the definition's contexts gave


def context_name(namespace: str, name: str) -> str:
    """The parameter context a NiFiFlow owns: unique per object (namespaces and names hold no '/')."""
    return f"{CONTEXT_NAME_PREFIX}/{namespace}/{name}"


def prepare(definition: Mapping[str, Any], owned_context: str) -> PreparedDefinition:
    contents = copy.deepcopy(dict(flow_contents(definition)))
    contexts = definition.get("parameterContexts") or {}
    if not isinstance(contexts, Mapping):
        raise FlowDefinitionInvalid("parameterContexts is not an object")
    used = _bind(contents, owned_context)
    defaults: dict[str, str] = {}
    for name in sorted(used):
        context = contexts.get(name)
        for parameter in (context or {}).get("parameters") or []:
            if not parameter.get("sensitive") and parameter.get("value") is not None:
                defaults.setdefault(str(parameter["name"]), str(parameter["value"]))
    prepared = {
        key: value
        for key, value in definition.items()
        if key not in ("flowContents", "parameterContexts", "parameterProviders")
    }
    prepared["flowContents"] = contents
    # Named here so NiFi creates the context if it is missing and binds to it (keeping its values) if not;
    # its values are the operator's to set, through NiFi's parameter context update requests.
    prepared["parameterContexts"] = {
        owned_context: {"name": owned_context, "parameters": [], "inheritedParameterContexts": []}
    }
    return PreparedDefinition(definition=prepared, default_parameters=defaults)


def _bind(group: dict[str, Any], owned_context: str) -> set[str]:
    """Bind `group` and every group below it to the owned context; the context names they had."""
    used = {str(group["parameterContextName"])} if group.get("parameterContextName") else set()
    group["parameterContextName"] = owned_context
    for child in group.get("processGroups") or []:
        if not isinstance(child, dict):
            raise FlowDefinitionInvalid("a process group in the definition is not an object")
        used |= _bind(child, owned_context)
    return used


def services_outside(contents: Mapping[str, Any], parameters: Mapping[str, str]) -> list[str]:
    """Where the flow may use a controller service it does not define, described (no value shown).

    NiFi lets a component use any controller service of its own group or of a
    parent group (NiFi's root included), with whatever credentials that
    service holds. On upload it maps a property naming a service of the flow
    (by the service's `identifier`, searched in the component's group and the
    flow's groups above it) to that service; any other value is kept as
    written, and binds to whichever service outside the flow has that id. A
    property counts as naming a service when NiFi's descriptor in the
    definition says it identifies one, or when its value, parameters
    substituted, is shaped like a component id (NiFi's instance ids are, and
    a hand-written definition may leave its descriptors out); a parameter
    counts when its value is shaped like one.
    """
    found = _outside(contents, "", frozenset(), parameters)
    found.extend(f"parameter {name!r}" for name, value in sorted(parameters.items()) if COMPONENT_ID.match(value))
    return found


def _outside(group: Mapping[str, Any], path: str, in_scope: frozenset[str], parameters: Mapping[str, str]) -> list[str]:
    services = group.get("controllerServices") or []
    # Only `identifier`: NiFi maps references by it, never by the instanceIdentifier a definition claims.
    in_scope = in_scope | {str(s["identifier"]) for s in services if isinstance(s, Mapping) and s.get("identifier")}
    found: list[str] = []
    for field, kind in (("processors", "processor"), ("controllerServices", "controller service")):
        for component in group.get(field) or []:
            descriptors = component.get("propertyDescriptors") or {}
            for name, value in (component.get("properties") or {}).items():
                if value is None or str(value) in in_scope:
                    continue
                descriptor = descriptors.get(name) if isinstance(descriptors, Mapping) else None
                names_a_service = isinstance(descriptor, Mapping) and descriptor.get("identifiesControllerService")
                if names_a_service or COMPONENT_ID.match(_substituted(str(value), parameters)):
                    found.append(f"{path}{kind} {component.get('name')} property {name!r}")
    for child in group.get("processGroups") or []:
        found.extend(_outside(child, f"{path}group {child.get('name')}/", in_scope, parameters))
    return found


def _substituted(value: str, parameters: Mapping[str, str]) -> str:
    return PARAMETER_REFERENCE.sub(lambda match: parameters.get(match.group(1), match.group(0)), value)


def defines_services(definition: Mapping[str, Any]) -> bool:
    """Whether the flow defines a controller service at any level (its own, to enable)."""
    return any(kind == "controller service" for _, kind, _, _ in walk_components(flow_contents(definition)))
