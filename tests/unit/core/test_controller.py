"""The core loop on its own: a toy service held in memory, and a Kubernetes edge that records writes.

The toy service stores one value per name; a widget's spec declares the value.
It can be made unreachable, or to accept writes it then never shows, and the
recording edge can refuse status writes, so each failure the core must turn
into a status is reproducible here in milliseconds. (The same behaviours are
proven against the real API server and Kafka in tests/integration.)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest
from prometheus_client import REGISTRY

from controllers.core import controller as controller_module
from controllers.core.controller import (
    MAX_UNCONFIRMED_APPLIES,
    RELIST_AT_LEAST_EVERY_RESYNCS,
    RESYNC_SLICE,
    RESYNC_SPREAD,
    Controller,
)
from controllers.core.kind import Blocker
from controllers.core.kube import KubeError, Listing
from controllers.core.model import CommonSpec, CommonStatus, DriftItem
from controllers.core.objects import ObjectKey, ResourceInfo
from controllers.core.outcome import KindCondition, Outcome
from controllers.core.policy import KindPolicy

RESOURCE = ResourceInfo("example.io", "v1", "widgets", "Widget")


class WidgetSpec(CommonSpec):
    value: str = "v1"


class WidgetStatus(CommonStatus):
    widget_id: str | None = None


class ServiceDown(Exception):
    pass


@dataclass
class ToyService:
    values: dict[str, str] = field(default_factory=dict)
    down: bool = False
    shows_writes: bool = True
    writes: int = 0


@dataclass(frozen=True)
class SetValue:
    name: str
    before: str | None
    after: str
    settles_later: ClassVar[bool] = False
    event_reason: ClassVar[str | None] = None

    @property
    def creates(self) -> bool:  # type: ignore[override]
        return self.before is None

    def destructive(self) -> str | None:
        return f"erasing value {self.before}" if self.after == "" else None

    def undo(self) -> SetValue | str:
        return "a widget just made is kept" if self.before is None else SetValue(self.name, self.after, self.before)

    def summary(self) -> str:
        return f"created with value {self.after}" if self.before is None else f"value {self.before} -> {self.after}"

    def drift(self) -> tuple[DriftItem, ...]:
        return (DriftItem(field="value", desired=self.after, actual=str(self.before)),)


@dataclass(frozen=True)
class Seen:
    instance: str
    value: str | None

    @property
    def resource_id(self) -> str | None:
        return None if self.value is None else "id-1"


@dataclass(frozen=True)
class WidgetPlan:
    changes: tuple[SetValue, ...] = ()
    blocker: Blocker | None = None


class WidgetKind:
    resource = RESOURCE
    noun = "widget"
    nouns = "widgets"
    spec_model = WidgetSpec
    status_model = WidgetStatus
    finalizer = "example.io/widget"
    policy_model = KindPolicy
    sticky_stall_reasons = frozenset({"Refused"})
    service_errors: tuple[type[Exception], ...] = (ServiceDown,)

    def __init__(self, service: ToyService) -> None:
        self.service = service
        self.plans = 0

    def claim(self, body: Mapping[str, Any]) -> str:
        return str((body.get("spec") or {}).get("claim") or body["metadata"]["name"])

    async def client(self, namespace: str, spec: WidgetSpec, *, fresh: bool) -> ToyService:
        return self.service

    async def observe(self, client: ToyService, request: Any, *, applied: Sequence[Any]) -> Seen:
        if client.down:
            raise ServiceDown("the toy service is down")
        return Seen("toy-1", client.values.get(self.claim(request.body)))

    def plan(self, request: Any, observation: Seen) -> WidgetPlan:
        self.plans += 1
        if observation.value == "poison":  # the service took it, and cannot work with it
            broken = Blocker("Poisoned", "The widget cannot work with value poison.")
            changes = (
                ()
                if request.spec.value == "poison"
                else (SetValue(self.claim(request.body), "poison", request.spec.value),)
            )
            return WidgetPlan(changes, broken)
        if observation.value == request.spec.value:
            return WidgetPlan()
        return WidgetPlan((SetValue(self.claim(request.body), observation.value, request.spec.value),))

    def apply(self, client: ToyService, change: SetValue) -> Awaitable[None]:
        async def write() -> None:
            client.writes += 1
            if client.shows_writes:
                client.values[change.name] = change.after

        return write()

    def failure(self, client: ToyService, name: str, change: Any, error: Exception) -> Outcome:
        return Outcome.retrying(f"{error}")

    def verdict(self, request: Any, observation: Seen, plan: WidgetPlan, *, applied: Sequence[Any]) -> Outcome:
        return Outcome.ready(f"Widget has value {observation.value}.", {})

    def facts(self, request: Any, observation: Seen | None, plan: Any) -> dict[str, Any]:
        return {"widgetId": observation.resource_id if observation else None}

    def conditions(self, observation: Seen) -> tuple[KindCondition, ...]:
        return ()

    def references_version(self, observation: Seen) -> str | None:
        return None

    def recorded_id(self, status: WidgetStatus) -> str | None:
        return status.widget_id

    def protected(self, observation: Seen) -> str | None:
        return None

    def inventories(self) -> list[Awaitable[tuple[str, frozenset[str]]]]:
        async def listing() -> tuple[str, frozenset[str]]:
            if self.service.down:
                raise ServiceDown("the toy service is down")
            return "toy-1", frozenset(self.service.values)

        return [listing()]

    def delete(self, client: ToyService, request: Any, observation: Seen) -> Awaitable[None]:
        async def drop() -> None:
            client.values.pop(self.claim(request.body), None)

        return drop()


class RecordingKube:
    """Stores written statuses and Events as the API server would (an Event name is unique)."""

    def __init__(self) -> None:
        self.statuses: list[Mapping[str, Any]] = []
        self.approval_statuses: dict[str, Mapping[str, Any]] = {}  # by ChangeApproval name
        self.revisions: dict[str, dict[str, Any]] = {}  # ControllerRevisions by name
        self.events: dict[str, str] = {}
        self.messages: dict[str, str] = {}
        self.fail_status_writes = False
        self.fail_revisions = False

    async def replace_status(self, resource: ResourceInfo, key: ObjectKey, uid: str, status: Mapping[str, Any]) -> None:
        if self.fail_status_writes:
            raise KubeError(500, "etcd is having a bad day")
        if resource.plural == "changeapprovals":
            self.approval_statuses[key.name] = status
            return
        self.statuses.append(status)

    async def record_event(
        self, involved: Mapping[str, Any], resource: ResourceInfo, *, event_id: str | None, **note: Any
    ) -> None:
        if self.fail_status_writes:  # the process is "dead": nothing it sends arrives
            raise KubeError(503, "no one is listening")
        name = event_id or f"generated-{len(self.events)}"
        self.events.setdefault(name, note["reason"])
        self.messages.setdefault(name, note["message"])

    async def create_revision(self, revision: Mapping[str, Any]) -> None:
        if self.fail_revisions:
            raise KubeError(500, "etcd is having a bad day")
        self.revisions.setdefault(revision["metadata"]["name"], dict(revision))

    async def read_revision(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.revisions.get(name)

    async def list_revisions(self, namespace: str, label_selector: str) -> list[dict[str, Any]]:
        label, value = label_selector.split("=")
        return [r for r in self.revisions.values() if r["metadata"]["labels"].get(label) == value]

    async def delete_revision(self, namespace: str, name: str) -> None:
        del self.revisions[name]

    def reasons(self) -> list[str]:
        return list(self.events.values())


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


def controller_with(kind: WidgetKind, kube: RecordingKube) -> Controller[WidgetSpec, WidgetStatus]:
    return Controller(
        kind,  # type: ignore[arg-type]
        kube,  # type: ignore[arg-type]
        resync_interval=30,
        max_concurrent=1,
        namespaces=(),
        policy=KindPolicy(),
    )


async def reconcile(controller: Controller[Any, Any], kube: RecordingKube, key: ObjectKey) -> None:
    """One pass; then the stored copy takes the written status, as the watch would bring it."""
    before = len(kube.statuses)
    await controller.reconcile(key)
    await asyncio.gather(*controller._tasks)  # what the pass left to run after it (recording revisions)
    for status in kube.statuses[before:]:
        controller._store[key]["status"] = dict(status)


def ready_reason(controller: Controller[Any, Any], key: ObjectKey) -> tuple[str, str]:
    ready = next(c for c in controller._store[key]["status"]["conditions"] if c["type"] == "Ready")
    return ready["status"], ready["reason"]


KEY = ObjectKey("ns", "a")


async def test_reported_drift_after_a_transient_failure_is_still_only_reported() -> None:
    service = ToyService()
    kube = RecordingKube()
    controller = controller_with(WidgetKind(service), kube)
    controller.on_watch_event(None, widget("a", driftPolicy="Report"))
    await reconcile(controller, kube, KEY)
    assert ready_reason(controller, KEY) == ("True", "Succeeded")

    service.down = True
    await reconcile(controller, kube, KEY)
    assert ready_reason(controller, KEY) == ("False", "ProgressingWithRetry")
    service.values["a"] = "changed outside"
    service.down = False
    await reconcile(controller, kube, KEY)

    assert ready_reason(controller, KEY) == ("True", "DriftDetected")
    assert service.values["a"] == "changed outside"


async def test_a_new_generation_is_applied_whatever_the_drift_policy() -> None:
    service = ToyService()
    kube = RecordingKube()
    controller = controller_with(WidgetKind(service), kube)
    controller.on_watch_event(None, widget("a", driftPolicy="Report"))
    await reconcile(controller, kube, KEY)
    controller._store[KEY]["metadata"]["generation"] = 2
    controller._store[KEY]["spec"]["value"] = "v2"
    await reconcile(controller, kube, KEY)
    assert service.values["a"] == "v2"
    assert kube.reasons() == ["Created", "Updated"]


async def test_a_changed_referenced_secret_is_a_change_of_the_spec_applied_whatever_the_drift_policy() -> None:
    class Referencing(WidgetKind):
        """The value comes from a Secret whose version the kind reports (the spec's generation stays)."""

        secret = ("v1", "rv-1")

        async def observe(self, client: ToyService, request: Any, *, applied: Sequence[Any]) -> Seen:
            request.spec.value = self.secret[0]
            return await super().observe(client, request, applied=applied)

        def references_version(self, observation: Seen) -> str | None:
            return self.secret[1]

    service = ToyService()
    kube = RecordingKube()
    kind = Referencing(service)
    controller = controller_with(kind, kube)
    controller.on_watch_event(None, widget("a", driftPolicy="Report"))
    await reconcile(controller, kube, KEY)
    assert controller._store[KEY]["status"]["lastAppliedReferences"] == "rv-1"

    kind.secret = ("v2", "rv-2")
    await reconcile(controller, kube, KEY)
    assert service.values["a"] == "v2"  # applied, not reported as drift
    assert kube.reasons() == ["Created", "Updated"]
    assert controller._store[KEY]["status"]["lastAppliedReferences"] == "rv-2"


async def test_an_exception_from_the_kind_ends_as_a_readable_retrying_status() -> None:
    kind = WidgetKind(ToyService())
    kind.plan = None  # type: ignore[assignment, method-assign]  # calling it raises TypeError: a bug
    kube = RecordingKube()
    controller = controller_with(kind, kube)
    controller.on_watch_event(None, widget("a"))
    await reconcile(controller, kube, KEY)
    ready = kube.statuses[-1]["conditions"][0]
    assert (ready["status"], ready["reason"]) == ("False", "ProgressingWithRetry")
    assert "TypeError" in ready["message"]
    assert kube.reasons() == ["ProgressingWithRetry"]


async def test_changes_the_service_never_shows_stall_after_a_bounded_number_of_passes() -> None:
    service = ToyService(shows_writes=False)
    kube = RecordingKube()
    controller = controller_with(WidgetKind(service), kube)
    controller.on_watch_event(None, widget("a"))
    for _ in range(MAX_UNCONFIRMED_APPLIES + 3):
        await reconcile(controller, kube, KEY)
    assert service.writes == MAX_UNCONFIRMED_APPLIES  # nothing re-sent once stalled
    assert ready_reason(controller, KEY) == ("False", "NotConverging")
    controller._store[KEY]["metadata"]["generation"] = 2  # a new spec tries again
    await reconcile(controller, kube, KEY)
    assert service.writes == MAX_UNCONFIRMED_APPLIES + 1


async def test_a_resource_the_service_shows_only_after_the_pass_that_created_it_is_not_then_adopted() -> None:
    """Found at 10,000 topics: a broker behind Kafka's controller did not list a topic just created within the
    check after applying; the next pass found it and announced an adoption of the topic it had made."""
    service = ToyService(shows_writes=False)
    kube = RecordingKube()
    controller = controller_with(WidgetKind(service), kube)
    controller.on_watch_event(None, widget("a", value="v1"))
    await reconcile(controller, kube, KEY)
    assert ready_reason(controller, KEY)[1] == "Progressing"
    service.values["a"] = "v1"  # the service shows it now
    await reconcile(controller, kube, KEY)
    assert ready_reason(controller, KEY) == ("True", "Succeeded")
    assert kube.reasons() == ["Created"]
    assert controller._store[KEY]["status"].get("pendingEvents") is None


async def test_while_status_writes_fail_nothing_is_changed_or_announced_and_afterwards_each_change_once() -> None:
    service = ToyService()
    kube = RecordingKube()
    controller = controller_with(WidgetKind(service), kube)
    controller.on_watch_event(None, widget("a"))
    await reconcile(controller, kube, KEY)
    kube.fail_status_writes = True
    controller._store[KEY]["metadata"]["generation"] = 2
    controller._store[KEY]["spec"]["value"] = "v2"
    await reconcile(controller, kube, KEY)  # the intent cannot be recorded: the service is left alone
    assert service.values["a"] == "v1" and kube.reasons() == ["Created"]
    kube.fail_status_writes = False
    for _ in range(3):
        await reconcile(controller, kube, KEY)
    assert service.values["a"] == "v2"
    assert kube.reasons() == ["Created", "Updated"]


async def test_a_resource_created_by_a_pass_cut_short_is_reported_created_not_adopted() -> None:
    """A crash after the service changed and before the final status write: the next process says Created."""
    service = ToyService()
    kube = RecordingKube()
    first = controller_with(WidgetKind(service), kube)
    first.on_watch_event(None, widget("a"))
    kube.fail_status_writes = False
    written_before_apply: list[Mapping[str, Any]] = []

    original_apply = first.kind.apply

    def apply_then_crash(client: ToyService, change: SetValue) -> Awaitable[None]:
        written_before_apply.extend(kube.statuses)
        kube.fail_status_writes = True  # the process dies before its final status write
        return original_apply(client, change)

    first.kind.apply = apply_then_crash  # type: ignore[method-assign]
    await first.reconcile(KEY)
    assert service.values["a"] == "v1" and kube.reasons() == []
    assert [e["reason"] for e in written_before_apply[-1]["pendingEvents"]] == ["Created"]

    kube.fail_status_writes = False
    restarted = controller_with(WidgetKind(service), kube)
    restarted.on_watch_event(None, widget("a", status=written_before_apply[-1]))
    for _ in range(2):
        await reconcile(restarted, kube, KEY)
    assert kube.reasons() == ["Created"]
    assert "pendingEvents" not in restarted._store[KEY]["status"]


async def test_an_event_said_before_a_crash_is_not_said_again() -> None:
    service = ToyService()
    kube = RecordingKube()
    controller = controller_with(WidgetKind(service), kube)
    controller.on_watch_event(None, widget("a"))
    await reconcile(controller, kube, KEY)
    intent = next(s for s in kube.statuses if s.get("pendingEvents"))
    # A restart that finds the intent still recorded (its final write lost) says nothing twice.
    restarted = controller_with(WidgetKind(service), kube)
    restarted.on_watch_event(None, widget("a", status=intent))
    await reconcile(restarted, kube, KEY)
    assert kube.reasons() == ["Created"]


def test_objects_a_listing_no_longer_has_are_forgotten_and_release_their_claim() -> None:
    controller = controller_with(WidgetKind(ToyService()), RecordingKube())
    controller.on_watch_event(None, widget("ghost", version=10, claim="shared"))
    controller.on_watch_event(None, widget("live", version=11, claim="shared"))
    controller.on_watch_event(None, widget("newer", version=60))
    vanished = controller.forget_vanished(Listing("50", {ObjectKey("ns", "live"): "11"}))
    assert vanished == [ObjectKey("ns", "ghost")]
    assert set(controller._store) == {ObjectKey("ns", "live"), ObjectKey("ns", "newer")}
    assert controller._claimants["shared"] == {ObjectKey("ns", "live")}


def test_a_watch_event_older_than_the_held_copy_does_not_replace_it() -> None:
    controller = controller_with(WidgetKind(ToyService()), RecordingKube())
    controller.on_watch_event(None, widget("a", version=20, status={"observedGeneration": 1}))
    controller.on_watch_event("MODIFIED", widget("a", version=19))
    assert controller._store[KEY]["status"] == {"observedGeneration": 1}


def test_the_held_copy_leaves_out_managed_fields_and_kubectls_last_applied_configuration() -> None:
    controller = controller_with(WidgetKind(ToyService()), RecordingKube())
    watched = widget("a")
    watched["metadata"]["managedFields"] = [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}]
    watched["metadata"]["annotations"] = {
        "kubectl.kubernetes.io/last-applied-configuration": '{"spec": {}}',
        "infometis.io/reconcile-requested-at": "now",
    }
    controller.on_watch_event(None, watched)
    held = controller._store[KEY]["metadata"]
    assert "managedFields" not in held
    assert held["annotations"] == {"infometis.io/reconcile-requested-at": "now"}
    assert "managedFields" in watched["metadata"]  # kopf's event itself is left as it came


async def test_resources_no_object_manages_are_reported_and_left_alone() -> None:
    service = ToyService(values={"legacy": "x"})
    kube = RecordingKube()
    controller = controller_with(WidgetKind(service), kube)
    controller.on_watch_event(None, widget("a"))
    await reconcile(controller, kube, KEY)
    await controller._report_unmanaged()
    assert controller.unmanaged == {"toy-1": ("legacy",)}
    assert service.values == {"legacy": "x", "a": "v1"}


async def test_an_instance_slow_to_list_does_not_delay_the_report_of_the_others() -> None:
    released = asyncio.Event()

    class TwoInstances(WidgetKind):
        def inventories(self) -> list[Awaitable[tuple[str, frozenset[str]]]]:
            async def unreachable() -> tuple[str, frozenset[str]]:
                await released.wait()
                raise ServiceDown("no answer")

            return [unreachable(), *super().inventories()]

    controller = controller_with(TwoInstances(ToyService(values={"legacy": "x"})), RecordingKube())
    report = asyncio.create_task(controller._report_unmanaged())
    for _ in range(500):
        if controller.unmanaged:
            break
        await asyncio.sleep(0.01)
    assert controller.unmanaged == {"toy-1": ("legacy",)}  # while the other instance still keeps it waiting
    released.set()
    await report
    assert controller.unmanaged == {"toy-1": ("legacy",)}


async def test_a_report_cut_short_leaves_no_listing_running_to_fail_unobserved() -> None:
    class Hanging(WidgetKind):
        def inventories(self) -> list[Awaitable[tuple[str, frozenset[str]]]]:
            async def unreachable() -> tuple[str, frozenset[str]]:
                await asyncio.sleep(3600)
                raise ServiceDown("no answer")

            return [unreachable()]

    controller = controller_with(Hanging(ToyService()), RecordingKube())
    report = asyncio.create_task(controller._report_unmanaged())
    await asyncio.sleep(0.05)
    report.cancel()
    await asyncio.gather(report, return_exceptions=True)
    await asyncio.sleep(0)
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()] == []


async def test_a_change_refused_at_every_resync_writes_nothing_after_the_first_time() -> None:
    class Refusing(WidgetKind):
        def apply(self, client: ToyService, change: SetValue) -> Awaitable[None]:
            async def refuse() -> None:
                raise ServiceDown("no rights to do that")

            return refuse()

        def failure(self, client: ToyService, name: str, change: Any, error: Exception) -> Outcome:
            return Outcome.stalled("NotAuthorized", f"{error}")  # rechecked every resync: not sticky

    kube = RecordingKube()
    controller = controller_with(Refusing(ToyService()), kube)
    controller.on_watch_event(None, widget("a"))
    await reconcile(controller, kube, KEY)
    writes = len(kube.statuses)
    for _ in range(3):
        await reconcile(controller, kube, KEY)
    assert len(kube.statuses) == writes
    assert ready_reason(controller, KEY) == ("False", "NotAuthorized")


async def test_a_creation_cut_short_twice_in_a_row_is_still_announced() -> None:
    """Killed after creating; the next process, already changing something else, killed too."""
    service = ToyService()
    kube = RecordingKube()
    first = controller_with(WidgetKind(service), kube)
    first.on_watch_event(None, widget("a"))
    original_apply = first.kind.apply

    def apply_then_crash(client: ToyService, change: SetValue) -> Awaitable[None]:
        kube.fail_status_writes = True  # every process dies before its final status write
        return original_apply(client, change)

    first.kind.apply = apply_then_crash  # type: ignore[method-assign]
    await first.reconcile(KEY)
    second = controller_with(WidgetKind(service), kube)
    second.kind.apply = apply_then_crash  # type: ignore[method-assign]
    second.on_watch_event(None, widget("a", generation=2, status=kube.statuses[-1], value="v2"))
    kube.fail_status_writes = False
    await second.reconcile(KEY)
    assert service.values["a"] == "v2" and kube.reasons() == []

    kube.fail_status_writes = False
    third = controller_with(WidgetKind(service), kube)
    third.on_watch_event(None, widget("a", generation=2, status=kube.statuses[-1], value="v2"))
    await reconcile(third, kube, KEY)
    assert sorted(kube.reasons()) == ["Created", "Updated"]


async def test_a_pass_that_never_ends_is_cut_short_at_its_deadline_and_retried(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A service call that never returns (no answer, no timeout) must not hold its object for good."""
    monkeypatch.setattr(controller_module, "RECONCILE_DEADLINE_SECONDS", 0.05)
    kind = WidgetKind(ToyService())

    async def observe_forever(client: ToyService, request: Any, *, applied: Sequence[Any]) -> Seen:
        await asyncio.Event().wait()
        raise AssertionError("never reached")

    kind.observe = observe_forever  # type: ignore[method-assign]
    controller = controller_with(kind, RecordingKube())
    controller.on_watch_event(None, widget("a"))
    key = await controller._queue.get()
    slots = asyncio.Semaphore(1)
    await slots.acquire()
    await asyncio.wait_for(controller._process(key, slots), timeout=5)
    assert KEY in controller._queue._timers  # queued again, with backoff
    assert not slots.locked() and KEY not in controller._queue._processing
    assert "took longer than 0s and was cut short" in caplog.text and "Traceback" not in caplog.text


class ListingKube(RecordingKube):
    """Answers every listing with one error."""

    def __init__(self, error: KubeError) -> None:
        super().__init__()
        self.error = error

    async def list_versions(self, resource: ResourceInfo, namespace: str | None) -> Listing:
        raise self.error


class CountingListingKube(RecordingKube):
    """Answers every listing with the objects given (the first `failures` with an outage), counting them."""

    def __init__(self, versions: dict[ObjectKey, str], failures: int = 0) -> None:
        super().__init__()
        self.versions = versions
        self.failures = failures
        self.listings = 0

    async def list_versions(self, resource: ResourceInfo, namespace: str | None) -> Listing:
        self.listings += 1
        if self.listings <= self.failures:
            raise KubeError(0, "no answer from the API server: ClientConnectorError()")
        return Listing("100", dict(self.versions))


class ReadableListingKube(CountingListingKube):
    """Also answers a read of one object, from `objects` (what the API server holds)."""

    def __init__(self, objects: dict[ObjectKey, dict[str, Any]]) -> None:
        super().__init__({key: body["metadata"]["resourceVersion"] for key, body in objects.items()})
        self.objects = objects
        self.reads: list[ObjectKey] = []

    async def read_object(self, resource: ResourceInfo, key: ObjectKey) -> dict[str, Any] | None:
        self.reads.append(key)
        return self.objects.get(key)


async def test_a_change_the_watch_never_brought_is_taken_up_at_the_second_listing_that_shows_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A watch that stopped without a word (kopf's can) must not leave objects unreconciled for good."""
    missed = ObjectKey("ns", "b")
    kube = ReadableListingKube({KEY: widget("a", version=10), missed: widget("b", version=11)})
    controller = controller_with(WidgetKind(ToyService()), kube)
    controller.on_watch_event(None, widget("a", version=10))  # the watch listed "a", then brought nothing more
    await controller._relist()
    assert missed not in controller._store and kube.reads == []  # the watch may only be behind: not yet
    await controller._relist()
    assert kube.reads == [missed] and missed in controller._store
    assert controller._queue._queued.get(missed) is True  # reconciled as a change, not at the next resync
    assert "the watch did not bring 1 change" in caplog.text and "ns/b" in caplog.text
    await controller._relist()
    assert kube.reads == [missed]  # taken up once


async def test_a_change_the_watch_brought_between_two_listings_is_not_read_again() -> None:
    kube = ReadableListingKube({KEY: widget("a", version=11)})
    controller = controller_with(WidgetKind(ToyService()), kube)
    controller.on_watch_event(None, widget("a", version=10))
    await controller._relist()
    controller.on_watch_event("MODIFIED", widget("a", version=11))  # the watch was behind, not stopped
    await controller._relist()
    assert kube.reads == []


async def test_a_resync_relists_only_after_the_watch_listed_again() -> None:
    kube = CountingListingKube({KEY: "10"})
    controller = controller_with(WidgetKind(ToyService()), kube)
    controller.on_watch_event(None, widget("a", version=10))  # the watch's first listing
    await controller.resync()
    assert kube.listings == 1
    controller.on_watch_event("MODIFIED", widget("a", version=11))
    await controller.resync()
    await controller.resync()
    assert kube.listings == 1  # the watch ran on: it missed no deletion
    controller.on_watch_event(None, widget("a", version=12))  # the watch restarted and listed again
    await controller.resync()
    assert kube.listings == 2


async def test_a_resync_relists_at_least_every_few_resyncs_for_a_watch_that_relisted_nothing() -> None:
    kube = CountingListingKube({})
    controller = controller_with(WidgetKind(ToyService()), kube)
    controller.on_watch_event("ADDED", widget("a", version=10))
    for _ in range(RELIST_AT_LEAST_EVERY_RESYNCS - 1):
        await controller.resync()
    assert kube.listings == 0 and KEY in controller._store
    await controller.resync()
    assert kube.listings == 1 and KEY not in controller._store


async def test_a_resync_starts_its_reconciles_a_slice_at_a_time_within_part_of_the_interval() -> None:
    count = 2 * RESYNC_SLICE + RESYNC_SLICE // 2  # three slices, each pause a third of the spread
    kind = WidgetKind(ToyService(values={f"w{i}": "v1" for i in range(count)}))  # in sync: one plan per pass
    interval = 3.0
    controller = Controller(
        kind,  # type: ignore[arg-type]
        RecordingKube(),  # type: ignore[arg-type]
        resync_interval=interval,
        max_concurrent=1000,
        namespaces=(),
        policy=KindPolicy(),
    )
    ready = {
        "observedGeneration": 1,
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "Ready",
                "message": "",
                "observedGeneration": 1,
                "lastTransitionTime": "2026-11-27T00:00:00Z",
            }
        ],
    }
    for i in range(count):
        controller.on_watch_event("MODIFIED", widget(f"w{i}", status=ready))
    background = asyncio.create_task(controller.run(urgent=False))
    try:
        await controller.resync()
        await asyncio.sleep(interval * RESYNC_SPREAD / 3 / 2)
        assert kind.plans == RESYNC_SLICE  # the first slice only, halfway through its pause
        await asyncio.sleep(interval * RESYNC_SPREAD)
        assert kind.plans == count  # all of them within the spread
    finally:
        background.cancel()


async def test_a_relist_that_failed_is_tried_again_at_the_next_resync() -> None:
    kube = CountingListingKube({}, failures=1)
    controller = controller_with(WidgetKind(ToyService()), kube)
    controller.on_watch_event(None, widget("a", version=10))
    await controller.resync()
    assert KEY in controller._store
    await controller.resync()
    assert kube.listings == 2 and KEY not in controller._store


@pytest.mark.parametrize(
    ("error", "warned"),
    [
        (KubeError(0, "no answer from the API server: ClientConnectorError()"), False),
        (KubeError(503, "the request has been made before all known HTTP paths have been installed"), False),
        (KubeError(403, 'kafkatopics is forbidden: cannot list resource "widgets"'), True),
    ],
)
async def test_a_relist_failing_for_an_api_server_outage_is_not_a_warning_at_every_resync(
    error: KubeError, warned: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """The API server probe logs an outage once; a refusal (403) is the resync's own to report."""
    controller = controller_with(WidgetKind(ToyService()), ListingKube(error))
    await controller._relist()
    assert bool([r for r in caplog.records if r.levelno >= logging.WARNING]) is warned


async def test_the_api_server_unreachable_while_reading_a_reference_is_retried_without_a_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    kind = WidgetKind(ToyService())

    async def observe_reading_a_configmap(client: ToyService, request: Any, *, applied: Sequence[Any]) -> Seen:
        raise KubeError(0, "no answer from the API server: ClientConnectorError()")

    kind.observe = observe_reading_a_configmap  # type: ignore[method-assign]
    kube = RecordingKube()
    controller = controller_with(kind, kube)
    controller.on_watch_event(None, widget("a"))
    await reconcile(controller, kube, KEY)
    ready = kube.statuses[-1]["conditions"][0]
    assert (ready["status"], ready["reason"]) == ("False", "ProgressingWithRetry")
    assert "Kubernetes API" in ready["message"]
    assert "Traceback" not in caplog.text and "failed unexpectedly" not in caplog.text


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, {"kind": "Widget", **labels}) or 0.0


async def test_metrics_count_conditions_drift_once_per_finding_and_time_to_ready_once_per_generation() -> None:
    service = ToyService()
    kube = RecordingKube()
    controller = controller_with(WidgetKind(service), kube)
    ready = {"type": "Ready", "status": "True", "reason": "Succeeded"}
    before = {
        name: sample(name)
        for name in (
            "infometis_generation_ready_seconds_count",
            "infometis_drift_detected_total",
            "infometis_drift_corrected_total",
        )
    }
    ready_before = sample("infometis_objects_by_condition", **ready)

    def watched(version: int) -> None:  # the watch brings the object as last written
        controller.on_watch_event("MODIFIED", widget("a", version=version, status=dict(kube.statuses[-1])))

    controller.on_watch_event(None, widget("a"))
    await reconcile(controller, kube, KEY)
    watched(11)
    assert sample("infometis_generation_ready_seconds_count") == before["infometis_generation_ready_seconds_count"] + 1
    assert sample("infometis_objects_by_condition", **ready) == ready_before + 1

    service.values["a"] = "changed outside"
    for version in (12, 13):  # the pass that corrects it, then one that finds nothing
        await reconcile(controller, kube, KEY)
        watched(version)
    assert sample("infometis_drift_detected_total") == before["infometis_drift_detected_total"] + 1
    assert sample("infometis_drift_corrected_total") == before["infometis_drift_corrected_total"] + 1
    # Ready again at the same generation: not a new time to Ready.
    assert sample("infometis_generation_ready_seconds_count") == before["infometis_generation_ready_seconds_count"] + 1

    controller.on_watch_event("DELETED", widget("a", version=14))
    assert sample("infometis_objects_by_condition", **ready) == ready_before
