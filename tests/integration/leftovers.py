"""Remove what earlier test runs left in the stack's services.

Tests name what they create with `unique()` ('orders-5ac5ed77'). Objects whose
deletionPolicy is Retain leave their topics and indices behind by design, and a
run cut short leaves everything. The stack's data outlives runs, so without a
sweep they pile up until a server refuses more (OpenSearch stops at 1,000 open
shards per node). The sweep runs once, before the first test, and touches only
names carrying that suffix: the samples `make run` applies have none.
"""

from __future__ import annotations

import re
import urllib.error
from collections.abc import Iterable

import elasticsearch
import opensearchpy
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

from tests.integration.helpers import wait_for
from tests.integration.nifi import NiFi

TEST_SUFFIX = re.compile(r"-[0-9a-f]{8}(?![0-9a-z])")
# Contexts the NiFi tests create directly: the operator's own are named infometis/<namespace>/<name>.
NIFI_TEST_NAMESPACE = re.compile(r"^infometis/it-[0-9a-f]{8}/")


def named_by_tests(name: str) -> bool:
    return not name.startswith(".") and TEST_SUFFIX.search(name) is not None


def left_by_tests(names: Iterable[str]) -> list[str]:
    return sorted(name for name in names if named_by_tests(name))


def sweep_kafka(admin: AdminClient) -> int:
    names = left_by_tests(admin.list_topics(timeout=30).topics)
    for start in range(0, len(names), 500):
        futures = admin.delete_topics(names[start : start + 500], operation_timeout=60)
        for future in futures.values():
            try:
                future.result()
            except KafkaException as error:
                if error.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:  # already going
                    raise
    return len(names)


def sweep_search(url: str, flavour: str) -> int:
    api: elasticsearch.Elasticsearch | opensearchpy.OpenSearch
    if flavour == "opensearch":
        api = opensearchpy.OpenSearch(hosts=[url], timeout=120)
    else:
        api = elasticsearch.Elasticsearch(hosts=[url], request_timeout=120)
    with api:
        rows = api.cat.indices(h="index", format="json", expand_wildcards="all")
        names = left_by_tests(row["index"] for row in rows)
        for start in range(0, len(names), 100):
            api.indices.delete(index=",".join(names[start : start + 100]), ignore_unavailable=True)
    return len(names)


def sweep_nifi(nifi: NiFi) -> int:
    removed = 0
    for group in nifi.call("GET", "/process-groups/root/process-groups")["processGroups"]:
        if named_by_tests(group["component"]["name"]):
            _remove_group(nifi, group["id"])
            removed += 1
    for context in nifi.call("GET", "/flow/parameter-contexts")["parameterContexts"]:
        name = context["component"]["name"]
        if (NIFI_TEST_NAMESPACE.match(name) or named_by_tests(name)) and not context["component"].get(
            "boundProcessGroups"
        ):
            version = context["revision"]["version"]
            nifi.call("DELETE", f"/parameter-contexts/{context['id']}?version={version}&clientId=test")
            removed += 1
    return removed


def _remove_group(nifi: NiFi, group_id: str) -> None:
    """Stop, disable, empty and delete a group, as the UI's steps do."""
    nifi.call("PUT", f"/flow/process-groups/{group_id}", {"id": group_id, "state": "STOPPED"})
    # Services can be disabled once no processor using them still has a thread running.
    wait_for(
        lambda: _disabled(nifi, group_id),
        what=f"the services of group {group_id} disabled",
    )
    requests = f"/process-groups/{group_id}/empty-all-connections-requests"
    request_id = nifi.call("POST", requests)["dropRequest"]["id"]
    wait_for(lambda: nifi.call("GET", f"{requests}/{request_id}")["dropRequest"]["finished"], what="queues emptied")
    nifi.call("DELETE", f"{requests}/{request_id}")
    try:
        nifi.delete_group(group_id)
    except urllib.error.HTTPError as error:
        # A service still disabling: NiFi says so, and the next run's sweep finishes the job.
        if error.code != 409:
            raise


def _disabled(nifi: NiFi, group_id: str) -> bool:
    try:
        nifi.call("PUT", f"/flow/process-groups/{group_id}/controller-services", {"id": group_id, "state": "DISABLED"})
    except urllib.error.HTTPError as error:
        if error.code == 409:
            return False
        raise
    return True
