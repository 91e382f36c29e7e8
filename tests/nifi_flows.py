"""Flow definitions shaped as NiFi 2 exports them ("Download flow definition"), for the pure tests."""

from __future__ import annotations

import copy
import itertools
import uuid
from pathlib import Path
from typing import Any


def _nifi_version() -> str:
    """The NiFi the stack runs: flows name its bundles' version."""
    for line in (Path(__file__).resolve().parents[1] / "hack" / "versions.env").read_text().splitlines():
        if line.startswith("NIFI_VERSION="):
            return line.partition("=")[2]
    raise AssertionError("hack/versions.env pins no NIFI_VERSION")


NIFI_VERSION = _nifi_version()
STANDARD = {"group": "org.apache.nifi", "artifact": "nifi-standard-nar", "version": NIFI_VERSION}
UPDATE_ATTRIBUTE = {"group": "org.apache.nifi", "artifact": "nifi-update-attribute-nar", "version": NIFI_VERSION}
_positions = itertools.count()


def _id() -> str:
    return str(uuid.uuid4())


def processor(name: str, kind: str, properties: dict[str, Any], **fields: Any) -> dict[str, Any]:
    bundle = UPDATE_ATTRIBUTE if kind == "UpdateAttribute" else STANDARD
    package = (
        "org.apache.nifi.processors.attributes" if kind == "UpdateAttribute" else "org.apache.nifi.processors.standard"
    )
    return {
        "identifier": _id(),
        "instanceIdentifier": _id(),
        "name": name,
        "comments": "",
        "position": {"x": float(next(_positions)), "y": 0.0},
        "type": f"{package}.{kind}",
        "bundle": dict(bundle),
        "properties": properties,
        "propertyDescriptors": {
            p: {"name": p, "displayName": p, "identifiesControllerService": False, "sensitive": False, "dynamic": False}
            for p in properties
        },
        "style": {},
        "schedulingPeriod": "0 sec",
        "schedulingStrategy": "TIMER_DRIVEN",
        "executionNode": "ALL",
        "penaltyDuration": "30 sec",
        "yieldDuration": "1 sec",
        "bulletinLevel": "WARN",
        "runDurationMillis": 0,
        "concurrentlySchedulableTaskCount": 1,
        "autoTerminatedRelationships": [],
        "scheduledState": "ENABLED",
        "retryCount": 10,
        "retriedRelationships": [],
        "backoffMechanism": "PENALIZE_FLOWFILE",
        "maxBackoffPeriod": "10 mins",
        "componentType": "PROCESSOR",
        **fields,
    }


def connection(source: dict[str, Any], destination: dict[str, Any], relationships: list[str]) -> dict[str, Any]:
    def end(component: dict[str, Any]) -> dict[str, Any]:
        return {"id": component["identifier"], "type": "PROCESSOR", "groupId": "root", "name": component["name"]}

    return {
        "identifier": _id(),
        "instanceIdentifier": _id(),
        "name": "",
        "source": end(source),
        "destination": end(destination),
        "labelIndex": 1,
        "zIndex": 0,
        "selectedRelationships": relationships,
        "backPressureObjectThreshold": 10000,
        "backPressureDataSizeThreshold": "1 GB",
        "flowFileExpiration": "0 sec",
        "prioritizers": [],
        "bends": [],
        "loadBalanceStrategy": "DO_NOT_LOAD_BALANCE",
        "partitioningAttribute": "",
        "loadBalanceCompression": "DO_NOT_COMPRESS",
        "componentType": "CONNECTION",
    }


def generate_update_log(name: str = "ingest", file_size: str = "0B") -> dict[str, Any]:
    """GenerateFlowFile -> UpdateAttribute -> LogAttribute, as a downloaded definition."""
    generate = processor(
        "Generate", "GenerateFlowFile", {"File Size": file_size, "Batch Size": "1"}, schedulingPeriod="1 min"
    )
    update = processor("Tag", "UpdateAttribute", {"source": "#{source}"})
    log = processor("Log", "LogAttribute", {"Log Level": "info"}, autoTerminatedRelationships=["success"])
    return {
        "flowContents": {
            "identifier": _id(),
            "instanceIdentifier": _id(),
            "name": name,
            "comments": "",
            "position": {"x": 0.0, "y": 0.0},
            "processGroups": [],
            "remoteProcessGroups": [],
            "processors": [generate, update, log],
            "inputPorts": [],
            "outputPorts": [],
            "connections": [connection(generate, update, ["success"]), connection(update, log, ["success"])],
            "labels": [],
            "funnels": [],
            "controllerServices": [],
            "parameterContextName": name,
            "defaultFlowFileExpiration": "0 sec",
            "defaultBackPressureObjectThreshold": 10000,
            "defaultBackPressureDataSizeThreshold": "1 GB",
            "flowFileConcurrency": "UNBOUNDED",
            "flowFileOutboundPolicy": "STREAM_WHEN_AVAILABLE",
            "componentType": "PROCESS_GROUP",
        },
        "externalControllerServices": {},
        "parameterContexts": {
            name: {"name": name, "parameters": [{"name": "source", "sensitive": False, "value": "test"}]}
        },
        "flowEncodingVersion": "1.0",
        "parameterProviders": {},
        "latest": False,
    }


def redeployed(definition: dict[str, Any]) -> dict[str, Any]:
    """The same flow as NiFi would download it from another deployment: new ids, moved on the canvas."""
    copied = copy.deepcopy(definition)
    renamed: dict[str, str] = {}

    def fresh(node: Any) -> None:
        if isinstance(node, dict):
            for field in ("identifier", "instanceIdentifier"):
                if field in node:
                    renamed[node[field]] = renamed.get(node[field]) or _id()
                    node[field] = renamed[node[field]]
            if "position" in node:
                node["position"] = {"x": node["position"]["x"] + 100, "y": 7.0}
            for value in node.values():
                fresh(value)
        elif isinstance(node, list):
            for value in node:
                fresh(value)

    fresh(copied)

    def relink(node: Any) -> None:
        if isinstance(node, dict):
            for side in ("source", "destination"):
                for field in ("id", "groupId"):
                    if isinstance(node.get(side), dict) and node[side].get(field) in renamed:
                        node[side][field] = renamed[node[side][field]]
            for field, value in node.get("properties", {}).items() if isinstance(node.get("properties"), dict) else []:
                if value in renamed:
                    node["properties"][field] = renamed[value]
            for value in node.values():
                relink(value)
        elif isinstance(node, list):
            for value in node:
                relink(value)

    relink(copied)
    return copied
