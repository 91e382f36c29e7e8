"""The kind-agnostic reconcile loop.

kopf's watch feeds `on_watch_event`, which keeps the latest copy of each
object and queues those that need work: a new generation, a manual reconcile
request, a deletion, or a finalizer that does not match deletionPolicy. A
periodic resync queues every object to catch drift. Workers take keys from
the queue (one reconcile per object at a time, many objects at once, so
their service calls batch together) and run:

    observe -> plan -> apply   (the kind's reconcile, returning an Outcome)
    summarize                  (pure: conditions, status, Events)
    write                      (Events, and the status only if it changed)

A reconcile that finds nothing to do therefore writes nothing at all.
"""

from __future__ import annotations

import asyncio
import copy
import datetime
import logging
import math
import time
from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import replace
from typing import Any, Generic, TypeVar

from pydantic import ValidationError

from controllers.core import metrics
from controllers.core.approval import CHANGE_APPROVAL, Approval, ApprovalPhase
from controllers.core.batching import URGENT
from controllers.core.kind import Kind, ReconcileRequest, SpecT, StatusT
from controllers.core.kube import KubeApi, KubeError, Listing
from controllers.core.logs import about
from controllers.core.model import DeletionPolicy
from controllers.core.objects import ObjectKey, merge_patch
from controllers.core.outcome import (
    DRIFT_CORRECTED,
    DRIFT_DETECTED,
    INVALID_SPEC,
    NOT_CONVERGING,
    RETAINED,
    EventNote,
    Outcome,
    Phase,
)
from controllers.core.policy import NOT_PERMITTED, KindPolicy
from controllers.core.revisions import (
    HISTORY,
    OWNER_LABEL,
    REVISION_NOT_FOUND,
    ROLLBACK_ANNOTATION,
    ROLLED_BACK_TO_REVISION,
    beyond_history,
    requested_revision,
    revision_body,
    revision_name,
)
from controllers.core.status import READY, STALLED, summarize
from controllers.core.sync import remove, sync
from controllers.core.workqueue import WorkQueue

RECONCILE_REQUEST_ANNOTATION = "infometis.io/reconcile-requested-at"
BASE_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0
# A resync lists the objects again (to forget those deleted while the watch was away) only after the
# watch has listed them again, as it does when it restarts; and at least every this many resyncs, for a
# restart whose listing was empty.
RELIST_AT_LEAST_EVERY_RESYNCS = 10
# A resync starts its reconciles a slice at a time, the slices spread over this fraction of the resync interval:
# all at once, thousands of reconciles take the CPU the operator and the service share from a change made
# meanwhile (3x its time on two cores); a slice of 100 still reaches the service in batches.
RESYNC_SLICE = 100
RESYNC_SPREAD = 0.5
# The longest one pass may take: every service call has a timeout of its own (15-120 s), so a pass that runs
# this long waits on something that will never answer, and would hold its object for good. Cut short, it is
# retried like any failed pass (the intent recorded before a change makes that as safe as a crash).
RECONCILE_DEADLINE_SECONDS = 600.0
# Passes in a row that apply changes the service then does not show, before the
# object stalls instead of applying them again (and announcing it each time).
MAX_UNCONFIRMED_APPLIES = 5


_formatted_second: tuple[int, str] = (0, "")


def _now() -> str:
    """The time as conditions carry it (whole seconds), formatted once per second: every pass asks."""
    global _formatted_second
    second = int(time.time())
    if _formatted_second[0] != second:
        stamp = datetime.datetime.fromtimestamp(second, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        _formatted_second = (second, stamp)
    return _formatted_second[1]


def _version_number(resource_version: str) -> int:
    # Opaque by contract, but etcd revisions: comparable as integers on every API server in use.
    return int(resource_version) if resource_version.isdigit() else 0


def _version(body: Mapping[str, Any]) -> int:
    return _version_number(str(body["metadata"].get("resourceVersion", "")))


def _deletes_resource(body: Mapping[str, Any]) -> bool:
    """Whether deleting the object may delete the resource (Delete, or a kind's conditional policy such as
    DeleteIfEmpty), read without parsing the rest of the spec: anything but Retain needs the finalizer."""
    written = (body.get("spec") or {}).get("deletionPolicy")
    return written is not None and written != DeletionPolicy.RETAIN.value


# What the API server and kubectl add to every object and the controller never reads: held for
# thousands of objects they would be most of the operator's memory.
UNREAD_METADATA = ("managedFields",)
UNREAD_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",)


def _drop_unread_metadata(body: dict[str, Any]) -> None:
    meta = body["metadata"]
    for field in UNREAD_METADATA:
        meta.pop(field, None)
    annotations = meta.get("annotations")
    if annotations and any(a in annotations for a in UNREAD_ANNOTATIONS):
        meta["annotations"] = {k: v for k, v in annotations.items() if k not in UNREAD_ANNOTATIONS}


def _held_copy(body: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a watched object to hold, without copying what is dropped from it anyway."""
    meta = body["metadata"]
    return copy.deepcopy({**body, "metadata": {k: v for k, v in meta.items() if k not in UNREAD_METADATA}})


def _superseded_after_applying(held: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """A new generation replaces one whose spec was applied and confirmed. The spec is compared too: the API
    server also bumps a custom resource's generation when its deletion starts."""
    generation = held["metadata"].get("generation")
    return (
        isinstance(generation, int)
        and new["metadata"].get("generation", generation) > generation
        and (held.get("status") or {}).get("lastAppliedGeneration") == generation
        and held.get("spec") != new.get("spec")
    )


def _rollback_request_changed(body: Mapping[str, Any]) -> bool:
    """A rollback annotation added, changed or removed since the status last answered it."""
    served = (body.get("status") or {}).get("rolledBackTo")
    return requested_revision(body) != served


def _condition(status: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    return next((c for c in status.get("conditions", []) if c.get("type") == kind), None)


class _WrittenStatus:
    """The object's status as this pass last wrote it (an intent written mid-pass moves it on)."""

    def __init__(self, status: Mapping[str, Any]) -> None:
        self.status: Mapping[str, Any] = status


class Controller(Generic[SpecT, StatusT]):
    def __init__(
        self,
        kind: Kind[SpecT, StatusT],
        kube: KubeApi,
        *,
        resync_interval: float,
        max_concurrent: int,
        namespaces: tuple[str, ...],
        policy: KindPolicy,
        leading: Callable[[], bool] = lambda: True,
    ) -> None:
        self.kind = kind
        # Whether this process may still reconcile (leader election): checked before each pass, so that
        # none starts after the Lease's renew deadline, even when the process was paused past it.
        self._leading = leading
        self._policy = policy
        self._kube = kube
        self._namespaces = namespaces  # watched namespaces; empty: all
        # Per service instance: the resources no object manages, as of the last resync.
        self.unmanaged: dict[str, tuple[str, ...]] = {}
        self._resync_interval = resync_interval
        self._max_concurrent = max_concurrent
        self._store: dict[ObjectKey, dict[str, Any]] = {}
        # Which objects claim each external resource, so finding an object's
        # peers costs a lookup, not a scan of every object.
        self._claimants: dict[Hashable, set[ObjectKey]] = {}
        self._queue: WorkQueue[ObjectKey] = WorkQueue(
            base_backoff=BASE_BACKOFF_SECONDS, max_backoff=MAX_BACKOFF_SECONDS
        )
        metrics.QUEUE_DEPTH.labels(kind.resource.kind).set_function(lambda: len(self._queue))
        # Per object: its conditions as (type, status, reason), as counted in infometis_objects_by_condition.
        self._conditions: dict[ObjectKey, frozenset[tuple[str, str, str]]] = {}
        # Per object: the newest generation this process saw, and when (for the time to Ready).
        self._generation_seen: dict[ObjectKey, tuple[int, float]] = {}
        self._log = logging.getLogger(f"infometis.{kind.resource.kind.lower()}")
        self._tasks: set[asyncio.Task[None]] = set()
        # Per object: ((generation, reconcile token), passes in a row with unconfirmed changes).
        self._unconfirmed: dict[ObjectKey, tuple[tuple[int, str | None], int]] = {}
        # Whether the watch listed the objects since the last relist (it restarted: deletions may be unseen).
        self._watch_listed = False
        self._resyncs_since_relist = 0
        # Per object the last listing showed newer than the watch had brought: the version it showed.
        self._unbrought: dict[ObjectKey, str] = {}
        # Per object: the ChangeApprovals naming it, by their name.
        self._approvals: dict[ObjectKey, dict[str, Approval]] = {}
        # Revisions not recorded yet (the API server refused or was away), tried again at the object's next pass.
        self._unrecorded: dict[ObjectKey, dict[str, Any]] = {}

    # --- what to reconcile --------------------------------------------------------

    def on_watch_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """Called for every watch event; `event_type` None is the initial listing."""
        key = ObjectKey.of(body)
        if event_type is None:
            self._watch_listed = True
        if event_type == "DELETED":
            self._forget(key)
            return
        held = self._store.get(key)
        if held is not None and _version(held) > _version(body):
            return  # older than what a write already answered: keep the newer copy
        generation = body["metadata"].get("generation")
        if isinstance(generation, int) and self._generation_seen.get(key, (None,))[0] != generation:
            self._generation_seen[key] = (generation, time.monotonic())
        if held is not None and _superseded_after_applying(held, body):
            # The spec being replaced was applied: it joins the history, for a rollback to it later.
            self._record_later(key, revision_body(self.kind.resource, held))
        self._keep(key, _held_copy(body))
        self._claimants.setdefault(self.kind.claim(body), set()).add(key)  # the claim never changes
        if event_type is None or self._needs_reconcile(body):
            self._queue.add(key)

    def on_approval_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """Called for every watch event of a ChangeApproval naming an object of this kind."""
        approval = Approval.of(body)
        if approval is None:
            return
        approvals = self._approvals.setdefault(approval.target, {})
        if event_type == "DELETED":
            approvals.pop(approval.name, None)
            if not approvals:
                del self._approvals[approval.target]
            return
        approvals[approval.name] = approval
        if event_type == "ADDED" and approval.target in self._store:
            self._queue.add(approval.target)  # an object waiting for it goes on now

    def _keep(self, key: ObjectKey, body: dict[str, Any]) -> None:
        """Hold the object's latest copy, and count its conditions as that copy has them."""
        self._store[key] = body
        _drop_unread_metadata(body)
        conditions = frozenset(
            (str(c.get("type")), str(c.get("status")), str(c.get("reason") or ""))
            for c in (body.get("status") or {}).get("conditions") or []
        )
        self._count_conditions(key, conditions)

    def _count_conditions(self, key: ObjectKey, conditions: frozenset[tuple[str, str, str]]) -> None:
        before = self._conditions.get(key, frozenset())
        if conditions == before:
            return
        kind = self.kind.resource.kind
        for labels in before - conditions:
            metrics.OBJECTS_BY_CONDITION.labels(kind, *labels).dec()
        for labels in conditions - before:
            metrics.OBJECTS_BY_CONDITION.labels(kind, *labels).inc()
        if conditions:
            self._conditions[key] = conditions
        else:
            self._conditions.pop(key, None)

    def _forget(self, key: ObjectKey) -> None:
        """The object is gone: drop it, its claim and its pending work."""
        gone = self._store.pop(key, None)
        self._count_conditions(key, frozenset())
        self._generation_seen.pop(key, None)
        self._queue.discard(key)
        self._unconfirmed.pop(key, None)
        self._unrecorded.pop(key, None)
        if gone is None:
            return
        claim = self.kind.claim(gone)
        peers = self._claimants.get(claim, set())
        peers.discard(key)
        if not peers:
            self._claimants.pop(claim, None)
        # A peer that lost the claim to this object may own it now.
        for peer in peers:
            self._queue.add(peer)

    def forget_vanished(self, listing: Listing) -> list[ObjectKey]:
        """Drop every object a full listing no longer has; the keys dropped.

        A watch that restarts (its resourceVersion expired, the API server
        restarted) lists again and sends no DELETED for objects deleted while
        it was away; without this such an object would be reconciled, and keep
        its claim, forever. An object missing from the listing but newer than
        it was created after the listing was taken, and stays.
        """
        listed_at = _version_number(listing.resource_version)
        vanished = [
            key for key, body in self._store.items() if key not in listing.versions and _version(body) < listed_at
        ]
        for key in vanished:
            self._forget(key)
        return vanished

    def _needs_reconcile(self, body: Mapping[str, Any]) -> bool:
        meta = body["metadata"]
        status = body.get("status") or {}
        token = (meta.get("annotations") or {}).get(RECONCILE_REQUEST_ANNOTATION)
        wants_finalizer = _deletes_resource(body)
        return bool(
            meta.get("deletionTimestamp")
            or wants_finalizer != (self.kind.finalizer in meta.get("finalizers", []))
            or meta.get("generation") != status.get("observedGeneration")
            or (token is not None and token != status.get("lastHandledReconcileAt"))
            or _rollback_request_changed(body)
            or _condition(status, READY) is None
        )

    # --- running ----------------------------------------------------------------------

    async def run(self, *, urgent: bool) -> None:
        """Process one lane of the queue until cancelled: urgent work (changes, retries) or background work
        (the resync), each with up to max_concurrent reconciles of its own, so a resync of every object
        never holds a change back. Each lane, and `resync_forever`, runs as its own task, started before
        kopf: the health check sees each loop, and kopf leaves them alone at shutdown."""
        slots = asyncio.Semaphore(self._max_concurrent)
        started = 0
        URGENT.set(urgent)  # the tasks this loop starts copy its context: their service calls use this lane
        try:
            while True:
                await slots.acquire()  # a free slot first: the key is taken only when it can start
                key = await self._queue.get(urgent=urgent)
                task = asyncio.create_task(self._process(key, slots))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                if not urgent:
                    # A resync queues every object at once: starting them one turn of the event loop apart
                    # lets a change's reconcile run between them instead of after hundreds of first steps,
                    # and pausing after each slice spreads the resync's work over part of the interval.
                    started += 1
                    await asyncio.sleep(self._resync_pause() if started % RESYNC_SLICE == 0 else 0)
        finally:
            for task in list(self._tasks):
                task.cancel()

    def _resync_pause(self) -> float:
        """The pause after each slice of a resync: its slices start within RESYNC_SPREAD of the interval."""
        slices = math.ceil(len(self._store) / RESYNC_SLICE)
        return self._resync_interval * RESYNC_SPREAD / max(slices, 1)

    async def resync_forever(self) -> None:
        """Relist and queue every object every resync interval, in the background lane, until cancelled."""
        while True:
            await asyncio.sleep(self._resync_interval)
            await self.resync()

    async def resync(self) -> None:
        """Queue every object in the background lane, after a relist when one is due."""
        self._resyncs_since_relist += 1
        if self._watch_listed or self._resyncs_since_relist >= RELIST_AT_LEAST_EVERY_RESYNCS:
            # Listing thousands of objects is a resync's largest cost after the service's answers:
            # only a watch that restarted can have missed a deletion.
            self._watch_listed = not await self._relist()  # a failed relist stays due
            self._resyncs_since_relist = 0
        for key in list(self._store):
            self._queue.add(key, urgent=False)

    async def report_unmanaged_forever(self) -> None:
        # Apart from the resync: listing an unreachable cluster's topics must not delay it.
        while True:
            await asyncio.sleep(self._resync_interval)
            await self._report_unmanaged()

    async def _report_unmanaged(self) -> None:
        """The seed design's orphan warning: resources no object manages, reported and never touched.
        Each instance is reported as soon as it is listed: one that does not answer delays no other."""
        try:
            listings = self.kind.inventories()
        except Exception:  # a report only: never let it stop the resync
            self._log.exception("could not list the unmanaged resources of kind %s", self.kind.resource.kind)
            return
        claimed: dict[str, set[str]] = {}
        for body in self._store.values():
            instance = (body.get("status") or {}).get("clusterId")
            if instance:
                claimed.setdefault(instance, set()).add(self.kind.claim(body))
        # Each listing's failure is its result, and the tasks end with this pass: none is left to fail
        # unobserved (kopf re-raises such a failure at shutdown).
        tasks = [asyncio.ensure_future(_outcome(listing)) for listing in listings]
        try:
            for next_done in asyncio.as_completed(tasks):
                listed = await next_done
                if isinstance(listed, self.kind.service_errors):
                    continue  # the objects using this connection say so in their conditions
                if isinstance(listed, BaseException):
                    self._log.error(
                        "could not list the unmanaged resources of kind %s",
                        self.kind.resource.kind,
                        exc_info=listed,
                    )
                    continue
                instance, names = listed
                self._report(instance, tuple(sorted(names - claimed.get(instance, set()))))
        finally:
            for task in tasks:
                task.cancel()

    def _report(self, instance: str, unmanaged: tuple[str, ...]) -> None:
        metrics.UNMANAGED.labels(self.kind.resource.kind, instance).set(len(unmanaged))
        if unmanaged == self.unmanaged.get(instance):
            return
        self.unmanaged[instance] = unmanaged
        shown = ", ".join(unmanaged[:20]) + (f" and {len(unmanaged) - 20} more" if len(unmanaged) > 20 else "")
        self._log.info(
            "%s on %s managed by no %s (left alone): %s",
            f"{len(unmanaged)} {self.kind.noun}" if len(unmanaged) == 1 else f"{len(unmanaged)} {self.kind.nouns}",
            instance,
            self.kind.resource.kind,
            shown or "none",
        )

    async def _relist(self) -> bool:
        """Forget the objects a full listing no longer has, and take up the changes the watch did not bring;
        False if the listing failed."""
        try:
            listings = [await self._kube.list_versions(self.kind.resource, ns) for ns in self._namespaces or (None,)]
        except KubeError as error:
            # An API server that is away is the API server probe's to report, once, not every resync's.
            log = self._log.debug if error.unavailable else self._log.warning
            log("could not list %s to check for deleted objects: %s", self.kind.resource.plural, error)
            return False
        for listing in listings:
            for key in self.forget_vanished(listing):
                self._about(key).info("deleted while the watch was away; forgotten")
        await self._take_up_unbrought({key: v for listing in listings for key, v in listing.versions.items()})
        return True

    async def _take_up_unbrought(self, listed: Mapping[ObjectKey, str]) -> None:
        """Read and queue each object two listings in a row showed at a version the watch never brought.

        kopf's watch can stop without a word (nolar/kopf#1276); then new objects and changes would wait for
        good. Once is not enough to tell: the watch may only be behind the listing. Twice, a relist apart, the
        same version of an object the watch never brought means it stopped: the object is read and handled as
        the watch would have, and the gap is reported, so the operator goes on, only slower, until restarted.
        """
        unbrought = {
            key: version
            for key, version in listed.items()
            if key not in self._store or _version(self._store[key]) < _version_number(version)
        }
        missed = sorted(key for key, version in unbrought.items() if self._unbrought.get(key) == version)
        self._unbrought = {key: version for key, version in unbrought.items() if key not in missed}
        if not missed:
            return
        metrics.WATCH_MISSED.labels(self.kind.resource.kind).inc(len(missed))
        shown = ", ".join(f"{k.namespace}/{k.name}" for k in missed[:20]) + (" and more" if len(missed) > 20 else "")
        self._log.warning(
            "the watch did not bring %d change(s) of %s that two listings showed (%s): read and handled now; "
            "if this repeats, the watch has stopped and a restart of the operator starts it again",
            len(missed),
            self.kind.resource.plural,
            shown,
        )
        for key in missed:
            try:
                body = await self._kube.read_object(self.kind.resource, key)
            except KubeError as error:
                self._about(key).debug("could not read it (the next listing tries again): %s", error)
                continue
            if body is not None:
                self.on_watch_event("MODIFIED", body)

    async def _process(self, key: ObjectKey, slots: asyncio.Semaphore) -> None:
        started = time.monotonic()
        deadline = asyncio.timeout(RECONCILE_DEADLINE_SECONDS)
        try:
            if not self._leading():
                return  # the leader election ends the process; the next leader reconciles this object
            async with deadline:
                await self.reconcile(key)
        except Exception:
            # The loop must outlive any bug or surprise: log it and retry later.
            if deadline.expired():
                self._about(key).error(
                    "a pass took longer than %.0fs and was cut short (a call that never returned); retrying with "
                    "backoff",
                    RECONCILE_DEADLINE_SECONDS,
                )
            else:
                self._about(key).exception("reconcile failed unexpectedly; retrying with backoff")
            self._retry(key)
        finally:
            metrics.RECONCILE_SECONDS.labels(self.kind.resource.kind).observe(time.monotonic() - started)
            self._queue.done(key)
            slots.release()

    # --- one object ---------------------------------------------------------------------

    async def reconcile(self, key: ObjectKey) -> None:
        body = self._store.get(key)
        if body is None:
            return
        unrecorded = self._unrecorded.get(key)
        if unrecorded is not None:
            self._record_later(key, unrecorded)
        meta = body["metadata"]
        token = (meta.get("annotations") or {}).get(RECONCILE_REQUEST_ANNOTATION)
        # Deletion and the finalizer follow the raw fields, so an object whose spec this
        # operator cannot parse (a newer CRD, a bad value) can still be let go with Retain.
        if meta.get("deletionTimestamp"):
            await self._finalize(key, body)
            return
        body = await self._sync_finalizer(key, body)
        if body is None:
            return
        written = _WrittenStatus(body.get("status") or {})
        try:
            spec = self.kind.spec_model.model_validate(body.get("spec") or {})
        except ValidationError as error:
            await self._finish(
                key, body, Outcome.stalled(INVALID_SPEC, f"The spec is invalid: {error}"), token, written
            )
            return

        if spec.suspend:
            await self._finish(key, body, Outcome.suspended(), token, written)
            return
        revision = requested_revision(body)
        if revision is not None:
            # A rollback on request: the service gets that revision's spec instead of the object's own.
            earlier = await self._revision_spec(key, body, revision)
            if isinstance(earlier, Outcome):
                await self._finish(key, body, earlier, token, written)
                return
            spec = earlier
        pinned = revision if isinstance(revision, int) else None
        refusal = self._policy.refusal(key.namespace, self.kind.claim(body), spec)
        if refusal is not None:
            outcome = Outcome.stalled(NOT_PERMITTED, f"Not permitted: {refusal}.")
        elif self._stalled_until_new_generation(body, token):
            return
        else:
            outcome = self._bound_unconfirmed(
                key, body, token, await self._guarded(sync, key, body, spec, written, pinned)
            )
        if outcome.phase is Phase.READY:
            outcome = self._served(body, outcome, pinned)
        await self._finish(key, body, outcome, token, written)

    def _served(self, body: Mapping[str, Any], outcome: Outcome, pinned: int | None) -> Outcome:
        """A Ready outcome, said as the revision served when a rollback was requested."""
        if pinned is None:
            return replace(outcome, facts={**outcome.facts, "rolledBackTo": None})
        generation = body["metadata"]["generation"]
        return replace(
            outcome,
            phase=Phase.ROLLED_BACK,
            reason=ROLLED_BACK_TO_REVISION,
            message=(
                f"The {self.kind.noun} has revision {pinned}'s spec, as {ROLLBACK_ANNOTATION} asks; this object's "
                f"spec (generation {generation}) is applied once the annotation is removed."
            ),
            facts={**outcome.facts, "rolledBackTo": pinned},
        )

    async def _revision_spec(self, key: ObjectKey, body: Mapping[str, Any], revision: int | str) -> SpecT | Outcome:
        """The spec a recorded revision of this very object holds, or why there is none to apply."""
        if isinstance(revision, str):
            return Outcome.stalled(
                REVISION_NOT_FOUND,
                f"{ROLLBACK_ANNOTATION} must be a revision number (a generation this object was Ready at), not "
                f"{revision!r}.",
            )
        uid = body["metadata"]["uid"]
        try:
            found = await self._kube.read_revision(key.namespace, revision_name(self.kind.resource, key.name, revision))
            if found is None or (found["metadata"].get("labels") or {}).get(OWNER_LABEL) != uid:
                recorded = await self._kube.list_revisions(key.namespace, f"{OWNER_LABEL}={uid}")
                numbers = ", ".join(
                    str(r.get("revision")) for r in sorted(recorded, key=lambda r: r.get("revision", 0))
                )
                return Outcome.stalled(
                    REVISION_NOT_FOUND,
                    f"Revision {revision} of this object is not recorded (recorded: {numbers or 'none'}); nothing was "
                    f"changed. Name one of those in {ROLLBACK_ANNOTATION}, or remove it.",
                )
        except KubeError as error:
            return Outcome.retrying(f"Could not read revision {revision} of this object: {error}")
        try:
            return self.kind.spec_model.model_validate((found.get("data") or {}).get("spec") or {})
        except ValidationError as error:
            return Outcome.stalled(INVALID_SPEC, f"Revision {revision}'s spec does not parse any more: {error}")

    async def _guarded(
        self,
        step: Callable[[Kind[SpecT, StatusT], ReconcileRequest[SpecT, StatusT]], Awaitable[Outcome]],
        key: ObjectKey,
        body: Mapping[str, Any],
        spec: SpecT,
        written: _WrittenStatus,
        pinned: int | None = None,
    ) -> Outcome:
        """A sync or removal step, with any exception turned into a status a user can read."""
        try:
            return await step(self.kind, self._request(key, body, spec, written, pinned))
        except Exception as error:
            # A bug or a surprise from a client: the traceback goes to the log once per
            # pass, the status says what happened (the type only: a client's text could
            # carry connection details), and the object is retried with backoff.
            self._about(key).exception("reconcile failed unexpectedly")
            return Outcome.retrying(
                f"The operator failed unexpectedly ({type(error).__name__}); it retries with backoff and its "
                "log has the details."
            )

    def _bound_unconfirmed(
        self, key: ObjectKey, body: Mapping[str, Any], token: str | None, outcome: Outcome
    ) -> Outcome:
        """Stall a change the service accepts but never shows, instead of re-sending it forever."""
        if not outcome.unconfirmed_changes:
            self._unconfirmed.pop(key, None)
            return outcome
        attempt = (body["metadata"]["generation"], token)
        previous = self._unconfirmed.get(key)
        count = previous[1] + 1 if previous is not None and previous[0] == attempt else 1
        self._unconfirmed[key] = (attempt, count)
        if count < MAX_UNCONFIRMED_APPLIES:
            return outcome
        self._unconfirmed.pop(key, None)
        return replace(
            outcome,
            phase=Phase.STALLED,
            reason=NOT_CONVERGING,
            message=(
                f"The service accepted the changes {count} times in a row but never showed them; stopped re-sending "
                f"them until the spec changes or a reconcile is requested. Last: {outcome.message}"
            ),
            requeue_after=None,
        )

    def _request(
        self, key: ObjectKey, body: Mapping[str, Any], spec: SpecT, written: _WrittenStatus, pinned: int | None
    ) -> ReconcileRequest[SpecT, StatusT]:
        status = self.kind.status_model.model_validate(body.get("status") or {})
        # Drift is a difference from what was applied last: the revision served, or else this generation.
        if pinned is not None:
            spec_applied = status.rolled_back_to == pinned
        else:
            spec_applied = (
                status.rolled_back_to is None and status.last_applied_generation == body["metadata"]["generation"]
            )
        peers = tuple(self._store[other] for other in self._claimants.get(self.kind.claim(body), ()) if other != key)

        async def record_intent(fields: Mapping[str, Any]) -> bool:
            intended = {**written.status, **fields}
            if not await self._write_status(key, body["metadata"]["uid"], written.status, intended):
                return False
            written.status = intended
            return True

        return ReconcileRequest(
            key=key,
            body=body,
            spec=spec,
            status=status,
            spec_applied=spec_applied,
            peers=peers,
            record_intent=record_intent,
            policy=self._policy,
            approvals=tuple(self._approvals.get(key, {}).values()),
            settle_approval=self._settle_approval,
        )

    async def _settle_approval(self, approval: Approval, phase: ApprovalPhase, message: str) -> None:
        """Say in a ChangeApproval's status what became of it; a failed write is only logged (it is news, not
        state: an approval is usable by its digest alone)."""
        try:
            await self._kube.replace_status(
                CHANGE_APPROVAL,
                ObjectKey(approval.target.namespace, approval.name),
                approval.uid,
                {"phase": phase.value, "message": message},
            )
        except KubeError as error:
            self._about(approval.target).warning("could not update ChangeApproval %s: %s", approval.name, error)
            return
        held = self._approvals.get(approval.target, {})
        if approval.name in held:
            held[approval.name] = replace(approval, phase=phase, message=message)

    def _stalled_until_new_generation(self, body: Mapping[str, Any], token: str | None) -> bool:
        """A request the service refused is not re-sent for the same spec."""
        status = body.get("status") or {}
        stalled = _condition(status, STALLED)
        return (
            stalled is not None
            and (
                stalled.get("reason") in self.kind.sticky_stall_reasons
                or stalled.get("reason") == NOT_CONVERGING
                # Rolled back: applying the same spec again would break the same way.
                or status.get("rolledBackGeneration") == body["metadata"]["generation"]
            )
            and stalled.get("observedGeneration") == body["metadata"]["generation"]
            and (token is None or token == status.get("lastHandledReconcileAt"))
        )

    async def _finish(
        self, key: ObjectKey, body: Mapping[str, Any], outcome: Outcome, token: str | None, written: _WrittenStatus
    ) -> None:
        summary = summarize(
            written.status,
            outcome,
            generation=body["metadata"]["generation"],
            now=_now(),
            handled_reconcile_token=token,
        )
        metrics.RECONCILES.labels(self.kind.resource.kind, outcome.phase.value).inc()
        self._count_drift(summary.events)
        # Change Events (stable ids) go out before the status write that drops them from
        # status.pendingEvents: a crash in between makes the next pass post them again, which
        # the API server answers as already there. Transition Events follow the status they
        # describe: if that write fails, the next pass computes them again.
        changes = tuple(note for note in summary.events if note.event_id is not None)
        transitions = tuple(note for note in summary.events if note.event_id is None)
        await self._record_in_order(key, body, changes)
        stored = await self._write_status(key, body["metadata"]["uid"], written.status, summary.status)
        if stored:
            await self._record_in_order(key, body, transitions)
            if outcome.phase is Phase.READY:
                self._observe_time_to_ready(key, body, written.status)
        if not stored or outcome.phase is Phase.RETRYING:
            delay = self._retry(key)
            self._about(key).debug("retrying in %.0fs", delay)
            return
        self._queue.forget(key)
        if outcome.requeue_after is not None:
            self._queue.add_after(key, outcome.requeue_after)

    def _record_later(self, key: ObjectKey, revision: dict[str, Any]) -> None:
        task = asyncio.create_task(self._record_revision(key, revision))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _record_revision(self, key: ObjectKey, revision: dict[str, Any]) -> None:
        """Record an applied spec as a ControllerRevision, and forget those beyond the history; a failed
        record is tried again at the object's next pass."""
        try:
            await self._kube.create_revision(revision)
            if revision["revision"] > HISTORY:
                uid = revision["metadata"]["labels"][OWNER_LABEL]
                recorded = await self._kube.list_revisions(key.namespace, f"{OWNER_LABEL}={uid}")
                for name in beyond_history(recorded):
                    await self._kube.delete_revision(key.namespace, name)
        except KubeError as error:
            self._about(key).warning("could not record the applied spec as a ControllerRevision: %s", error)
            self._unrecorded[key] = revision
            return
        if self._unrecorded.get(key) is revision:
            del self._unrecorded[key]

    def _retry(self, key: ObjectKey) -> float:
        """Queue the object again after its backoff; the delay."""
        metrics.QUEUE_RETRIES.labels(self.kind.resource.kind).inc()
        return self._queue.add_with_backoff(key)

    def _count_drift(self, events: tuple[EventNote, ...]) -> None:
        """Drift is counted by the Events that announce it: once per finding, not once per resync."""
        kind = self.kind.resource.kind
        for note in events:
            if note.reason in (DRIFT_CORRECTED, DRIFT_DETECTED):
                metrics.DRIFT_DETECTED.labels(kind).inc()
            if note.reason == DRIFT_CORRECTED:
                metrics.DRIFT_CORRECTED.labels(kind).inc()

    def _observe_time_to_ready(self, key: ObjectKey, body: Mapping[str, Any], previous: Mapping[str, Any]) -> None:
        """The time from first seeing this generation to Ready at it, once per generation."""
        generation = body["metadata"]["generation"]
        seen = self._generation_seen.pop(key, None)
        ready_before = _condition(previous, READY)
        if seen is None or seen[0] != generation:
            return
        if (
            ready_before is not None
            and ready_before.get("status") == "True"
            and (ready_before.get("observedGeneration") == generation)
        ):
            return  # Ready at this generation already (a restart's first pass)
        metrics.GENERATION_READY_SECONDS.labels(self.kind.resource.kind).observe(time.monotonic() - seen[1])

    def _about(self, key: ObjectKey) -> logging.LoggerAdapter[logging.Logger]:
        return about(self._log, self.kind.resource.kind, key)

    async def _write_status(
        self, key: ObjectKey, uid: str, previous: Mapping[str, Any], status: Mapping[str, Any]
    ) -> bool:
        """The status, if it changed, to this very object (not one recreated under its name); False if
        the write failed."""
        if not merge_patch(previous, status):
            return True
        try:
            updated = await self._kube.replace_status(self.kind.resource, key, uid, status)
        except KubeError as error:
            self._about(key).warning("status write failed: %s", error)
            return False
        if updated is not None and key in self._store:
            # Keep the store ahead of the watch so a quick resync sees what was written.
            self._keep(key, updated)
        return True

    async def _record_in_order(self, key: ObjectKey, body: Mapping[str, Any], events: tuple[EventNote, ...]) -> None:
        for note in events:
            log = self._about(key).warning if note.warning else self._about(key).info
            log("%s: %s", note.reason, note.message)
            await self._record(body, note)

    async def _record(self, body: Mapping[str, Any], note: EventNote) -> None:
        try:
            await self._kube.record_event(
                body,
                self.kind.resource,
                reason=note.reason,
                message=note.message,
                warning=note.warning,
                event_id=note.event_id,
            )
        except (KubeError, OSError) as error:
            self._about(ObjectKey.of(body)).warning("could not record Event %s: %s", note.reason, error)

    # --- finalizer and deletion ------------------------------------------------------------

    async def _sync_finalizer(self, key: ObjectKey, body: dict[str, Any]) -> dict[str, Any] | None:
        """Delete needs a finalizer to act on deletion; Retain must not hold one."""
        finalizers = list(body["metadata"].get("finalizers", []))
        wanted = _deletes_resource(body)
        if wanted == (self.kind.finalizer in finalizers):
            return body
        if wanted:
            finalizers.append(self.kind.finalizer)
        else:
            finalizers.remove(self.kind.finalizer)
        return await self._patch_finalizers(key, body, finalizers)

    async def _patch_finalizers(
        self, key: ObjectKey, body: Mapping[str, Any], finalizers: list[str]
    ) -> dict[str, Any] | None:
        try:
            updated = await self._kube.patch_finalizers(
                self.kind.resource, key, finalizers, body["metadata"]["resourceVersion"]
            )
        except KubeError as error:
            # 409: the object changed meanwhile; the watch brings the new one.
            self._about(key).info("finalizer update deferred: %s", error)
            self._retry(key)
            return None
        if updated is not None and key in self._store:
            self._keep(key, updated)
        return updated

    async def _finalize(self, key: ObjectKey, body: dict[str, Any]) -> None:
        finalizers = list(body["metadata"].get("finalizers", []))
        if self.kind.finalizer not in finalizers:
            return
        suspended = (body.get("spec") or {}).get("suspend") is True
        if suspended or not _deletes_resource(body):
            why = "reconciliation is suspended" if suspended else "deletionPolicy is Retain"
            await self._record(body, EventNote(RETAINED, f"Left the {self.kind.noun} in place: {why}."))
        else:
            written = _WrittenStatus(body.get("status") or {})
            try:
                spec = self.kind.spec_model.model_validate(body.get("spec") or {})
            except ValidationError as error:
                invalid = Outcome.stalled(
                    INVALID_SPEC,
                    f"Cannot delete the {self.kind.noun}: the spec is invalid ({error}). Fix it, or set "
                    f"deletionPolicy: Retain to let this object go and keep the {self.kind.noun}.",
                )
                await self._finish(key, body, invalid, None, written)
                return
            refusal = self._policy.refusal(key.namespace, self.kind.claim(body), spec)
            if refusal is not None:
                note = EventNote(RETAINED, f"Left the {self.kind.noun} in place: not permitted: {refusal}.", True)
                await self._record(body, note)
                outcome = Outcome.ready("", {})
            else:
                outcome = await self._guarded(remove, key, body, spec, written)
            if outcome.phase is not Phase.READY:
                await self._finish(key, body, outcome, None, written)
                return
            for note in outcome.events:
                self._about(key).info("%s: %s", note.reason, note.message)
                await self._record(body, note)
        finalizers.remove(self.kind.finalizer)
        await self._patch_finalizers(key, body, finalizers)


Listed = TypeVar("Listed")


async def _outcome(listing: Awaitable[Listed]) -> Listed | Exception:
    try:
        return await listing
    except Exception as error:
        return error
