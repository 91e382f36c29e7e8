"""A deployed flow is bound to the parameter context its object owns, never to one the definition names."""

from __future__ import annotations

import copy

import pytest

from controllers.nififlow.definition import context_name, prepare
from controllers.nififlow.normalise import FlowDefinitionInvalid, differences, flow_content, flow_contents
from tests.nifi_flows import generate_update_log

OWNED = context_name("team-a", "ingest")


def test_every_group_is_bound_to_the_owned_context_and_the_definitions_contexts_are_dropped() -> None:
    flow = generate_update_log()
    child = copy.deepcopy(generate_update_log("other-team-secrets")["flowContents"])
    flow["flowContents"]["processGroups"] = [child]
    flow["parameterContexts"]["other-team-secrets"] = {
        "name": "other-team-secrets",
        "parameters": [{"name": "password", "sensitive": True, "value": None}],
        "inheritedParameterContexts": ["prod"],
    }
    prepared = prepare(flow, OWNED).definition
    assert prepared["flowContents"]["parameterContextName"] == OWNED
    assert prepared["flowContents"]["processGroups"][0]["parameterContextName"] == OWNED
    assert prepared["parameterContexts"] == {OWNED: {"name": OWNED, "parameters": [], "inheritedParameterContexts": []}}
    assert flow["flowContents"]["parameterContextName"] == "ingest", "the spec's definition is left as it was"


def test_plain_values_of_the_definitions_contexts_become_defaults_and_sensitive_ones_do_not() -> None:
    flow = generate_update_log()
    flow["parameterContexts"]["ingest"]["parameters"].append({"name": "token", "sensitive": True, "value": None})
    assert prepare(flow, OWNED).default_parameters == {"source": "test"}


def test_binding_changes_nothing_the_comparison_sees() -> None:
    flow = generate_update_log()
    prepared = prepare(flow, OWNED).definition
    assert differences(flow_content(flow_contents(flow)), flow_content(flow_contents(prepared))) == []


def test_the_context_name_is_unique_per_object() -> None:
    assert context_name("a", "b-c") != context_name("a-b", "c")


def test_a_definition_without_flow_contents_is_refused() -> None:
    with pytest.raises(FlowDefinitionInvalid):
        prepare({"parameterContexts": {}}, OWNED)
