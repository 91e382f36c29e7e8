"""A deployed flow is bound to the parameter context its object owns, never to one the definition names."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import pytest

from controllers.nififlow.definition import context_name, defines_services, prepare, services_outside
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


def _processor_named(flow: dict[str, Any], name: str) -> dict[str, Any]:
    return next(p for p in flow["flowContents"]["processors"] if p["name"] == name)


ROOT_SERVICE_ID = "0b0d1c9e-019a-1000-8c1a-6f2a1e7d3b11"  # a service of NiFi's root group, by instance id


def test_a_flow_using_only_its_own_controller_services_uses_none_from_outside() -> None:
    flow = generate_update_log()
    own = str(uuid.uuid4())
    flow["flowContents"]["controllerServices"] = [{"identifier": own, "name": "SSL", "type": "x.SSLContextService"}]
    log = _processor_named(flow, "Log")
    log["properties"]["SSL Context Service"] = own
    log["propertyDescriptors"]["SSL Context Service"] = {
        "name": "SSL Context Service",
        "identifiesControllerService": True,
    }
    assert services_outside(flow_contents(flow), {"source": "a"}) == []


def test_a_service_named_by_id_by_parameter_or_without_descriptors_counts_as_from_outside() -> None:
    flow = generate_update_log()
    log = _processor_named(flow, "Log")
    log["properties"]["SSL Context Service"] = "#{ssl}"
    log["propertyDescriptors"]["SSL Context Service"] = {
        "name": "SSL Context Service",
        "identifiesControllerService": True,
    }
    log["properties"]["Record Writer"] = ROOT_SERVICE_ID  # a hand-written definition, no descriptor
    outside = services_outside(flow_contents(flow), {"ssl": ROOT_SERVICE_ID, "source": "a"})
    assert outside == [
        "processor Log property 'SSL Context Service'",
        "processor Log property 'Record Writer'",
        "parameter 'ssl'",
    ]


def test_a_service_of_a_parent_group_inside_the_flow_is_the_flows_own() -> None:
    flow = generate_update_log()
    own = str(uuid.uuid4())
    flow["flowContents"]["controllerServices"] = [{"identifier": own, "name": "SSL", "type": "x.SSLContextService"}]
    child = copy.deepcopy(generate_update_log("child")["flowContents"])
    _processor_named({"flowContents": child}, "Log")["properties"]["SSL Context Service"] = own
    flow["flowContents"]["processGroups"] = [child]
    assert services_outside(flow_contents(flow), {}) == []


def test_a_flow_defines_services_when_any_group_has_one() -> None:
    flow = generate_update_log()
    assert not defines_services(flow)
    child = copy.deepcopy(generate_update_log("child")["flowContents"])
    child["controllerServices"] = [{"identifier": "s", "name": "Reader", "type": "x.JsonTreeReader"}]
    flow["flowContents"]["processGroups"] = [child]
    assert defines_services(flow)


def test_a_decoy_service_claiming_an_outside_services_instance_id_does_not_hide_it() -> None:
    flow = generate_update_log()
    decoy = {"identifier": str(uuid.uuid4()), "instanceIdentifier": ROOT_SERVICE_ID, "name": "Decoy", "type": "x.S"}
    flow["flowContents"]["controllerServices"] = [decoy]
    _processor_named(flow, "Log")["properties"]["Record Reader"] = ROOT_SERVICE_ID
    assert services_outside(flow_contents(flow), {}) == ["processor Log property 'Record Reader'"]


def test_an_id_assembled_from_text_and_a_parameter_counts_as_from_outside() -> None:
    flow = generate_update_log()
    _processor_named(flow, "Log")["properties"]["Record Reader"] = "0b0d1c9e-#{rest}"
    rest = ROOT_SERVICE_ID.removeprefix("0b0d1c9e-")
    assert services_outside(flow_contents(flow), {"rest": rest}) == ["processor Log property 'Record Reader'"]


def test_a_service_of_a_sibling_group_is_not_in_scope() -> None:
    flow = generate_update_log()
    sibling = copy.deepcopy(generate_update_log("sibling")["flowContents"])
    sibling["controllerServices"] = [{"identifier": ROOT_SERVICE_ID, "name": "Reader", "type": "x.JsonTreeReader"}]
    child = copy.deepcopy(generate_update_log("child")["flowContents"])
    _processor_named({"flowContents": child}, "Log")["properties"]["Record Reader"] = ROOT_SERVICE_ID
    flow["flowContents"]["processGroups"] = [sibling, child]
    assert services_outside(flow_contents(flow), {}) == ["group child/processor Log property 'Record Reader'"]


def test_a_service_named_with_a_slash_is_still_a_service() -> None:
    flow = generate_update_log()
    flow["flowContents"]["controllerServices"] = [{"identifier": "s", "name": "SSL/TLS context", "type": "x.SSL"}]
    assert defines_services(flow)
    downloaded = copy.deepcopy(flow)
    flow["flowContents"]["controllerServices"][0]["scheduledState"] = "ENABLED"
    downloaded["flowContents"]["controllerServices"][0]["scheduledState"] = "DISABLED"
    assert differences(flow_content(flow_contents(flow)), flow_content(flow_contents(downloaded))) == []
