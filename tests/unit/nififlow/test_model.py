"""The NiFiFlow spec refuses what cannot be deployed, the same way at admission and when parsed."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from controllers.core.crd import crd_manifest
from controllers.nififlow.model import CRD, FlowDeletionPolicy, FlowState, NiFiFlowPolicy, NiFiFlowSpec, UpdateStrategy


def test_defaults_run_the_flow_drain_on_update_and_delete_with_the_object() -> None:
    spec = NiFiFlowSpec.model_validate({"flowDefinition": {"flowContents": {}}})
    assert (spec.state, spec.update_strategy, spec.deletion_policy) == (
        FlowState.RUNNING,
        UpdateStrategy.DRAIN,
        FlowDeletionPolicy.DELETE,
    )


@pytest.mark.parametrize(
    "spec",
    [
        {},
        {"flowDefinition": {"flowContents": {}}, "flowDefinitionRef": {"name": "flows", "key": "ingest.json"}},
        {"flowDefinition": {}, "parameters": [{"name": "a"}]},
        {"flowDefinition": {}, "parameters": [{"name": "a", "value": "1", "secretKeyRef": {"name": "s", "key": "k"}}]},
        {"flowDefinition": {}, "parameters": [{"name": "a/b", "value": "1"}]},
    ],
)
def test_a_flow_needs_one_definition_and_each_parameter_one_value(spec: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        NiFiFlowSpec.model_validate(spec)


def test_the_crd_states_the_same_rules_for_the_api_server() -> None:
    schema = crd_manifest(CRD)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    rules = [rule["rule"] for rule in schema["x-kubernetes-validations"]]
    assert "has(self.spec.flowDefinition) != has(self.spec.flowDefinitionRef)" in rules
    parameter = schema["properties"]["spec"]["properties"]["parameters"]["items"]
    assert parameter["x-kubernetes-validations"][0]["rule"] == "has(self.value) != has(self.secretKeyRef)"
    assert schema["properties"]["spec"]["properties"]["flowDefinition"]["x-kubernetes-preserve-unknown-fields"]


def test_restricted_components_are_refused_unless_the_policy_names_the_namespace() -> None:
    restricted = ["processor Run"]
    assert "restrictedComponentNamespaces" in (NiFiFlowPolicy().restricted_refusal("team-a", restricted) or "")
    assert NiFiFlowPolicy().restricted_refusal("team-a", []) is None
    named = NiFiFlowPolicy.model_validate({"restrictedComponentNamespaces": ["team-a"]})
    assert named.restricted_refusal("team-a", restricted) is None
    assert named.restricted_refusal("team-b", restricted) is not None
    every = NiFiFlowPolicy.model_validate({"restrictedComponentNamespaces": ["*"]})
    assert every.restricted_refusal("team-b", restricted) is None


def test_controller_services_from_outside_the_flow_are_refused_unless_the_policy_names_the_namespace() -> None:
    outside = ["processor Query property 'Database Connection Pooling Service'"]
    refusal = NiFiFlowPolicy().shared_services_refusal("team-a", outside) or ""
    assert "sharedControllerServiceNamespaces" in refusal and "Database Connection Pooling Service" in refusal
    assert NiFiFlowPolicy().shared_services_refusal("team-a", []) is None
    named = NiFiFlowPolicy.model_validate({"sharedControllerServiceNamespaces": ["team-a"]})
    assert named.shared_services_refusal("team-a", outside) is None
    assert named.shared_services_refusal("team-b", outside) is not None
