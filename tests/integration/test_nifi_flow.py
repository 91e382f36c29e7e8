"""NiFiFlow on the real NiFi 2.3.0 of the stack: deploy, validation, in-place updates, parameters, drift, deletion."""

from __future__ import annotations

import copy
import json
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.argocd import argocd_health
from tests.integration.conftest import RESYNC_SECONDS, RunningOperator, _free_port, start_operator
from tests.integration.helpers import (
    apply,
    condition,
    create_secret,
    event_reasons,
    events,
    everything_visible,
    get,
    kubectl,
    patch_spec,
    replace_secret,
    run_stack,
    service_requests,
    unique,
    wait_for,
    wait_ready,
    wait_reason,
)
from tests.integration.nifi import PLURAL, NiFi, nifi, nifi_flow
from tests.nifi_flows import NIFI_VERSION, connection, generate_update_log, processor

__all__ = ["nifi"]  # the fixture

TIMEOUT = 90


def context_of(namespace: str, name: str) -> str:
    return f"infometis/{namespace}/{name}"


def processors_of(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in definition["flowContents"]["processors"]}


def ready_flow(namespace: str, name: str, definition: dict[str, Any], **spec: Any) -> dict[str, Any]:
    apply(namespace, nifi_flow(name, definition, **spec))
    return wait_ready(namespace, name, plural=PLURAL, timeout=TIMEOUT)


def queueing(name: str) -> dict[str, Any]:
    """A flow that fills its last queue: Generate every 50 ms, Tag passes on, Log is disabled."""
    flow = generate_update_log(name)
    processors = processors_of(flow)
    processors["Generate"]["schedulingPeriod"] = "50 ms"
    processors["Tag"]["properties"] = {"source": "queued"}
    processors["Log"]["scheduledState"] = "DISABLED"
    flow["parameterContexts"] = {}
    return flow


def test_a_flow_is_deployed_in_its_own_parameter_context_started_and_shown(
    operator: RunningOperator, namespace: str, nifi: NiFi
) -> None:
    name = unique("ingest")
    obj = ready_flow(namespace, name, generate_update_log(name), parameters=[{"name": "source", "value": "kube"}])

    group = nifi.group_named(name)
    assert group is not None
    status = obj["status"]
    assert (status["processGroupId"], status["processGroupName"], status["state"]) == (group["id"], name, "Running")
    assert set(nifi.run_status(group["id"]).values()) == {"Running"}
    assert nifi.parameters(context_of(namespace, name)) == {"source": "kube"}
    assert event_reasons(namespace, name).count("Created") == 1
    shown = kubectl("get", "nififlows", "-n", namespace).stdout
    assert "PROCESS GROUP" in shown and name in shown and "Running" in shown
    assert argocd_health(obj)[0] == "Healthy"


def test_a_flow_nifi_cannot_run_stalls_naming_each_component_with_nifis_message(
    operator: RunningOperator, namespace: str, nifi: NiFi
) -> None:
    name = unique("broken")
    # A service that will not enable (schemas by name, and no schema registry), and a processor using it.
    reader_id, writer_id = str(uuid.uuid4()), str(uuid.uuid4())
    flow = _converting(name, reader_id, writer_id)
    reader = _record_service(reader_id, "Reader", "JsonTreeReader")
    reader["properties"] = {"schema-access-strategy": "schema-name"}
    flow["flowContents"]["controllerServices"] = [reader, _record_service(writer_id, "Writer", "JsonRecordSetWriter")]
    processors = processors_of(flow)
    processors["Log"]["properties"]["Log Level"] = "shout"  # not one of LogAttribute's levels
    kafka = processor("Consume", "LogAttribute", {})
    kafka["type"] = "org.apache.nifi.kafka.processors.ConsumeKafka"  # no Kafka processors in this NiFi
    flow["flowContents"]["processors"].append(kafka)
    # Drop: its Log never runs, so what it queued would never drain and the namespace never go.
    apply(namespace, nifi_flow(name, flow, parameters=[{"name": "source", "value": "x"}], updateStrategy="Drop"))

    obj = wait_reason(namespace, name, "False", "InvalidFlow", plural=PLURAL, timeout=TIMEOUT)
    message = condition(obj, "Stalled")["message"]  # type: ignore[index]
    assert "processor Log: 'Log Level'" in message, message
    assert "processor Consume" in message, message
    assert "controller service Reader: " in message and "Schema Registry" in message, message
    assert "processor Convert" in message, message
    assert obj["status"]["state"] == "Invalid"


def test_a_changed_definition_is_replaced_in_place_in_the_same_group(
    operator: RunningOperator, namespace: str, nifi: NiFi
) -> None:
    name = unique("replace")
    definition = generate_update_log(name)
    first = ready_flow(namespace, name, definition, parameters=[{"name": "source", "value": "a"}])
    group_id = first["status"]["processGroupId"]

    changed = copy.deepcopy(definition)  # the same export, edited: its components keep their ids
    processors_of(changed)["Generate"]["properties"]["File Size"] = "1 KB"
    processors_of(changed)["Tag"]["properties"]["added"] = "yes"
    apply(namespace, nifi_flow(name, changed, parameters=[{"name": "source", "value": "b"}]))

    def replaced() -> bool:
        generate = processors_of(nifi.download(group_id))["Generate"]
        return bool(generate["properties"]["File Size"] == "1 KB")

    wait_for(replaced, timeout=TIMEOUT, what="the new definition in NiFi")
    obj = wait_ready(namespace, name, plural=PLURAL, timeout=TIMEOUT)
    assert obj["status"]["processGroupId"] == group_id  # replaced in place, not re-created
    assert processors_of(nifi.download(group_id))["Tag"]["properties"]["added"] == "yes"
    assert nifi.parameters(context_of(namespace, name)) == {"source": "b"}
    assert set(nifi.run_status(group_id).values()) == {"Running"}
    updated = [e["message"] for e in events(namespace, name) if e["reason"] == "Updated"]
    assert len(updated) == 1, updated
    assert "processor Generate: properties.File Size 0B -> 1 KB" in updated[0]
    assert "parameter source a -> b" in updated[0]


def test_a_sensitive_parameter_comes_from_a_secret_is_set_again_when_it_changes_and_is_shown_nowhere(
    operator: RunningOperator, namespace: str, nifi: NiFi
) -> None:
    name = unique("secret")
    first_value, second_value = "first-s3cret-value", "second-s3cret-value"
    create_secret(namespace, "flow-secrets", {"token": first_value})
    parameters = [
        {"name": "source", "value": "a"},
        {"name": "token", "secretKeyRef": {"name": "flow-secrets", "key": "token"}},
    ]
    first = ready_flow(namespace, name, generate_update_log(name), parameters=parameters)
    context = nifi.context(context_of(namespace, name))
    assert context is not None
    token = next(p["parameter"] for p in context["component"]["parameters"] if p["parameter"]["name"] == "token")
    assert token["sensitive"] is True and token.get("value") in (None, "********")

    replace_secret(namespace, "flow-secrets", {"token": second_value})
    wait_for(
        lambda: get(namespace, name, PLURAL)["status"].get("sensitiveVersion") != first["status"]["sensitiveVersion"],
        timeout=TIMEOUT,
        what="the changed Secret applied",
    )
    said = [e["message"] for e in events(namespace, name) if e["reason"] == "Updated"]
    assert any("parameter token (sensitive) -> (sensitive)" in m for m in said), said
    visible = everything_visible(namespace, operator, PLURAL)
    assert first_value not in visible and second_value not in visible


def test_changes_made_in_nifi_are_corrected_and_a_deleted_group_deployed_again(
    operator: RunningOperator, namespace: str, nifi: NiFi
) -> None:
    name = unique("drift")
    first = ready_flow(namespace, name, generate_update_log(name), parameters=[{"name": "source", "value": "a"}])
    group_id = first["status"]["processGroupId"]

    nifi.stop_processor(group_id, "Log")
    nifi.set_property(group_id, "Generate", "File Size", "9 KB")

    def corrected() -> bool:
        generate = processors_of(nifi.download(group_id))["Generate"]
        return generate["properties"]["File Size"] == "0B" and nifi.run_status(group_id)["Log"] == "Running"

    wait_for(corrected, timeout=TIMEOUT, what="the flow as declared again")
    assert "DriftCorrected" in event_reasons(namespace, name)

    nifi.delete_group(group_id)
    wait_for(
        lambda: (g := nifi.group_named(name)) is not None and g["id"] != group_id,
        timeout=TIMEOUT,
        what="the group deployed again",
    )
    wait_for(
        lambda: get(namespace, name, PLURAL)["status"].get("processGroupId") not in (None, group_id),
        timeout=TIMEOUT,
        what="the new group id in the status",
    )


def test_with_report_policy_changes_made_in_nifi_are_listed_and_left(
    operator: RunningOperator, namespace: str, nifi: NiFi
) -> None:
    name = unique("report")
    first = ready_flow(
        namespace,
        name,
        generate_update_log(name),
        parameters=[{"name": "source", "value": "a"}],
        driftPolicy="Report",
    )
    group_id = first["status"]["processGroupId"]
    nifi.set_property(group_id, "Generate", "File Size", "9 KB")

    # Stopping the processor to edit it is drift too, and a resync may report it before the edit lands.
    def reported_drift() -> dict[str, tuple[str, str]]:
        listed = get(namespace, name, PLURAL)["status"].get("drift") or []
        return {d["field"]: (d["actual"], d["desired"]) for d in listed}

    drift = wait_for(
        lambda: (d := reported_drift()) and "flow.processor Generate: properties.File Size" in d and d,
        timeout=TIMEOUT,
        what="status.drift naming File Size",
    )
    assert drift["flow.processor Generate: properties.File Size"] == ("9 KB", "0B"), drift
    assert processors_of(nifi.download(group_id))["Generate"]["properties"]["File Size"] == "9 KB"


def test_drain_waits_for_the_queues_and_stalls_at_its_timeout_and_drop_empties_them(
    operator: RunningOperator, namespace: str, nifi: NiFi
) -> None:
    name = unique("queues")
    definition = queueing(name)
    first = ready_flow(namespace, name, definition, updateStrategy="Drain", drainTimeoutSeconds=5)
    group_id = first["status"]["processGroupId"]
    wait_for(lambda: nifi.queued(group_id) > 5, timeout=30, what="flowfiles queued")

    changed = copy.deepcopy(definition)
    processors_of(changed)["Tag"]["properties"]["added"] = "yes"
    apply(namespace, nifi_flow(name, changed, updateStrategy="Drain", drainTimeoutSeconds=5))
    obj = wait_reason(namespace, name, "False", "DrainTimedOut", plural=PLURAL, timeout=TIMEOUT)
    assert "still queued" in condition(obj, "Stalled")["message"]  # type: ignore[index]
    assert "added" not in processors_of(nifi.download(group_id))["Tag"]["properties"]  # not replaced
    assert nifi.run_status(group_id)["Generate"] == "Running"  # the flow runs on as it was
    assert "DrainStarted" in event_reasons(namespace, name)

    patch_spec(namespace, name, {"updateStrategy": "Drop"}, plural=PLURAL)
    wait_for(
        lambda: processors_of(nifi.download(group_id))["Tag"]["properties"].get("added") == "yes",
        timeout=TIMEOUT,
        what="the flow replaced",
    )
    obj = wait_ready(namespace, name, plural=PLURAL, timeout=TIMEOUT)
    assert obj["status"]["processGroupId"] == group_id
    updated = [e["message"] for e in events(namespace, name) if e["reason"] == "Updated"]
    assert any("queues emptied" in m for m in updated), updated  # (and Drop lets the namespace go)


def test_a_stopped_flow_is_replaced_at_once_keeping_its_queued_data(
    operator: RunningOperator, namespace: str, nifi: NiFi
) -> None:
    name = unique("keep")
    definition = queueing(name)
    first = ready_flow(namespace, name, definition)
    group_id = first["status"]["processGroupId"]
    wait_for(lambda: nifi.queued(group_id) > 5, timeout=30, what="flowfiles queued")
    patch_spec(namespace, name, {"state": "Stopped"}, plural=PLURAL)
    wait_for(lambda: get(namespace, name, PLURAL)["status"].get("state") == "Stopped", timeout=TIMEOUT, what="stop")
    time.sleep(1)
    queued = nifi.queued(group_id)

    changed = copy.deepcopy(definition)  # NiFi keeps the data of the connections the new flow still has
    processors_of(changed)["Tag"]["properties"]["added"] = "yes"
    apply(namespace, nifi_flow(name, changed, state="Stopped"))
    wait_for(
        lambda: processors_of(nifi.download(group_id))["Tag"]["properties"].get("added") == "yes",
        timeout=TIMEOUT,
        what="the flow replaced",
    )
    assert nifi.queued(group_id) == queued  # the queued flowfiles stayed where they were
    patch_spec(namespace, name, {"updateStrategy": "Drop"}, plural=PLURAL)  # its Log never drains: let it go


def test_deleting_the_object_removes_the_group_and_its_context_unless_retained(
    operator: RunningOperator, namespace: str, nifi: NiFi
) -> None:
    removed, kept = unique("gone"), unique("kept")
    ready_flow(namespace, removed, generate_update_log(removed), parameters=[{"name": "source", "value": "a"}])
    ready_flow(
        namespace,
        kept,
        generate_update_log(kept),
        parameters=[{"name": "source", "value": "a"}],
        deletionPolicy="Retain",
    )
    kubectl("delete", "nififlow", removed, kept, "-n", namespace, "--timeout=90s")
    assert nifi.group_named(removed) is None
    assert nifi.context(context_of(namespace, removed)) is None
    group = nifi.group_named(kept)
    assert group is not None
    nifi.delete_group(group["id"])


def test_a_no_op_resync_reads_nifi_twice_and_writes_nothing(
    operator: RunningOperator, namespace: str, nifi: NiFi, session_operator_paused: None, tmp_path: Path
) -> None:
    # An operator of its own for this namespace: NiFi requests for other tests' flows (say, one still
    # being deleted) are not counted.
    port = _free_port()
    process = start_operator(
        operator, namespace, tmp_path / "operator.log", "--controllers", "nifi", "--metrics-port", str(port)
    )
    metrics_url = f"http://127.0.0.1:{port}/metrics"
    try:
        name = unique("quiet")
        ready_flow(namespace, name, generate_update_log(name), parameters=[{"name": "source", "value": "a"}])
        time.sleep(RESYNC_SECONDS)  # the pass that made it Ready is over
        obj = get(namespace, name, PLURAL)
        before = service_requests(metrics_url, "nifi")
        events_before = len(events(namespace, name))

        time.sleep(RESYNC_SECONDS * 4 + 1)

        after = get(namespace, name, PLURAL)
        requests = service_requests(metrics_url, "nifi")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)
    assert after["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"]
    assert len(events(namespace, name)) == events_before
    made = {k: v - before.get(k, 0) for k, v in requests.items() if v - before.get(k, 0) and k != "about"}
    assert set(made) <= {"download", "status"}, made  # ("about": the readiness probe's, every 10 s)
    assert made.get("download", 0) >= 3 and made["download"] == made["status"], made


def test_a_definition_from_a_configmap_key_is_deployed_and_a_missing_key_stalls(
    operator: RunningOperator, namespace: str, nifi: NiFi
) -> None:
    name = unique("mapped")
    kubectl(
        "create",
        "configmap",
        "flows",
        "-n",
        namespace,
        f"--from-literal=ingest.json={json.dumps(generate_update_log(name))}",
    )
    apply(
        namespace,
        nifi_flow(
            name,
            flowDefinitionRef={"name": "flows", "key": "ingest.json"},
            parameters=[{"name": "source", "value": "a"}],
        ),
    )
    wait_ready(namespace, name, plural=PLURAL, timeout=TIMEOUT)
    other = unique("unmapped")
    apply(namespace, nifi_flow(other, flowDefinitionRef={"name": "flows", "key": "missing.json"}))
    obj = wait_reason(namespace, other, "False", "FlowDefinitionInvalid", plural=PLURAL, timeout=TIMEOUT)
    assert "has no key 'missing.json' (its keys: ingest.json)" in condition(obj, "Stalled")["message"]  # type: ignore[index]
    assert nifi.group_named(other) is None


def test_a_secured_nifi_is_reached_with_a_verified_client_certificate_and_a_reader_is_refused(
    operator: RunningOperator, namespace: str, stack: dict[str, str]
) -> None:
    run_stack("start", "nifi-secure")  # on request only: HTTPS, identities mapped from client certificates

    def connection(who: str) -> dict[str, str]:
        files = {"ca.crt": "NIFI_SECURE_CA_FILE", "tls.crt": f"NIFI_SECURE{who}_CLIENT_CERT_FILE"}
        files["tls.key"] = f"NIFI_SECURE{who}_CLIENT_KEY_FILE"
        return {"url": stack["NIFI_SECURE_URL"], **{key: Path(stack[var]).read_text() for key, var in files.items()}}

    create_secret(namespace, "nifi-admin", connection(""))
    create_secret(namespace, "nifi-reader", connection("_READER"))
    name, refused = unique("secured"), unique("reader")
    ready_flow(
        namespace,
        name,
        generate_update_log(name),
        parameters=[{"name": "source", "value": "a"}],
        clusterRef={"name": "nifi-admin"},
    )
    apply(namespace, nifi_flow(refused, generate_update_log(refused), clusterRef={"name": "nifi-reader"}))
    obj = wait_reason(namespace, refused, "False", "NotAuthorized", plural=PLURAL, timeout=TIMEOUT)
    assert "403" in condition(obj, "Stalled")["message"]  # type: ignore[index]
    key = connection("")["tls.key"].splitlines()[1]
    assert key not in everything_visible(namespace, operator, PLURAL)


def test_a_restricted_component_is_refused_unless_the_tenancy_policy_allows_it(
    operator: RunningOperator, namespace: str, nifi: NiFi
) -> None:
    name = unique("restricted")
    flow = generate_update_log(name)
    run = processor("Run", "LogAttribute", {"Command": "id"})
    run["type"] = "org.apache.nifi.processors.standard.ExecuteProcess"  # runs commands on NiFi's hosts
    flow["flowContents"]["processors"].append(run)
    apply(namespace, nifi_flow(name, flow, parameters=[{"name": "source", "value": "a"}]))

    obj = wait_reason(namespace, name, "False", "NotPermitted", plural=PLURAL, timeout=TIMEOUT)
    message = condition(obj, "Stalled")["message"]  # type: ignore[index]
    assert "processor Run" in message and "restrictedComponentNamespaces" in message, message
    assert nifi.group_named(name) is None  # nothing reached NiFi


def test_an_existing_group_is_adopted_and_a_second_object_for_it_conflicts(
    operator: RunningOperator, namespace: str, nifi: NiFi
) -> None:
    name = unique("legacy")
    definition = generate_update_log(name)
    existing = nifi.upload(name, definition)

    obj = ready_flow(namespace, name, definition, parameters=[{"name": "source", "value": "a"}])
    assert obj["status"]["processGroupId"] == existing  # the group itself, not a second one
    assert "Adopted" in event_reasons(namespace, name) and "Created" not in event_reasons(namespace, name)

    second = unique("second")
    apply(namespace, nifi_flow(second, definition, processGroupName=name))
    wait_reason(namespace, second, "False", "ResourceConflict", plural=PLURAL, timeout=TIMEOUT)
    group = nifi.group_named(name)  # (one group of that name: it asserts so)
    assert group is not None and group["id"] == existing


def test_a_stopped_nifi_shows_as_retrying_and_the_flow_recovers_when_it_is_back(
    operator: RunningOperator, namespace: str, nifi: NiFi
) -> None:
    name = unique("outage")
    first = ready_flow(namespace, name, generate_update_log(name), parameters=[{"name": "source", "value": "a"}])
    try:
        run_stack("stop", "nifi")
        obj = wait_reason(namespace, name, "False", "ProgressingWithRetry", plural=PLURAL, timeout=TIMEOUT)
        assert "127.0.0.1:29080" in condition(obj, "Reconciling")["message"]  # type: ignore[index]
    finally:
        run_stack("start", "nifi")
    obj = wait_ready(namespace, name, plural=PLURAL, timeout=TIMEOUT)
    assert obj["status"]["processGroupId"] == first["status"]["processGroupId"]
    assert set(nifi.run_status(obj["status"]["processGroupId"]).values()) == {"Running"}


def test_an_operator_killed_while_deploying_or_replacing_resumes_without_a_second_group(
    operator: RunningOperator,
    namespace: str,
    nifi: NiFi,
    session_operator_paused: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = unique("crash")
    log = tmp_path / "operator.log"
    definition = generate_update_log(name)

    def killed_at(point: str) -> None:
        monkeypatch.setenv("INFOMETIS_CRASH_AT", point)
        process = start_operator(operator, namespace, log)
        monkeypatch.delenv("INFOMETIS_CRASH_AT")
        assert process.wait(timeout=120) == -signal.SIGKILL, f"the operator never reached {point}"

    apply(namespace, nifi_flow(name, definition, parameters=[{"name": "source", "value": "a"}]))
    killed_at("nififlow.deploy-uploaded")  # the group made, its parameters not set
    changed = copy.deepcopy(definition)
    processors_of(changed)["Generate"]["properties"]["File Size"] = "1 KB"
    process = start_operator(operator, namespace, log)
    try:
        wait_ready(namespace, name, plural=PLURAL, timeout=TIMEOUT)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    apply(namespace, nifi_flow(name, changed, parameters=[{"name": "source", "value": "a"}]))
    killed_at("nififlow.replace-requested")  # NiFi replaces on its own; nobody waits or tidies up

    process = start_operator(operator, namespace, log)
    try:
        obj = wait_ready(namespace, name, plural=PLURAL, timeout=TIMEOUT)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)
    group = nifi.group_named(name)  # one group of that name: it asserts so
    assert group is not None and group["id"] == obj["status"]["processGroupId"]
    assert processors_of(nifi.download(group["id"]))["Generate"]["properties"]["File Size"] == "1 KB"
    assert nifi.parameters(context_of(namespace, name)) == {"source": "a"}
    said = [(e["reason"], e["message"]) for e in events(namespace, name)]
    reasons = [reason for reason, _ in said]
    assert (reasons.count("Created"), reasons.count("Adopted")) == (1, 0), said
    replaced = [m for r, m in said if r == "Updated" and "File Size 0B -> 1 KB" in m]
    assert len(replaced) == 1, said  # the replacement announced once, though the operator died during it
    assert len(said) == len(set(said)), said
    assert "Traceback" not in log.read_text(errors="replace")


def test_deleting_under_drain_keeps_data_that_does_not_drain_until_drop_is_chosen(
    operator: RunningOperator, namespace: str, nifi: NiFi
) -> None:
    name = unique("undrained")
    first = ready_flow(namespace, name, queueing(name))  # its Log is disabled: what reaches it stays queued
    group_id = first["status"]["processGroupId"]
    wait_for(lambda: nifi.queued(group_id) > 5, timeout=30, what="flowfiles queued")

    kubectl("delete", "nififlow", name, "-n", namespace, "--wait=false")
    obj = wait_reason(namespace, name, "False", "QueuedDataKept", plural=PLURAL, timeout=TIMEOUT)
    message = condition(obj, "Stalled")["message"]  # type: ignore[index]
    assert "flowfile(s) are still queued after 30s, and updateStrategy is Drain" in message, message
    assert nifi.run_status(group_id)["Generate"] == "Stopped"  # nothing new came in meanwhile
    assert nifi.group_named(name) is not None and nifi.queued(group_id) > 0

    patch_spec(namespace, name, {"updateStrategy": "Drop"}, plural=PLURAL)
    wait_for(lambda: nifi.group_named(name) is None, timeout=TIMEOUT, what="the group deleted with its data")


RECORD_SERVICES = {"group": "org.apache.nifi", "artifact": "nifi-record-serialization-services-nar"}


def _record_service(identifier: str, name: str, kind: str) -> dict[str, Any]:
    return {
        "identifier": identifier,
        "instanceIdentifier": identifier,
        "name": name,
        "type": f"org.apache.nifi.json.{kind}",
        "bundle": {**RECORD_SERVICES, "version": NIFI_VERSION},
        "properties": {},
        "propertyDescriptors": {},
        "scheduledState": "ENABLED",
        "componentType": "CONTROLLER_SERVICE",
    }


def _converting(name: str, reader_id: str, writer_id: str) -> dict[str, Any]:
    """Generate -> Convert (ConvertRecord with a JSON reader and writer), the services named by id."""
    flow = generate_update_log(name)
    convert = processor(
        "Convert",
        "ConvertRecord",
        {"Record Reader": reader_id, "Record Writer": writer_id},
        autoTerminatedRelationships=["success", "failure"],
    )
    for property_name in ("Record Reader", "Record Writer"):
        convert["propertyDescriptors"][property_name]["identifiesControllerService"] = True
    flow["flowContents"]["processors"].append(convert)
    generate = processors_of(flow)["Generate"]
    flow["flowContents"]["connections"].append(connection(generate, convert, ["success"]))
    return flow


def test_a_flow_runs_its_own_controller_services_and_is_refused_one_lent_from_outside_it(
    operator: RunningOperator, namespace: str, nifi: NiFi
) -> None:
    reader_id, writer_id = str(uuid.uuid4()), str(uuid.uuid4())
    own = _converting(unique("own"), reader_id, writer_id)
    own["flowContents"]["controllerServices"] = [
        _record_service(reader_id, "Reader", "JsonTreeReader"),
        _record_service(writer_id, "Writer", "JsonRecordSetWriter"),
    ]
    own_name = own["flowContents"]["name"]
    ready = ready_flow(namespace, own_name, own, parameters=[{"name": "source", "value": "a"}])
    group_id = ready["status"]["processGroupId"]
    assert nifi.run_status(group_id)["Convert"] == "Running"

    # Disabled in NiFi as the UI does it (the processor using it stopped first): enabled and started again.
    nifi.stop_processor(group_id, "Convert")
    services = nifi.call("GET", f"/flow/process-groups/{group_id}/controller-services")["controllerServices"]
    reader = next(s for s in services if s["component"]["name"] == "Reader")
    nifi.call(
        "PUT", f"/controller-services/{reader['id']}/run-status", {"revision": reader["revision"], "state": "DISABLED"}
    )

    def reader_state() -> str:
        return str(nifi.call("GET", f"/controller-services/{reader['id']}")["component"]["state"])

    wait_for(
        lambda: reader_state() == "ENABLED" and nifi.run_status(group_id)["Convert"] == "Running",
        timeout=TIMEOUT,
        what="the reader enabled and Convert running again",
    )
    assert "DriftCorrected" in event_reasons(namespace, own_name)

    # Another team's service at NiFi's root, which NiFi would lend any group below it.
    shared = nifi.call(
        "POST",
        "/process-groups/root/controller-services",
        {
            "revision": {"version": 0},
            "component": {
                "type": "org.apache.nifi.json.JsonTreeReader",
                "bundle": {**RECORD_SERVICES, "version": NIFI_VERSION},
                "name": unique("shared-reader"),
            },
        },
    )
    try:
        borrowing = _converting(unique("borrow"), shared["id"], writer_id)
        borrowing["flowContents"]["controllerServices"] = [_record_service(writer_id, "Writer", "JsonRecordSetWriter")]
        name = borrowing["flowContents"]["name"]
        apply(namespace, nifi_flow(name, borrowing, parameters=[{"name": "source", "value": "a"}]))
        obj = wait_reason(namespace, name, "False", "NotPermitted", plural=PLURAL, timeout=TIMEOUT)
        message = condition(obj, "Stalled")["message"]  # type: ignore[index]
        assert "processor Convert property 'Record Reader'" in message, message
        assert "sharedControllerServiceNamespaces" in message, message
        assert nifi.group_named(name) is None  # nothing reached NiFi
    finally:
        version = nifi.call("GET", f"/controller-services/{shared['id']}")["revision"]["version"]
        nifi.call("DELETE", f"/controller-services/{shared['id']}?version={version}&clientId=test")
