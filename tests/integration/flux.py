"""The stack's Flux as the tests use it: a branch of the stack's Git repository, and Flux's objects.

`hack/stack start flux` runs source-controller and kustomize-controller (the
real ones, built from their modules) and a Git server on loopback whose one
repository is FLUX_GIT_URL. Each test module works on a branch of its own,
named like every test resource, so modules never see each other's commits.
"""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client

SOURCE_GROUP, SOURCE_VERSION, GIT_REPOSITORIES = "source.toolkit.fluxcd.io", "v1", "gitrepositories"
KUSTOMIZE_GROUP, KUSTOMIZE_VERSION, KUSTOMIZATIONS = "kustomize.toolkit.fluxcd.io", "v1", "kustomizations"
REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"
# What a test module names its namespace and branch (helpers.unique("flux")).
MODULE_NAME = re.compile(r"^flux-[0-9a-f]{8}$")


def git(folder: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-c", "user.name=infometis tests", "-c", "user.email=tests@infometis.invalid", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, f"git {' '.join(args)} failed: {result.stderr}"
    return result.stdout.strip()


@dataclass(frozen=True)
class Branch:
    """A working copy whose commits go to one branch of the stack's repository, as a user's would."""

    folder: Path
    name: str

    @classmethod
    def create(cls, url: str, folder: Path, name: str) -> Branch:
        folder.mkdir(parents=True)
        git(folder, "init", "--quiet", "--initial-branch", name)
        git(folder, "remote", "add", "origin", url)
        branch = cls(folder, name)
        branch.commit({"README.md": f"Manifests of the Flux tests' branch {name}.\n"}, "Start the branch")
        return branch

    def commit(self, files: dict[str, str], message: str) -> str:
        """Write the files (paths relative to the repository), commit and push them; the commit's SHA."""
        for path, text in files.items():
            (self.folder / path).parent.mkdir(parents=True, exist_ok=True)
            (self.folder / path).write_text(text)
        git(self.folder, "add", "--all")
        git(self.folder, "commit", "--quiet", "--message", message)
        git(self.folder, "push", "--quiet", "origin", f"HEAD:refs/heads/{self.name}")
        return git(self.folder, "rev-parse", "HEAD")

    def delete_remote(self) -> None:
        git(self.folder, "push", "--quiet", "origin", "--delete", self.name)

    def sweep_leftovers(self) -> list[str]:
        """Delete what a module run cut short left: its branch, and its namespace, whose Kustomizations
        would otherwise go on applying that branch's topics after the session sweep deleted them."""
        heads = git(self.folder, "ls-remote", "--heads", "origin").splitlines()
        branches = [line.split("refs/heads/")[1] for line in heads]
        namespaces = [n.metadata.name for n in client.CoreV1Api().list_namespace().items]
        left = sorted({*branches, *namespaces} - {self.name})
        for name in filter(MODULE_NAME.match, left):
            if name in namespaces:
                client.CoreV1Api().delete_namespace(name)
            if name in branches:
                git(self.folder, "push", "--quiet", "origin", "--delete", name)
        return [name for name in left if MODULE_NAME.match(name)]


def git_repository(name: str, url: str, branch: str, interval: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{SOURCE_GROUP}/{SOURCE_VERSION}",
        "kind": "GitRepository",
        "metadata": {"name": name},
        "spec": {"interval": interval, "url": url, "ref": {"branch": branch}, "timeout": "20s"},
    }


def kustomization(
    name: str, source: str, path: str, target_namespace: str, interval: str, timeout: str
) -> dict[str, Any]:
    """A Kustomization as a platform team writes one: prune, wait for every object's health."""
    return {
        "apiVersion": f"{KUSTOMIZE_GROUP}/{KUSTOMIZE_VERSION}",
        "kind": "Kustomization",
        "metadata": {"name": name},
        "spec": {
            "interval": interval,
            "retryInterval": interval,
            "path": path,
            "prune": True,
            "wait": True,
            "timeout": timeout,
            "sourceRef": {"kind": "GitRepository", "name": source},
            "targetNamespace": target_namespace,
        },
    }


def get_kustomization(namespace: str, name: str) -> dict[str, Any]:
    obj: dict[str, Any] = client.CustomObjectsApi().get_namespaced_custom_object(
        KUSTOMIZE_GROUP, KUSTOMIZE_VERSION, namespace, KUSTOMIZATIONS, name
    )
    return obj


def request_reconcile(namespace: str, git_repository_name: str) -> None:
    """What `flux reconcile source git` does: ask source-controller to fetch now, not at its next interval."""
    client.CustomObjectsApi().patch_namespaced_custom_object(
        SOURCE_GROUP,
        SOURCE_VERSION,
        namespace,
        GIT_REPOSITORIES,
        git_repository_name,
        {"metadata": {"annotations": {REQUESTED_AT: str(time.time_ns())}}},
    )


def ready_for(kustomization: dict[str, Any], sha: str) -> tuple[str, str, str] | None:
    """(status, reason, message) of Ready once the Kustomization has handled the commit `sha`."""
    status = kustomization.get("status") or {}
    if not str(status.get("lastAttemptedRevision", "")).endswith(f"sha1:{sha}"):
        return None
    if status.get("observedGeneration") != kustomization["metadata"]["generation"]:
        return None
    ready = next((c for c in status.get("conditions", []) if c["type"] == "Ready"), None)
    if ready is None or ready["status"] == "Unknown":  # still applying or health-checking
        return None
    return ready["status"], ready["reason"], ready["message"]
