"""The NiFiFlow custom resource: spec and status models, and the CRD's names,
printer columns and CEL rules. crds/ is generated from this file.

The flow is a flow definition exactly as NiFi exports it ("Download flow
definition"), inline or from a ConfigMap key, so a team commits what it
exported from its NiFi and the operator keeps a process group equal to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from pydantic import ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from controllers.core.crd import CrdInfo, PrinterColumn
from controllers.core.model import CamelModel, CommonSpec, CommonStatus
from controllers.core.objects import ResourceInfo
from controllers.core.policy import EVERY_OTHER_NAMESPACE, KindPolicy

RESOURCE = ResourceInfo(group="infometis.io", version="v1alpha1", plural="nififlows", kind="NiFiFlow")
FINALIZER = "infometis.io/nififlow-deletion"
# NiFi's rule for parameter names.
PARAMETER_NAME_PATTERN = r"^[a-zA-Z0-9 ._-]+$"
MAX_PARAMETERS = 500
MAX_PROCESS_GROUP_NAME_LENGTH = 250
KUBERNETES_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"


class FlowState(StrEnum):
    RUNNING = "Running"
    STOPPED = "Stopped"


class UpdateStrategy(StrEnum):
    DRAIN = "Drain"
    DROP = "Drop"


class FlowDeletionPolicy(StrEnum):
    RETAIN = "Retain"
    DELETE = "Delete"


def _one_of(first: str, second: str, what: str) -> dict[str, str]:
    return {
        "rule": f"has(self.{first}) != has(self.{second})",
        "message": f"{what}: set exactly one of {first} and {second}",
    }


class ConfigMapKeyRef(CamelModel):
    name: str = Field(min_length=1, max_length=253, pattern=KUBERNETES_NAME_PATTERN, description="A ConfigMap here.")
    key: str = Field(min_length=1, max_length=253, description="The key holding the flow definition (JSON).")


class SecretKeyRef(CamelModel):
    name: str = Field(min_length=1, max_length=253, pattern=KUBERNETES_NAME_PATTERN, description="A Secret here.")
    key: str = Field(min_length=1, max_length=253, description="The key holding the value.")


class Parameter(CamelModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.value) != has(self.secretKeyRef)",
                    "message": "a parameter: set exactly one of value and secretKeyRef",
                }
            ]
        },
    )
    name: str = Field(
        min_length=1, max_length=256, pattern=PARAMETER_NAME_PATTERN, description="The parameter, as #{name} uses it."
    )
    value: str | None = Field(default=None, description="A plain value, shown in NiFi and in this object.")
    secret_key_ref: SecretKeyRef | None = Field(
        default=None,
        description=(
            "A sensitive value, read from a Secret key: set as a sensitive parameter, shown nowhere; a change "
            "of the Secret is applied within one resync."
        ),
    )
    description: str | None = Field(default=None, max_length=4096)

    @model_validator(mode="after")
    def _value_or_secret(self) -> Parameter:
        if (self.value is None) == (self.secret_key_ref is None):
            raise ValueError(f"parameter {self.name!r}: set exactly one of value and secretKeyRef")
        return self


class NiFiFlowSpec(CommonSpec):
    process_group_name: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_PROCESS_GROUP_NAME_LENGTH,
        description="The process group's name; metadata.name when absent. Immutable.",
    )
    parent_process_group_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        pattern=r"^[0-9a-fA-F-]+$",
        description="The id of the process group the flow's group is placed in; NiFi's root group when absent.",
    )
    flow_definition: dict[str, Any] | None = Field(
        default=None,
        description="The flow definition as NiFi exports it (flowContents, parameterContexts, ...).",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )
    flow_definition_ref: ConfigMapKeyRef | None = Field(
        default=None, description="A ConfigMap key holding the flow definition, instead of flowDefinition."
    )
    parameters: list[Parameter] = Field(
        default_factory=list,
        max_length=MAX_PARAMETERS,
        description="The values of the flow's parameter context, which the operator creates and owns.",
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
        },
    )
    state: FlowState = Field(default=FlowState.RUNNING, description="Running (default) or Stopped.")
    update_strategy: UpdateStrategy = Field(
        default=UpdateStrategy.DRAIN,
        description=(
            "How a changed flow replaces the running one. Drain (default): stop the sources and wait until the "
            "queues are empty (at most drainTimeoutSeconds, then stall); Drop: stop and empty the queues."
        ),
    )
    drain_timeout_seconds: int = Field(
        default=300, ge=1, le=86_400, description="How long Drain waits for the queues to empty."
    )
    deletion_policy: FlowDeletionPolicy = Field(  # type: ignore[assignment]
        default=FlowDeletionPolicy.DELETE,
        description=(
            "What deleting this object does. Delete (default): stop the flow, drain or drop its queues as "
            "updateStrategy says, remove the process group and the parameter context it owns. Retain leaves them."
        ),
    )

    @model_validator(mode="after")
    def _one_flow(self) -> NiFiFlowSpec:
        if (self.flow_definition is None) == (self.flow_definition_ref is None):
            raise ValueError("set exactly one of flowDefinition and flowDefinitionRef")
        return self


class NiFiFlowStatus(CommonStatus):
    process_group_name: str | None = Field(default=None, description="The flow's process group, by name.")
    process_group_id: str | None = Field(default=None, description="NiFi's id of the flow's process group.")
    definition_digest: str | None = Field(
        default=None,
        description="A digest of the deployed flow definition's content and parameters (no sensitive value).",
    )
    state: str | None = Field(default=None, description="Running, Stopped or Invalid, as observed.")
    sensitive_version: str | None = Field(
        default=None,
        description=(
            "A digest of the versions of the Secrets whose values were last set as sensitive parameters (not of "
            "the values): NiFi never shows a sensitive value, so a changed Secret is noticed by its version."
        ),
    )
    drain_started_at: str | None = Field(
        default=None, description="When the drain before a replacement began (RFC 3339); present while it runs."
    )


class NiFiFlowPolicy(KindPolicy):
    """The tenancy policy's `nififlows` section (see controllers.core.policy)."""

    restricted_component_namespaces: list[str] = Field(
        default_factory=list,
        description=(
            "Namespaces whose flows may use NiFi's restricted components (ExecuteProcess, ExecuteScript, GetFile, "
            "PutFile, ...: they run commands and read or write files on NiFi's hosts); '*' for every namespace. "
            "Empty (the default, with or without a policy file): none may. NiFi asks a user for a special right "
            "to add them; the operator holds every right, so without this any namespace could use its rights."
        ),
    )

    shared_controller_service_namespaces: list[str] = Field(
        default_factory=list,
        description=(
            "Namespaces whose flows may use controller services they do not define: those of NiFi's root or "
            "parent groups, with the credentials they hold (a database pool, an SSL context); '*' for every "
            "namespace. Empty (the default, with or without a policy file): none may."
        ),
    )

    def restricted_refusal(self, namespace: str, restricted: list[str]) -> str | None:
        """Why this namespace may not deploy these restricted components (described for a message); None if it may."""
        if not restricted or _named(namespace, self.restricted_component_namespaces):
            return None
        return (
            f"the flow uses NiFi's restricted component(s) {', '.join(restricted)}, which run commands or touch "
            f"files on NiFi's hosts; the tenancy policy (nififlows.restrictedComponentNamespaces) does not allow "
            f"them in namespace {namespace}"
        )

    def shared_services_refusal(self, namespace: str, outside: list[str]) -> str | None:
        """Why this namespace may not use controller services from outside its flow; None if it may."""
        if not outside or _named(namespace, self.shared_controller_service_namespaces):
            return None
        return (
            f"the flow names controller services it does not define ({', '.join(outside)}), which NiFi would "
            f"lend it from a parent group with their credentials; the tenancy policy "
            f"(nififlows.sharedControllerServiceNamespaces) does not allow that in namespace {namespace}"
        )


def _named(namespace: str, namespaces: list[str]) -> bool:
    return namespace in namespaces or EVERY_OTHER_NAMESPACE in namespaces


def process_group_name_of(body: Mapping[str, Any]) -> str:
    """spec.processGroupName, else metadata.name (read from the raw object, so it works for any peer)."""
    return str((body.get("spec") or {}).get("processGroupName") or body["metadata"]["name"])


_RULES = (
    {
        "rule": (
            "(has(self.spec.processGroupName) ? self.spec.processGroupName : self.metadata.name) == "
            "(has(oldSelf.spec.processGroupName) ? oldSelf.spec.processGroupName : oldSelf.metadata.name)"
        ),
        "message": "the process group name (spec.processGroupName, or metadata.name when absent) is immutable",
    },
    {
        "rule": (
            "(has(self.spec.parentProcessGroupId) ? self.spec.parentProcessGroupId : '') == "
            "(has(oldSelf.spec.parentProcessGroupId) ? oldSelf.spec.parentProcessGroupId : '')"
        ),
        "message": "spec.parentProcessGroupId is immutable: a flow is not moved between groups",
    },
    _one_of("spec.flowDefinition", "spec.flowDefinitionRef", "the flow"),
)

CRD = CrdInfo(
    resource=RESOURCE,
    singular="nififlow",
    short_names=("inf",),
    categories=("infometis",),
    spec_model=NiFiFlowSpec,
    status_model=NiFiFlowStatus,
    description="An Apache NiFi flow, deployed from a flow definition and kept as declared.",
    printer_columns=(
        PrinterColumn("Process Group", "string", ".status.processGroupName"),
        PrinterColumn("State", "string", ".status.state"),
        PrinterColumn("Ready", "string", '.status.conditions[?(@.type=="Ready")].status'),
        PrinterColumn("Reason", "string", '.status.conditions[?(@.type=="Ready")].reason'),
        PrinterColumn("Plan", "string", ".status.plan.digest", priority=1),
        PrinterColumn("Age", "date", ".metadata.creationTimestamp"),
    ),
    root_validations=_RULES,
)
