"""The core loop on its own: a kind that returns scripted outcomes, and a Kubernetes edge that records writes."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

from controllers.core.controller import MAX_UNCONFIRMED_APPLIES, Controller
from controllers.core.kind import ReconcileRequest
from controllers.core.kube import KubeError, Listing
from controllers.core.model import CommonSpec
from controllers.core.objects import ObjectKey, ResourceInfo
from controllers.core.outcome import EventNote, Outcome
from controllers.core.policy import KindPolicy

RESOURCE = ResourceInfo("example.io", "v1", "widgets", "Widget")


class ScriptedKind:
    resource = RESOURCE
    noun = "widget"
    spec_model = CommonSpec
    finalizer = "example.io/widget"
    sticky_stall_reasons = frozenset({"Refused"})
    policy_model = KindPolicy

    def __init__(self, *outcomes: Outcome | Exception) -> None:
        self.outcomes = list(outcomes)
        self.requests: list[ReconcileRequest[CommonSpec]] = []

    def claim(self, body: Mapping[str, Any]) -> Hashable:
        return str((body.get("spec") or {}).get("claim") or body["metadata"]["name"])

    async def reconcile(self, request: ReconcileRequest[CommonSpec]) -> Outcome:
        self.requests.append(request)
        outcome = self.outcomes.pop(0) if len(self.outcomes) > 1 else self.outcomes[0]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def delete(self, request: ReconcileRequest[CommonSpec]) -> Outcome:
        return Outcome.ready("", {})


class RecordingKube:
    """Records status writes and Events; can refuse status writes."""

    def __init__(self) -> None:
        self.status_writes: list[Mapping[str, Any]] = []
        self.events: list[str] = []
        self.fail_status_writes = False

    async def replace_status(self, resource: ResourceInfo, key: ObjectKey, uid: str, status: Mapping[str, Any]) -> None:
        if self.fail_status_writes:
            raise KubeError(500, "etcd is having a bad day")
        self.status_writes.append(status)

    async def record_event(self, involved: Mapping[str, Any], resource: ResourceInfo, **note: Any) -> None:
        self.events.append(note["reason"])


def widget(name: str, *, generation: int = 1, version: int = 10, status: Any = None, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "namespace": "ns",
            "name": name,
            "uid": f"uid-{name}",
            "generation": generation,
            "resourceVersion": str(version),
            "creationTimestamp": "2026-11-27T00:00:00Z",
        },
        "spec": spec,
        "status": status or {},
    }


def controller_with(kind: ScriptedKind, kube: RecordingKube) -> Controller[CommonSpec]:
    return Controller(
        kind,
        kube,  # type: ignore[arg-type]
        resync_interval=30,
        max_concurrent=1,
        namespaces=(),
        policy=KindPolicy(),
    )


async def reconcile_and_apply_status(controller: Controller[CommonSpec], kube: RecordingKube, key: ObjectKey) -> None:
    """One pass; then the stored copy takes the written status, as the watch would bring it."""
    before = len(kube.status_writes)
    await controller.reconcile(key)
    for status in kube.status_writes[before:]:
        controller._store[key]["status"] = dict(status)


async def test_reported_drift_after_a_transient_failure_is_still_drift_not_an_unapplied_spec() -> None:
    kind = ScriptedKind(Outcome.ready("in sync", {}), Outcome.retrying("service down"), Outcome.ready("in sync", {}))
    kube = RecordingKube()
    controller = controller_with(kind, kube)
    key = ObjectKey("ns", "a")
    controller.on_watch_event(None, widget("a", driftPolicy="Report"))
    for _ in range(3):
        await reconcile_and_apply_status(controller, kube, key)
    assert [r.spec_applied for r in kind.requests] == [False, True, True]


async def test_a_new_generation_is_not_applied_until_a_ready_pass() -> None:
    kind = ScriptedKind(Outcome.ready("in sync", {}))
    kube = RecordingKube()
    controller = controller_with(kind, kube)
    key = ObjectKey("ns", "a")
    controller.on_watch_event(None, widget("a"))
    await reconcile_and_apply_status(controller, kube, key)
    controller._store[key]["metadata"]["generation"] = 2
    await reconcile_and_apply_status(controller, kube, key)
    assert [r.spec_applied for r in kind.requests] == [False, False]


async def test_an_exception_from_the_kind_ends_as_a_readable_retrying_status() -> None:
    kind = ScriptedKind(RuntimeError("boom"))
    kube = RecordingKube()
    controller = controller_with(kind, kube)
    controller.on_watch_event(None, widget("a"))
    await controller.reconcile(ObjectKey("ns", "a"))
    ready = kube.status_writes[-1]["conditions"][0]
    assert (ready["status"], ready["reason"]) == ("False", "ProgressingWithRetry")
    assert "RuntimeError" in ready["message"]
    assert kube.events == ["ProgressingWithRetry"]


async def test_changes_the_service_never_shows_stall_after_a_bounded_number_of_passes() -> None:
    unconfirmed = Outcome.progressing("waiting for the service to show it", {}, 1.0, unconfirmed_changes=True)
    kind = ScriptedKind(unconfirmed)
    kube = RecordingKube()
    controller = controller_with(kind, kube)
    key = ObjectKey("ns", "a")
    controller.on_watch_event(None, widget("a"))
    for _ in range(MAX_UNCONFIRMED_APPLIES + 3):
        await reconcile_and_apply_status(controller, kube, key)
    assert len(kind.requests) == MAX_UNCONFIRMED_APPLIES  # nothing re-sent once stalled
    stalled = next(c for c in controller._store[key]["status"]["conditions"] if c["type"] == "Stalled")
    assert stalled["reason"] == "NotConverging"
    controller._store[key]["metadata"]["generation"] = 2  # a new spec tries again
    await reconcile_and_apply_status(controller, kube, key)
    assert len(kind.requests) == MAX_UNCONFIRMED_APPLIES + 1


async def test_a_failed_status_write_posts_no_event_and_the_next_write_posts_each_once() -> None:
    created = Outcome.ready("in sync", {}, (EventNote("Created", "created it"),))
    kind = ScriptedKind(created, Outcome.ready("in sync", {}))
    kube = RecordingKube()
    controller = controller_with(kind, kube)
    key = ObjectKey("ns", "a")
    controller.on_watch_event(None, widget("a"))
    kube.fail_status_writes = True
    await reconcile_and_apply_status(controller, kube, key)
    assert kube.events == []
    kube.fail_status_writes = False
    await reconcile_and_apply_status(controller, kube, key)
    await reconcile_and_apply_status(controller, kube, key)
    assert kube.events == ["Created"]


def test_objects_a_listing_no_longer_has_are_forgotten_and_release_their_claim() -> None:
    kind = ScriptedKind(Outcome.ready("in sync", {}))
    controller = controller_with(kind, RecordingKube())
    controller.on_watch_event(None, widget("ghost", version=10, claim="topic"))
    controller.on_watch_event(None, widget("live", version=11, claim="topic"))
    controller.on_watch_event(None, widget("newer", version=60))
    vanished = controller.forget_vanished(Listing("50", {ObjectKey("ns", "live"): "11"}))
    assert vanished == [ObjectKey("ns", "ghost")]
    assert set(controller._store) == {ObjectKey("ns", "live"), ObjectKey("ns", "newer")}
    assert controller._claimants["topic"] == {ObjectKey("ns", "live")}


def test_a_watch_event_older_than_the_held_copy_does_not_replace_it() -> None:
    controller = controller_with(ScriptedKind(Outcome.ready("in sync", {})), RecordingKube())
    controller.on_watch_event(None, widget("a", version=20, status={"observedGeneration": 1}))
    controller.on_watch_event("MODIFIED", widget("a", version=19))
    assert controller._store[ObjectKey("ns", "a")]["status"] == {"observedGeneration": 1}
