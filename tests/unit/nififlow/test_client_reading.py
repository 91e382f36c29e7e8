"""How the client reads NiFi's two answers (the root group's definition and status) into observations."""

from __future__ import annotations

import copy
from typing import Any

from controllers.nififlow.client import FlowRef, _every_source_processor, _Tree
from tests.nifi_flows import generate_update_log

ROOT = "root-id"


def deployed(name: str) -> dict[str, Any]:
    """A flow as it sits in the root group's download: a child group with instance ids."""
    group = copy.deepcopy(generate_update_log(name)["flowContents"])
    group["instanceIdentifier"] = f"{name}-id"
    group["parameterContextName"] = f"context-{name}"
    return group


def status_of(group: dict[str, Any], run: dict[str, str], queued: int) -> dict[str, Any]:
    processors = [
        {"processorStatusSnapshot": {"id": p["instanceIdentifier"], "name": p["name"], "runStatus": run[p["name"]]}}
        for p in group["processors"]
    ]
    connections = [{"connectionStatusSnapshot": {"id": "c", "flowFilesQueued": queued}}]
    return {
        "id": group["instanceIdentifier"],
        "processorStatusSnapshots": processors,
        "connectionStatusSnapshots": connections,
    }


def tree(*groups: dict[str, Any], statuses: list[dict[str, Any]]) -> _Tree:
    definition = {
        "flowContents": {"identifier": "root-v", "name": "NiFi Flow", "processGroups": list(groups)},
        "parameterContexts": {
            "context-ingest": {
                "name": "context-ingest",
                "parameters": [
                    {"name": "source", "sensitive": False, "value": "kafka"},
                    {"name": "token", "sensitive": True},
                ],
            }
        },
    }
    status = {"id": ROOT, "processGroupStatusSnapshots": [{"processGroupStatusSnapshot": s} for s in statuses]}
    return _Tree(definition, status, ROOT)


def test_a_flow_is_found_by_name_under_its_parent_with_its_run_state_queue_and_parameters() -> None:
    ingest = deployed("ingest")
    run = {"Generate": "Running", "Tag": "Running", "Log": "Stopped"}
    found = tree(ingest, deployed("other"), statuses=[status_of(ingest, run, 7)]).find(
        FlowRef(parent_id=None, name="ingest", recorded_id=None, context_name="context-ingest")
    )
    assert found is not None
    observed = tree(ingest, statuses=[status_of(ingest, run, 7)]).observed(found)
    assert (observed.id, observed.parent_id) == ("ingest-id", ROOT)
    assert (observed.run.running, observed.run.stopped, observed.run.sources_running, observed.run.queued) == (
        2,
        1,
        1,
        7,
    )
    assert observed.context is not None
    assert {n: (p.value, p.sensitive) for n, p in observed.context.parameters.items()} == {
        "source": ("kafka", False),
        "token": (None, True),
    }


def test_a_recorded_id_finds_the_group_even_when_renamed_in_nifi() -> None:
    renamed = deployed("ingest")
    renamed["name"] = "someone renamed it"
    found = tree(renamed, statuses=[]).find(
        FlowRef(parent_id=None, name="ingest", recorded_id="ingest-id", context_name="c")
    )
    assert found is not None and found[0] == "ingest-id"


def test_a_missing_group_is_none() -> None:
    assert tree(deployed("other"), statuses=[]).find(FlowRef(None, "ingest", None, "c")) is None


def test_sources_are_the_processors_nothing_feeds_at_every_level() -> None:
    outer = deployed("outer")
    outer["processGroups"] = [deployed("inner")]
    generates = [
        p["instanceIdentifier"]
        for g in (outer, outer["processGroups"][0])
        for p in g["processors"]
        if p["name"] == "Generate"
    ]
    assert sorted(_every_source_processor(outer)) == sorted(generates)
