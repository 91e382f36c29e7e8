"""Plans that wait for an approval, on the real API server (RBAC and admission policies) and services.

Users are impersonated (kubectl --as): alice edits the namespace (the built-in
edit role), carol holds infometis-change-approver there.
"""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path
from typing import Any

import yaml
from confluent_kafka.admin import AdminClient

from tests.integration.conftest import RunningOperator, start_operator
from tests.integration.helpers import (
    GROUP,
    VERSION,
    describe,
    described_as,
    events,
    exists,
    get,
    kafka_topic,
    kubectl,
    set_config_out_of_band,
    unique,
    wait_for,
    wait_ready,
    wait_reason,
)
from tests.integration.nifi import PLURAL as FLOWS
from tests.integration.nifi import NiFi, nifi, nifi_flow
from tests.integration.search import PLURAL as INDICES
from tests.integration.search import WITH_REINDEX, SearchServer, connection_secret, search_index, server_fixture
from tests.nifi_flows import generate_update_log

__all__ = ["nifi"]  # the fixture

search = server_fixture({"opensearch": WITH_REINDEX["opensearch"]})
EDITOR, APPROVER = "alice", "carol"


def roles(namespace: str) -> None:
    kubectl("create", "rolebinding", "editors", "-n", namespace, "--clusterrole=edit", f"--user={EDITOR}")
    kubectl(
        "create", "rolebinding", "approvers", "-n", namespace, "--clusterrole=infometis-change-approver",
        f"--user={APPROVER}",
    )  # fmt: skip


def as_user(
    user: str, namespace: str, manifest: dict[str, Any], verb: str = "apply"
) -> subprocess.CompletedProcess[str]:
    return kubectl(f"--as={user}", verb, "-n", namespace, "-f", "-", stdin=yaml.safe_dump(manifest), check=False)


def approval(kind: str, name: str, digest: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ChangeApproval",
        "metadata": {"name": unique("ok")},
        "spec": {"target": {"kind": kind, "name": name}, "planDigest": digest},
    }


def approve(namespace: str, kind: str, name: str, digest: str, user: str | None = APPROVER) -> str:
    """Approve as `user`, or as the test's own cluster administrator (None)."""
    manifest = approval(kind, name, digest)
    if user is None:
        created = kubectl("create", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(manifest), check=False)
    else:
        created = as_user(user, namespace, manifest, "create")
    assert created.returncode == 0, created.stderr
    return str(manifest["metadata"]["name"])


def approval_status(namespace: str, name: str) -> dict[str, Any]:
    return get(namespace, name, "changeapprovals").get("status") or {}


def waiting_plan(
    namespace: str, name: str, plural: str = "kafkatopics", reason: str = "AwaitingApproval"
) -> dict[str, Any]:
    obj = wait_reason(namespace, name, "False", reason, plural=plural, timeout=90)
    plan: dict[str, Any] = obj["status"]["plan"]
    return plan


def messages(namespace: str, name: str, reason: str) -> list[str]:
    return [e["message"] for e in events(namespace, name) if e["reason"] == reason]


# --- KafkaTopic ---------------------------------------------------------------------------------------


def test_a_manual_topic_waits_showing_its_plan_and_only_an_approver_can_let_it_go(
    operator: RunningOperator, namespace: str, kafka_admin: AdminClient
) -> None:
    roles(namespace)
    name = unique("manual")
    topic = kafka_topic(name, 2, 1, approval="Manual", config={"retention.ms": "3600000"})
    assert as_user(EDITOR, namespace, topic).returncode == 0

    plan = waiting_plan(namespace, name)
    assert plan["changes"] == ["created with 2 partitions, replication factor 1, config retention.ms=3600000"]
    assert plan["approvalRequiredBecause"] == "spec.approval is Manual"
    assert describe(kafka_admin, name) is None  # nothing touched Kafka
    waiting = messages(namespace, name, "AwaitingApproval")
    assert len(waiting) == 1 and plan["digest"] in waiting[0]
    shown = kubectl("get", "kafkatopics", name, "-n", namespace, "-o", "wide").stdout
    assert "AwaitingApproval" in shown and plan["digest"] in shown

    refused = as_user(EDITOR, namespace, approval("KafkaTopic", name, plan["digest"]), "create")
    assert refused.returncode != 0 and "forbidden" in refused.stderr  # the author cannot approve

    approved = approve(namespace, "KafkaTopic", name, plan["digest"])
    obj = wait_ready(namespace, name)
    described_as(kafka_admin, name, lambda t: t["partitions"] == 2 and t["overrides"] == {"retention.ms": "3600000"})
    assert "plan" not in obj["status"]
    assert obj["status"]["lastApproval"]["approvedBy"] == APPROVER
    said = messages(namespace, name, "Approved")
    assert len(said) == 1 and f"approved by {APPROVER} (ChangeApproval {approved})" in said[0]
    assert approval_status(namespace, approved)["phase"] == "Applied"
    listed = kubectl("get", "changeapprovals", "-n", namespace).stdout
    assert approved in listed and APPROVER in listed and "Applied" in listed

    as_user(EDITOR, namespace, kafka_topic(name, 4, 1, approval="Manual", config={"retention.ms": "3600000"}))
    assert waiting_plan(namespace, name)["changes"] == ["partitions 2 -> 4"]
    assert describe(kafka_admin, name)["partitions"] == 2  # type: ignore[index]


def test_an_approval_of_a_plan_the_service_changed_since_does_not_apply(
    operator: RunningOperator, namespace: str, kafka_admin: AdminClient
) -> None:
    roles(namespace)
    name = unique("stale")
    kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(kafka_topic(name, 1, 1, approval="Manual")))
    approve(namespace, "KafkaTopic", name, waiting_plan(namespace, name)["digest"], user=None)
    wait_ready(namespace, name)
    changed = kafka_topic(name, 1, 1, approval="Manual", config={"retention.ms": "7200000"})
    kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(changed))
    shown = waiting_plan(namespace, name)

    set_config_out_of_band(kafka_admin, name, "retention.ms", "1800000")  # someone changes Kafka meanwhile
    stale = approve(namespace, "KafkaTopic", name, shown["digest"])  # the pass it wakes sees the new value

    now = waiting_plan(namespace, name, reason="ApprovalStale")
    assert now["digest"] != shown["digest"]
    assert "1800000" in now["changes"][0]
    wait_for(lambda: approval_status(namespace, stale).get("phase") == "Stale", what="approval marked stale")
    assert describe(kafka_admin, name)["overrides"] == {"retention.ms": "1800000"}  # type: ignore[index]

    approve(namespace, "KafkaTopic", name, now["digest"])
    wait_ready(namespace, name)
    described_as(kafka_admin, name, lambda t: t["overrides"] == {"retention.ms": "7200000"})


def test_a_deletion_waits_for_approval_when_the_policy_says_destructive_changes_need_one(
    operator: RunningOperator, namespace: str, kafka_admin: AdminClient, session_operator_paused: None, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("kafkatopics:\n  destructiveChangesNeedApproval: true\n")
    process = start_operator(
        operator, namespace, tmp_path / "operator.log", "--controllers", "kafka", "--tenancy-policy", str(policy)
    )
    try:
        roles(namespace)
        name = unique("doomed")
        kubectl(
            "apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(kafka_topic(name, 1, 1, deletionPolicy="Delete"))
        )
        wait_ready(namespace, name, timeout=90)  # a creation is not destructive
        kubectl("delete", "kafkatopic", name, "-n", namespace, "--wait=false")

        plan = wait_for(lambda: (get(namespace, name).get("status") or {}).get("plan"), what="deletion plan")
        assert plan["changes"] == [f"delete topic '{name}' (deletionPolicy: Delete)"]
        assert "cannot be undone" in plan["approvalRequiredBecause"]
        assert describe(kafka_admin, name) is not None

        approve(namespace, "KafkaTopic", name, plan["digest"])
        wait_for(lambda: not exists(namespace, name), timeout=60, what="object gone")
        assert describe(kafka_admin, name) is None
    finally:
        process.terminate()
        process.wait(timeout=20)


# --- ElasticsearchIndex -------------------------------------------------------------------------------

OLD_SPEC: dict[str, Any] = {
    "settings": {"number_of_shards": 1, "number_of_replicas": 0},
    "mappings": {"properties": {"value": {"type": "long"}}},
}


def test_an_index_change_waits_and_an_approved_migration_runs_through_without_another_approval(
    operator: RunningOperator, namespace: str, search: SearchServer
) -> None:
    connection_secret(namespace, search)
    name = unique("orders")
    manifest = search_index(name, approval="Manual", migration={"strategy": "Reindex"}, **OLD_SPEC)
    kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(manifest))
    plan = waiting_plan(namespace, name, INDICES)
    assert plan["changes"][0].startswith("created with 1 shard(s), 0 replica(s), 1 mapped field(s)")
    assert search.index(name) is None
    approve(namespace, "ElasticsearchIndex", name, plan["digest"], user=None)
    wait_ready(namespace, name, plural=INDICES)

    migrating = copy.deepcopy(manifest)
    migrating["spec"]["mappings"] = {"properties": {"value": {"type": "keyword"}}}
    kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(migrating))
    plan = waiting_plan(namespace, name, INDICES)
    assert "migrating to the new index" in plan["changes"][0] and "mappings.value" in plan["changes"][0]
    assert search.index(name)["name"] == f"{name}-v1"  # type: ignore[index]

    approve(namespace, "ElasticsearchIndex", name, plan["digest"], user=None)
    obj = wait_ready(namespace, name, plural=INDICES, timeout=120)  # copy, catch-up and switch: one approval
    assert obj["status"]["concreteIndex"] == f"{name}-v2"
    assert len(messages(namespace, name, "Approved")) == 2


# --- NiFiFlow -----------------------------------------------------------------------------------------


def test_a_flow_replacement_waits_and_applies_exactly_the_approved_plan(
    operator: RunningOperator, namespace: str, nifi: NiFi
) -> None:
    roles(namespace)
    name = unique("flow")
    definition = generate_update_log(name)
    kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(nifi_flow(name, definition, approval="Manual")))
    plan = waiting_plan(namespace, name, FLOWS)
    assert plan["changes"][0].startswith(f"process group '{name}' deployed with")
    assert nifi.group_named(name) is None
    approve(namespace, "NiFiFlow", name, plan["digest"], user=None)
    group_id = wait_ready(namespace, name, plural=FLOWS, timeout=90)["status"]["processGroupId"]
    # The generator's first flowfile (sent when it starts; the next is a minute away) has gone through, so the
    # change below is planned as a replacement, not as a drain of that flowfile first.
    wait_for(
        lambda: nifi.flowfiles_in(group_id, "Log") >= 1 and nifi.queued(group_id) == 0,
        timeout=60,
        what="the first flowfile through the flow",
    )

    changed = copy.deepcopy(definition)
    next(p for p in changed["flowContents"]["processors"] if p["name"] == "Tag")["properties"]["added"] = "yes"
    kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(nifi_flow(name, changed, approval="Manual")))
    plan = waiting_plan(namespace, name, FLOWS)
    assert "flow replaced in place" in plan["changes"][0] and "properties.added" in plan["changes"][0]

    def tag_properties() -> dict[str, Any]:
        tag = next(p for p in nifi.download(group_id)["flowContents"]["processors"] if p["name"] == "Tag")
        return dict(tag["properties"])

    assert "added" not in tag_properties()
    approve(namespace, "NiFiFlow", name, plan["digest"])
    wait_ready(namespace, name, plural=FLOWS, timeout=90)
    assert tag_properties()["added"] == "yes"
    said = messages(namespace, name, "Approved")
    assert len(said) == 2 and f"approved by {APPROVER}" in said[1]
