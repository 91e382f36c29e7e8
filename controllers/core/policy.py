"""The platform team's tenancy policy: what each namespace may make the operator do (pure).

The operator holds administrative rights on every service it manages, and
anyone who may create an object in any namespace directs those rights. A
policy file (YAML, one section per kind, typically a ConfigMap kept in Git and
mounted into the operator) narrows that: which namespaces may use the
operator's default connection, which resource-name prefixes each namespace may
manage, and kind-specific limits. Without a policy file every namespace may
manage any resource, as in a single-tenant installation.

    kafkatopics:
      defaultConnectionNamespaces: [team-a, team-b]
      namespaces:
        team-a: {namePrefixes: ["team-a."]}
        team-b: {namePrefixes: ["team-b.", "shared.b."]}
        "*": {namePrefixes: ["sandbox."]}    # every other namespace
      allowedConfigKeys: [retention.ms, cleanup.policy]
      maxPartitions: 64
      manualApprovalNamespaces: [payments]   # every change there waits for a ChangeApproval
      destructiveChangesNeedApproval: true   # deletions (deletionPolicy: Delete) and the like, everywhere

An object outside its namespace's rights stalls with reason NotPermitted
before any service call, and its deletion never touches the resource.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError

from controllers.core.model import CamelModel, CommonSpec

NOT_PERMITTED = "NotPermitted"
EVERY_OTHER_NAMESPACE = "*"


class PolicyFileInvalid(Exception):
    """The policy file cannot be read or does not match the policy schema."""


class NamespaceRights(CamelModel):
    name_prefixes: list[str] = Field(
        description="The resource names (topic names, ...) this namespace may manage start with one of these."
    )


class KindPolicy(CamelModel):
    default_connection_namespaces: list[str] | None = Field(
        default=None,
        description="Namespaces whose objects may use the operator's default connection; unset: every namespace.",
    )
    namespaces: dict[str, NamespaceRights] | None = Field(
        default=None,
        description=(
            "What each namespace may manage; '*' holds the rights of every namespace not listed, and "
            "without it a namespace not listed manages nothing. Unset: no limit."
        ),
    )

    manual_approval_namespaces: list[str] = Field(
        default_factory=list,
        description="Namespaces where every change waits for a ChangeApproval, whatever spec.approval says.",
    )
    destructive_changes_need_approval: bool = Field(
        default=False,
        description=(
            "Changes that cannot be taken back (a deletion with deletionPolicy: Delete, an index migration, a "
            "flow replacement that drops queued data) wait for a ChangeApproval in every namespace."
        ),
    )

    def refusal(self, namespace: str, resource_name: str, spec: CommonSpec) -> str | None:
        """Why this object may not be acted on, in a sentence; None when it may."""
        defaults = self.default_connection_namespaces
        if spec.cluster_ref is None and defaults is not None and namespace not in defaults:
            return (
                f"namespace {namespace} may not use the operator's default connection (tenancy policy "
                "defaultConnectionNamespaces); name a connection Secret in spec.clusterRef"
            )
        if self.namespaces is not None:
            rights = self.namespaces.get(namespace) or self.namespaces.get(EVERY_OTHER_NAMESPACE)
            if rights is None:
                return f"the tenancy policy gives namespace {namespace} no names to manage"
            if not any(resource_name.startswith(prefix) for prefix in rights.name_prefixes):
                allowed = ", ".join(repr(p) for p in rights.name_prefixes)
                return (
                    f"namespace {namespace} may only manage names starting with {allowed} (tenancy policy), "
                    f"not {resource_name!r}"
                )
        return None


def load_policies(path: Path | None, models: Mapping[str, type[KindPolicy]]) -> dict[str, KindPolicy]:
    """Each kind's policy (by plural, e.g. 'kafkatopics') from the file; unrestricted without one.

    `models` names every kind the operator knows, not only those this process runs, so one file
    serves every controller. A section for no known kind or a misspelt field stops the operator
    at start: a typo must not silently turn a restriction off.
    """
    sections: Any = {}
    if path is not None:
        try:
            sections = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as error:
            raise PolicyFileInvalid(f"cannot read the tenancy policy {path}: {error}") from None
    if not isinstance(sections, dict):
        raise PolicyFileInvalid(f"the tenancy policy {path} must map kind plurals (e.g. kafkatopics) to policies")
    unknown = set(sections) - set(models)
    if unknown:
        raise PolicyFileInvalid(f"the tenancy policy {path} names kinds this operator does not know: {sorted(unknown)}")
    try:
        return {plural: model.model_validate(sections.get(plural) or {}) for plural, model in models.items()}
    except ValidationError as error:
        raise PolicyFileInvalid(f"the tenancy policy {path} is invalid: {error}") from None
