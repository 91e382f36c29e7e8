"""Who owns a service resource that several objects claim (pure).

Objects claim an external resource by name (a topic name, an index name).
Two claims conflict only on the same service instance, and the instance of
another object is taken from what that object recorded in its status
(`status.clusterId`) when it last reached its service: deciding ownership
contacts no other object's service and reads no other object's Secret, so
one tenant's unreachable cluster or deleted Secret cannot slow or break
another tenant's reconcile.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

RESOURCE_CONFLICT = "ResourceConflict"


def _ready_reason(body: Mapping[str, Any]) -> str | None:
    status = body.get("status") or {}
    ready = next((c for c in status.get("conditions", []) if c.get("type") == "Ready"), None)
    return None if ready is None else ready.get("reason")


def _connection_ref(body: Mapping[str, Any]) -> tuple[str, str | None]:
    """Where an object's connection comes from: its namespace's Secret, or the default (None)."""
    ref = (body.get("spec") or {}).get("clusterRef")
    if not ref:
        return ("", None)
    return (body["metadata"]["namespace"], ref.get("name"))


def _on_same_instance(body: Mapping[str, Any], peer: Mapping[str, Any], instance: str) -> bool:
    recorded = (peer.get("status") or {}).get("clusterId")
    if recorded is not None:
        return bool(recorded == instance)
    # A peer that never reached its service: the same only if it names the same connection.
    return _connection_ref(peer) == _connection_ref(body)


def claim_order(body: Mapping[str, Any]) -> tuple[bool, str, str, str]:
    """Who owns a contested resource: the object already managing it, else the oldest.

    creationTimestamp has one-second resolution, so two objects made in the
    same second would otherwise be ordered by name, and a newcomer could
    unseat the object that manages the resource.
    """
    meta = body["metadata"]
    status = body.get("status") or {}
    incumbent = status.get("lastAppliedGeneration") is not None and _ready_reason(body) != RESOURCE_CONFLICT
    return (not incumbent, meta.get("creationTimestamp", ""), meta["namespace"], meta["name"])


def owner_other_than(body: Mapping[str, Any], peers: Iterable[Mapping[str, Any]], instance: str) -> str | None:
    """`namespace/name` of the object that owns this object's claim on `instance`, if another one does."""
    contenders = [body]
    for peer in peers:
        if peer["metadata"].get("deletionTimestamp"):
            continue
        if _on_same_instance(body, peer, instance):
            contenders.append(peer)
    oldest = min(contenders, key=claim_order)
    if oldest is body:
        return None
    return f"{oldest['metadata']['namespace']}/{oldest['metadata']['name']}"
