"""A short history of the specs each object had applied, as ControllerRevisions (pure).

When an object's spec changes, the spec it replaces, if it was applied, is
recorded as a ControllerRevision in the object's namespace (revision = its
generation), owned by the object so Kubernetes deletes them with it; the last
HISTORY are kept. (Recorded when replaced rather than when applied: creating
thousands of objects records nothing, and only a replaced spec is one to go
back to.) The annotation infometis.io/rollback-to-revision: "N"
makes the operator apply revision N's spec to the service instead of the
object's own, until it is removed: the service-side rollback (Git's revert is
the spec-side one).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from controllers.core.objects import ResourceInfo

ROLLBACK_ANNOTATION = "infometis.io/rollback-to-revision"
OWNER_LABEL = "infometis.io/owner-uid"
HISTORY = 10

# Ready-condition reasons while an object serves an earlier revision, and when it cannot.
ROLLED_BACK_TO_REVISION = "RolledBackToRevision"
REVISION_NOT_FOUND = "RevisionNotFound"


def revision_name(resource: ResourceInfo, name: str, revision: int) -> str:
    return f"{name[:200]}-{resource.kind.lower()}-{revision}"


def revision_body(resource: ResourceInfo, body: Mapping[str, Any]) -> dict[str, Any]:
    """The ControllerRevision recording `body`'s spec at its generation."""
    meta = body["metadata"]
    return {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {
            "name": revision_name(resource, meta["name"], meta["generation"]),
            "namespace": meta["namespace"],
            "labels": {OWNER_LABEL: meta["uid"]},
            "ownerReferences": [
                {
                    "apiVersion": resource.api_version,
                    "kind": resource.kind,
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                }
            ],
        },
        "revision": meta["generation"],
        "data": {"spec": copy.deepcopy(body.get("spec") or {})},
    }


def requested_revision(body: Mapping[str, Any]) -> int | str | None:
    """The revision the rollback annotation asks for; the raw text when it is not a revision number."""
    text = ((body["metadata"].get("annotations") or {}).get(ROLLBACK_ANNOTATION) or "").strip()
    if not text:
        return None
    return int(text) if text.isdigit() and int(text) > 0 else text


def beyond_history(revisions: Sequence[Mapping[str, Any]]) -> list[str]:
    """The names of the revisions older than the last HISTORY."""
    ordered = sorted(revisions, key=lambda r: int(r.get("revision") or 0), reverse=True)
    return [str(r["metadata"]["name"]) for r in ordered[HISTORY:]]
