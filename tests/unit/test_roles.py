"""The operator's roles in config/kustomize/base grant each controller exactly the calls it makes.

What each controller calls: kopf lists and watches its kind, the resync lists
its metadata (and gets an object the watch did not bring), core/kube.py
patches finalizers and status and creates Events, core/connections.py and
core/references.py get Secrets (and, for NiFi flow definitions, ConfigMaps),
and leader election gets, creates and updates its Lease. The integration suite
runs the operator under these same roles, so a rule missing here fails it;
this test fails on a rule too many.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

RBAC = Path(__file__).resolve().parents[2] / "config" / "kustomize" / "base" / "rbac"
MANAGER = RBAC.parent / "manager"
KINDS = {"kafka": "kafkatopics", "elasticsearch": "elasticsearchindices", "nifi": "nififlows"}
Grants = dict[tuple[str, str, str], set[str]]  # (apiGroup, resource, resourceName or "") -> verbs


def documents(folder: Path) -> Iterator[dict[str, Any]]:
    for path in sorted(folder.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            yield from (doc for doc in yaml.safe_load_all(path.read_text()) if doc)


def find(kind: str, name: str, folder: Path = RBAC) -> dict[str, Any]:
    found = [doc for doc in documents(folder) if doc["kind"] == kind and doc["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind} {name}: {len(found)} found"
    return found[0]


def grants(role: dict[str, Any]) -> Grants:
    granted: Grants = {}
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for name in rule.get("resourceNames") or [""]:
                    granted.setdefault((group, resource, name), set()).update(rule["verbs"])
    return granted


def expected_cluster_grants(controller: str) -> Grants:
    plural = KINDS[controller]
    expected: Grants = {
        ("infometis.io", plural, ""): {"get", "list", "watch", "patch"},
        ("infometis.io", f"{plural}/status", ""): {"patch"},
        ("", "events", ""): {"create"},
        ("", "secrets", ""): {"get"},
        ("infometis.io", "changeapprovals", ""): {"list", "watch"},
        ("infometis.io", "changeapprovals/status", ""): {"patch"},
        ("apps", "controllerrevisions", ""): {"create", "get", "list", "delete"},
    }
    if controller == "nifi":
        expected[("", "configmaps", "")] = {"get"}
    return expected


def test_no_role_uses_a_wildcard() -> None:
    for doc in documents(RBAC):
        for rule in doc.get("rules", []):
            for field in ("apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs"):
                assert "*" not in rule.get(field, []), f"{doc['kind']} {doc['metadata']['name']}: {field} has *"


@pytest.mark.parametrize("controller", KINDS)
def test_each_controller_may_make_only_its_own_calls(controller: str) -> None:
    role = find("ClusterRole", f"infometis-{controller}")
    assert grants(role) == expected_cluster_grants(controller)


@pytest.mark.parametrize("controller", KINDS)
def test_each_controller_may_touch_only_its_own_lease(controller: str) -> None:
    role = find("Role", f"infometis-{controller}-leader-election")
    assert role["metadata"]["namespace"] == "infometis-system"
    # create cannot be held to a name (the object does not exist yet); get and update are.
    assert grants(role) == {
        ("coordination.k8s.io", "leases", f"infometis-{controller}"): {"get", "update"},
        ("coordination.k8s.io", "leases", ""): {"create"},
    }


@pytest.mark.parametrize("controller", KINDS)
def test_each_controller_runs_as_its_own_service_account_bound_to_its_own_roles(controller: str) -> None:
    name = f"infometis-{controller}"
    account = {"kind": "ServiceAccount", "name": name, "namespace": "infometis-system"}
    assert find("ClusterRoleBinding", name)["subjects"] == [account]
    assert find("ClusterRoleBinding", name)["roleRef"]["name"] == name
    binding = find("RoleBinding", f"{name}-leader-election")
    assert binding["subjects"] == [account] and binding["roleRef"]["name"] == f"{name}-leader-election"
    pod = find("Deployment", name, MANAGER)["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == name
    assert pod["containers"][0]["args"][:2] == ["--controllers", controller]


def test_users_roles_only_read_or_edit_the_kinds() -> None:
    for doc in documents(RBAC):
        name = doc["metadata"]["name"]
        if not (name.endswith("-viewer") or name.endswith("-editor")):
            continue
        allowed = {"get", "list", "watch"} | (
            {"create", "update", "patch", "delete", "deletecollection"} if name.endswith("-editor") else set()
        )
        for (group, resource, _), verbs in grants(doc).items():
            kinds = {*KINDS.values(), "changeapprovals"} if name.endswith("-viewer") else set(KINDS.values())
            assert group == "infometis.io" and resource.split("/")[0] in kinds, (name, resource)
            assert verbs <= (allowed if "/" not in resource else {"get", "list", "watch"}), (name, resource, verbs)
        aggregate = doc["metadata"]["labels"]
        assert (
            aggregate.get(
                "rbac.authorization.k8s.io/aggregate-to-view"
                if name.endswith("-viewer")
                else "rbac.authorization.k8s.io/aggregate-to-edit"
            )
            == "true"
        )


def test_only_the_approver_role_may_create_approvals_and_no_built_in_role_includes_it() -> None:
    creators = [
        doc["metadata"]["name"]
        for doc in documents(RBAC)
        if "rules" in doc and "create" in grants(doc).get(("infometis.io", "changeapprovals", ""), set())
    ]
    assert creators == ["infometis-change-approver"]
    approver = find("ClusterRole", "infometis-change-approver")
    assert not approver["metadata"].get("labels"), "aggregated into a built-in role: editors could approve"
