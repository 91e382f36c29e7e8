"""CustomResourceDefinitions generated from the pydantic models.

The models are the single source of truth; this turns their JSON schema into
a structural OpenAPI v3 schema the API server accepts (inlined references, no
anyOf-with-null, no titles), and adds what pydantic cannot express: CEL
rules, printer columns, short names, categories and the status subresource.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from controllers.core.objects import ResourceInfo


@dataclass(frozen=True)
class PrinterColumn:
    name: str
    type: str
    json_path: str
    priority: int = 0  # 1: shown only by `kubectl get -o wide`


@dataclass(frozen=True)
class CrdInfo:
    resource: ResourceInfo
    singular: str
    short_names: tuple[str, ...]
    categories: tuple[str, ...]
    spec_model: type[BaseModel]
    status_model: type[BaseModel]
    description: str
    printer_columns: tuple[PrinterColumn, ...]
    root_validations: tuple[Mapping[str, str], ...] = ()


def _inline(node: Any, definitions: Mapping[str, Any]) -> Any:
    """Resolve $ref, flatten Optional (anyOf with null), drop what CRDs refuse."""
    if isinstance(node, list):
        return [_inline(item, definitions) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = definitions[node["$ref"].rsplit("/", 1)[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _inline(merged, definitions)
    if "anyOf" in node:
        options = [option for option in node["anyOf"] if option.get("type") != "null"]
        if len(options) == 1:
            rest = {k: v for k, v in node.items() if k != "anyOf"}
            if rest.get("default", ...) is None:
                del rest["default"]
            return _inline({**options[0], **rest}, definitions)
    result = {}
    for key, value in node.items():
        if key in ("title", "$defs"):
            continue
        if key == "additionalProperties" and value is False:
            continue  # structural schemas prune unknown fields instead
        if key == "additionalProperties" and value is True and node.get("x-kubernetes-preserve-unknown-fields"):
            continue  # free-form (index settings, mappings): the API server would otherwise prune below it
        if key == "properties":
            result[key] = {name: _inline(prop, definitions) for name, prop in value.items()}
        else:
            result[key] = _inline(value, definitions)
    return result


def _without_defaults(node: Any) -> Any:
    if isinstance(node, list):
        return [_without_defaults(item) for item in node]
    if isinstance(node, dict):
        return {k: _without_defaults(v) for k, v in node.items() if k != "default"}
    return node


def model_schema(model: type[BaseModel]) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    schema: dict[str, Any] = _inline(raw, raw.get("$defs", {}))
    return schema


def _status_schema(model: type[BaseModel]) -> dict[str, Any]:
    # Defaults would be applied by the API server to every object; status is
    # the operator's to write, so it carries none.
    schema: dict[str, Any] = _without_defaults(model_schema(model))
    conditions = schema["properties"].get("conditions")
    if conditions is not None:
        conditions["x-kubernetes-list-type"] = "map"
        conditions["x-kubernetes-list-map-keys"] = ["type"]
    return schema


def crd_manifest(info: CrdInfo) -> dict[str, Any]:
    resource = info.resource
    root: dict[str, Any] = {
        "type": "object",
        "description": info.description,
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": model_schema(info.spec_model),
            "status": _status_schema(info.status_model),
        },
    }
    if info.root_validations:
        root["x-kubernetes-validations"] = [dict(rule) for rule in info.root_validations]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{resource.plural}.{resource.group}"},
        "spec": {
            "group": resource.group,
            "scope": "Namespaced",
            "names": {
                "kind": resource.kind,
                "listKind": f"{resource.kind}List",
                "plural": resource.plural,
                "singular": info.singular,
                "shortNames": list(info.short_names),
                "categories": list(info.categories),
            },
            "versions": [
                {
                    "name": resource.version,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        {
                            "name": c.name,
                            "type": c.type,
                            "jsonPath": c.json_path,
                            **({"priority": c.priority} if c.priority else {}),
                        }
                        for c in info.printer_columns
                    ],
                    "schema": {"openAPIV3Schema": root},
                }
            ],
        },
    }
