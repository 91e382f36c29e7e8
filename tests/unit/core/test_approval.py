"""Plans that wait for an approval, on the core's toy service (tests/unit/core/test_controller.py).

The same behaviours run against the real servers, with RBAC and the admission
policies, in tests/integration/test_approval.py.
"""

from __future__ import annotations

from typing import Any

from controllers.core.approval import change_digest
from controllers.core.controller import Controller
from controllers.core.objects import ObjectKey
from controllers.core.policy import KindPolicy
from tests.unit.core.test_controller import (
    KEY,
    RecordingKube,
    SetValue,
    ToyService,
    WidgetKind,
    ready_reason,
    reconcile,
    widget,
)


def controller_with(kind: WidgetKind, kube: RecordingKube, policy: KindPolicy | None = None) -> Controller[Any, Any]:
    return Controller(
        kind,  # type: ignore[arg-type]
        kube,  # type: ignore[arg-type]
        resync_interval=30,
        max_concurrent=1,
        namespaces=(),
        policy=policy or KindPolicy(),
    )


def approval(name: str, digest: str, *, approved_by: str | None = "alice", target: str = "a") -> dict[str, Any]:
    spec: dict[str, Any] = {"target": {"kind": "Widget", "name": target}, "planDigest": digest}
    if approved_by is not None:
        spec["approvedBy"] = approved_by
    return {"metadata": {"namespace": "ns", "name": name, "uid": f"uid-{name}"}, "spec": spec}


def status(controller: Controller[Any, Any], key: ObjectKey = KEY) -> dict[str, Any]:
    return controller._store[key]["status"]  # type: ignore[no-any-return]


async def waiting(
    policy: KindPolicy | None = None, **spec: Any
) -> tuple[ToyService, RecordingKube, Controller[Any, Any]]:
    """A widget created as v1, then changed to v2 under `spec` and `policy`: one pass later."""
    service = ToyService(values={"a": "v1"})
    kube = RecordingKube()
    controller = controller_with(WidgetKind(service), kube, policy)
    controller.on_watch_event(None, widget("a", value="v2", **spec))
    await reconcile(controller, kube, KEY)
    return service, kube, controller


async def test_a_manual_change_waits_showing_its_plan_and_changes_nothing() -> None:
    service, kube, controller = await waiting(approval="Manual")

    assert service.values["a"] == "v1" and service.writes == 0
    assert ready_reason(controller, KEY) == ("False", "AwaitingApproval")
    plan = status(controller)["plan"]
    assert plan["changes"] == ["value v1 -> v2"]
    assert plan["approvalRequiredBecause"] == "spec.approval is Manual"
    assert plan["digest"] in status(controller)["conditions"][0]["message"]
    assert kube.reasons() == ["AwaitingApproval"]


async def test_a_resync_of_a_waiting_plan_writes_and_says_nothing() -> None:
    _, kube, controller = await waiting(approval="Manual")
    writes, events = len(kube.statuses), len(kube.events)
    await reconcile(controller, kube, KEY)
    await reconcile(controller, kube, KEY)
    assert (len(kube.statuses), len(kube.events)) == (writes, events)


async def test_an_approval_of_the_plan_applies_it_and_names_who_approved() -> None:
    service, kube, controller = await waiting(approval="Manual")
    digest = status(controller)["plan"]["digest"]

    controller.on_approval_event("ADDED", approval("ok", digest))
    assert controller._queue._queued.get(KEY) is True  # the waiting object is queued at once, urgently
    await reconcile(controller, kube, KEY)

    assert service.values["a"] == "v2"
    assert ready_reason(controller, KEY) == ("True", "Succeeded")
    assert "plan" not in status(controller)
    assert status(controller)["lastApproval"] == {
        "name": "ok",
        "digest": digest,
        "approvedBy": "alice",
        "generation": 1,
    }
    assert kube.reasons() == ["AwaitingApproval", "Approved", "Updated"]
    approved = next(message for message in kube.messages.values() if "approved by" in message)
    assert f"Plan {digest} for widget 'a', approved by alice (ChangeApproval ok)" in approved
    assert kube.approval_statuses["ok"]["phase"] == "Applied"


async def test_an_approval_of_a_plan_the_service_has_since_changed_does_not_apply() -> None:
    service, kube, controller = await waiting(approval="Manual")
    digest = status(controller)["plan"]["digest"]
    service.values["a"] = "v0"  # changed outside meanwhile: the plan is now v0 -> v2
    controller.on_approval_event("ADDED", approval("old", digest))
    await reconcile(controller, kube, KEY)

    assert service.values["a"] == "v0" and service.writes == 0
    assert ready_reason(controller, KEY) == ("False", "ApprovalStale")
    assert status(controller)["plan"]["changes"] == ["value v0 -> v2"]
    assert status(controller)["plan"]["digest"] != digest
    assert (
        f"ChangeApproval old approved plan {digest}, which is no longer the plan"
        in (status(controller)["conditions"][0]["message"])
    )
    assert kube.approval_statuses["old"]["phase"] == "Stale"


async def test_a_new_generation_changes_the_digest_even_when_the_changes_read_the_same() -> None:
    change = (SetValue("a", "v1", "v2"),)
    assert change_digest("uid-a", 1, change) != change_digest("uid-a", 2, change)
    assert change_digest("uid-a", 1, change) != change_digest("uid-b", 1, change)
    assert change_digest("uid-a", 1, change) == change_digest("uid-a", 1, (SetValue("a", "v1", "v2"),))


async def test_an_approval_naming_no_approver_approves_nothing() -> None:
    service, kube, controller = await waiting(approval="Manual")
    digest = status(controller)["plan"]["digest"]
    controller.on_approval_event("ADDED", approval("forged", digest, approved_by=None))
    await reconcile(controller, kube, KEY)

    assert service.values["a"] == "v1"
    assert ready_reason(controller, KEY) == ("False", "AwaitingApproval")
    assert "names no approver" in status(controller)["conditions"][0]["message"]


async def test_an_approval_of_another_object_approves_nothing_here() -> None:
    service, kube, controller = await waiting(approval="Manual")
    digest = status(controller)["plan"]["digest"]
    controller.on_approval_event("ADDED", approval("elsewhere", digest, target="b"))
    await reconcile(controller, kube, KEY)
    assert service.values["a"] == "v1"


async def test_automatic_changes_go_on_without_approval() -> None:
    service, _, controller = await waiting()
    assert service.values["a"] == "v2"
    assert "plan" not in status(controller)


async def test_the_tenancy_policy_makes_every_change_in_a_namespace_wait() -> None:
    service, _, controller = await waiting(KindPolicy(manual_approval_namespaces=["ns"]))
    assert service.values["a"] == "v1"
    assert "every change in namespace ns" in status(controller)["plan"]["approvalRequiredBecause"]


async def test_the_tenancy_policy_makes_destructive_changes_wait_and_only_those() -> None:
    policy = KindPolicy(destructive_changes_need_approval=True)
    service, _, controller = await waiting(policy)
    assert service.values["a"] == "v2"  # not destructive

    controller._store[KEY]["metadata"]["generation"] = 2
    controller._store[KEY]["spec"]["value"] = ""
    await reconcile(controller, controller._kube, KEY)  # type: ignore[arg-type]
    assert service.values["a"] == "v2"
    assert status(controller)["plan"]["approvalRequiredBecause"].startswith("erasing value v2 cannot be undone")


class FinalizingKube(RecordingKube):
    def __init__(self) -> None:
        super().__init__()
        self.finalizers: list[list[str]] = []

    async def patch_finalizers(self, resource: Any, key: ObjectKey, finalizers: list[str], version: str) -> None:
        self.finalizers.append(finalizers)


async def test_a_deletion_waits_for_approval_under_the_destructive_rule() -> None:
    service = ToyService(values={"a": "v1"})
    kube = FinalizingKube()
    controller = controller_with(WidgetKind(service), kube, KindPolicy(destructive_changes_need_approval=True))
    body = widget("a", value="v1", deletionPolicy="Delete")
    body["metadata"]["finalizers"] = ["example.io/widget"]
    controller.on_watch_event(None, body)
    await reconcile(controller, kube, KEY)
    controller._store[KEY]["metadata"]["deletionTimestamp"] = "2026-11-28T00:00:00Z"
    await reconcile(controller, kube, KEY)

    assert service.values == {"a": "v1"} and kube.finalizers == []  # held
    plan = status(controller)["plan"]
    assert plan["changes"] == ["delete widget 'a' (deletionPolicy: Delete)"]

    controller.on_approval_event("ADDED", approval("go", plan["digest"]))
    await reconcile(controller, kube, KEY)
    assert service.values == {} and kube.finalizers == [[]]
    assert kube.reasons()[-2:] == ["Approved", "Deleted"]


async def test_later_steps_of_an_approved_rollout_go_on_without_another_approval() -> None:
    service, kube, controller = await waiting(approval="Manual")
    service.shows_writes = False  # applied, but not shown yet: the next pass plans the change again
    controller.on_approval_event("ADDED", approval("ok", status(controller)["plan"]["digest"]))
    await reconcile(controller, kube, KEY)
    writes = service.writes
    service.values["a"] = "v1.5"  # the plan differs now, but this generation's rollout was approved
    await reconcile(controller, kube, KEY)
    assert service.writes == writes + 1
