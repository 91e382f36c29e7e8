"""Flow definitions compare by content: ids, positions and NiFi's defaults are never differences."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from controllers.nififlow.normalise import FlowDefinitionInvalid, differences, flow_content, flow_contents
from tests.nifi_flows import connection, generate_update_log, processor, redeployed


def content(definition: dict[str, Any]) -> Any:
    return flow_content(flow_contents(definition))


def shown(desired: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    return [d.shown() for d in differences(content(desired), content(actual))]


def processors(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in definition["flowContents"]["processors"]}


def test_the_same_flow_with_other_ids_and_positions_has_no_differences_and_the_same_digest() -> None:
    flow = generate_update_log()
    again = redeployed(flow)
    assert shown(flow, again) == []
    assert content(flow).digest() == content(again).digest()


def test_a_changed_property_is_named_with_both_values_and_changes_the_digest() -> None:
    flow = generate_update_log()
    changed = generate_update_log(file_size="1 KB")
    assert shown(changed, flow) == ["processor Generate: properties.File Size 0B -> 1 KB"]
    assert content(flow).digest() != content(changed).digest()


def test_what_a_hand_written_definition_leaves_out_is_not_compared() -> None:
    live = generate_update_log()
    written = copy.deepcopy(live)
    for component in written["flowContents"]["processors"]:
        for field in ("penaltyDuration", "yieldDuration", "bulletinLevel", "retryCount", "comments"):
            del component[field]
    processors(written)["Generate"]["properties"] = {"File Size": "0B"}  # "Batch Size" left to NiFi's default
    processors(live)["Log"]["properties"]["Log Payload"] = "false"  # a default NiFi fills in
    assert shown(written, live) == []


def test_a_dynamic_property_added_on_nifi_is_a_difference() -> None:
    flow = generate_update_log()
    live = copy.deepcopy(flow)
    tag = processors(live)["Tag"]
    tag["properties"]["extra"] = "x"
    tag["propertyDescriptors"]["extra"] = {"name": "extra", "dynamic": True, "sensitive": False}
    assert shown(flow, live) == ["processor Tag: properties.extra x -> unset"]


def test_a_sensitive_value_nifi_hides_is_not_a_difference_but_a_parameter_reference_is_compared() -> None:
    flow = generate_update_log()
    processors(flow)["Tag"]["properties"]["password"] = "secret"
    processors(flow)["Tag"]["properties"]["token"] = "#{token}"
    live = copy.deepcopy(flow)
    tag = processors(live)["Tag"]
    for name in ("password", "token"):
        tag["properties"][name] = None
        tag["propertyDescriptors"][name] = {"name": name, "sensitive": True, "dynamic": True}
    assert shown(flow, live) == ["processor Tag: properties.token unset -> #{token}"]


def test_numbers_and_booleans_compare_as_the_text_nifi_keeps() -> None:
    flow = generate_update_log()
    live = copy.deepcopy(flow)
    processors(flow)["Generate"]["concurrentlySchedulableTaskCount"] = "1"
    processors(flow)["Generate"]["properties"]["Unique FlowFiles"] = True
    processors(live)["Generate"]["properties"]["Unique FlowFiles"] = "true"
    assert shown(flow, live) == []


def test_components_added_and_removed_are_named() -> None:
    flow = generate_update_log()
    live = copy.deepcopy(flow)
    contents = live["flowContents"]
    extra = processor("Extra", "LogAttribute", {})
    contents["processors"].append(extra)
    contents["connections"].append(connection(processors(live)["Tag"], extra, ["success"]))
    log = processors(live)["Log"]
    contents["processors"].remove(log)
    contents["connections"] = [c for c in contents["connections"] if c["destination"]["id"] != log["identifier"]]
    assert shown(flow, live) == [
        "connection processor Tag -> processor Log [success] missing -> present",
        "processor Log missing -> present",
        "connection processor Tag -> processor Extra [success] present -> absent",
        "processor Extra present -> absent",
    ]


def test_a_connection_is_known_by_its_ends_and_relationships() -> None:
    flow = generate_update_log()
    live = copy.deepcopy(flow)
    live["flowContents"]["connections"][0]["selectedRelationships"] = ["success", "failure"]
    live["flowContents"]["connections"][1]["backPressureObjectThreshold"] = 5
    assert shown(flow, live) == [
        "connection processor Generate -> processor Tag [success] missing -> present",
        "connection processor Tag -> processor Log [success]: backPressureObjectThreshold 5 -> 10000",
        "connection processor Generate -> processor Tag [failure,success] present -> absent",
    ]


def test_a_controller_service_reference_compares_by_the_service_name_not_its_id() -> None:
    flow = generate_update_log()
    service = {
        "identifier": "service-a",
        "instanceIdentifier": "service-a-instance",
        "name": "SSL",
        "type": "org.apache.nifi.ssl.StandardSSLContextService",
        "properties": {"Keystore Type": "PKCS12"},
        "scheduledState": "ENABLED",
    }
    flow["flowContents"]["controllerServices"] = [service]
    processors(flow)["Log"]["properties"]["SSL Context Service"] = "service-a"
    again = redeployed(flow)
    assert processors(again)["Log"]["properties"]["SSL Context Service"] != "service-a"
    assert shown(flow, again) == []
    processors(again)["Log"]["properties"]["SSL Context Service"] = "some-other-service"
    assert shown(flow, again) == [
        "processor Log: properties.SSL Context Service some-other-service -> controller service SSL"
    ]


def test_components_sharing_a_name_are_told_apart() -> None:
    flow = generate_update_log()
    processors_ = flow["flowContents"]["processors"]
    processors_.append(processor("Log", "LogAttribute", {"Log Level": "debug"}))
    assert shown(flow, redeployed(flow)) == []
    keys = set(content(flow).components)
    assert {"processor Log", "processor Log#2"} <= keys


def test_a_child_group_and_its_ports_are_compared_by_path() -> None:
    flow = generate_update_log()
    child = copy.deepcopy(generate_update_log("enrich")["flowContents"])
    child["name"] = "Enrich"
    child["inputPorts"] = [{"identifier": "in-port", "name": "in", "type": "INPUT_PORT", "allowRemoteAccess": False}]
    flow["flowContents"]["processGroups"] = [child]
    log = processors(flow)["Tag"]
    flow["flowContents"]["connections"].append(
        {
            "identifier": "to-child",
            "source": {"id": log["identifier"], "type": "PROCESSOR", "name": "Tag"},
            "destination": {"id": "in-port", "type": "INPUT_PORT", "groupId": child["identifier"], "name": "in"},
            "selectedRelationships": ["success"],
        }
    )
    live = redeployed(flow)
    assert shown(flow, live) == []
    child_processors = {p["name"]: p for p in live["flowContents"]["processGroups"][0]["processors"]}
    child_processors["Log"]["properties"]["Log Level"] = "warn"
    assert shown(flow, live) == ["group Enrich/processor Log: properties.Log Level warn -> info"]
    assert "connection processor Tag -> group Enrich/input port in [success]" in content(flow).components


def test_the_groups_own_settings_are_compared_but_not_its_name() -> None:
    flow = generate_update_log("one")
    live = generate_update_log("two")
    live["flowContents"]["flowFileConcurrency"] = "SINGLE_FLOWFILE_PER_NODE"
    assert shown(flow, live) == ["flowFileConcurrency SINGLE_FLOWFILE_PER_NODE -> UNBOUNDED"]


def test_a_definition_without_flow_contents_is_refused() -> None:
    with pytest.raises(FlowDefinitionInvalid, match="flowContents"):
        flow_contents({"processors": []})


def test_a_controller_services_scheduled_state_is_not_compared() -> None:
    # NiFi 2.3 downloads every controller service as DISABLED, enabled or not; the operator enables
    # the flow's services itself and observes their state apart from the definition.
    flow = generate_update_log()
    service = {"identifier": "service-a", "name": "Reader", "type": "org.apache.nifi.json.JsonTreeReader"}
    flow["flowContents"]["controllerServices"] = [{**service, "scheduledState": "ENABLED"}]
    downloaded = redeployed(flow)
    downloaded["flowContents"]["controllerServices"][0]["scheduledState"] = "DISABLED"
    assert shown(flow, downloaded) == []
