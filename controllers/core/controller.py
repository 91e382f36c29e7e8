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
import time
from collections.abc import Hashable, Mapping
from typing import Any, Generic

from pydantic import ValidationError

from controllers.core import metrics
from controllers.core.kind import Kind, ReconcileRequest, SpecT
from controllers.core.kube import KubeApi, KubeError
from controllers.core.model import DeletionPolicy
from controllers.core.objects import ObjectKey, merge_patch
from controllers.core.outcome import (
    DRIFT_DETECTED,
    INVALID_SPEC,
    RETAINED,
    SUCCEEDED,
    EventNote,
    Outcome,
    Phase,
)
from controllers.core.status import READY, STALLED, summarize
from controllers.core.tasks import settle
from controllers.core.workqueue import WorkQueue

RECONCILE_REQUEST_ANNOTATION = "infometis.io/reconcile-requested-at"
BASE_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _condition(status: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    return next((c for c in status.get("conditions", []) if c.get("type") == kind), None)


class Controller(Generic[SpecT]):
    def __init__(self, kind: Kind[SpecT], kube: KubeApi, *, resync_interval: float, max_concurrent: int) -> None:
        self.kind = kind
        self._kube = kube
        self._resync_interval = resync_interval
        self._max_concurrent = max_concurrent
        self._store: dict[ObjectKey, dict[str, Any]] = {}
        # Which objects claim each external resource, so finding an object's
        # peers costs a lookup, not a scan of every object.
        self._claimants: dict[Hashable, set[ObjectKey]] = {}
        self._queue: WorkQueue[ObjectKey] = WorkQueue(
            base_backoff=BASE_BACKOFF_SECONDS, max_backoff=MAX_BACKOFF_SECONDS
        )
        self._log = logging.getLogger(f"infometis.{kind.resource.kind.lower()}")
        self._tasks: set[asyncio.Task[None]] = set()

    # --- what to reconcile --------------------------------------------------------

    def on_watch_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """Called for every watch event; `event_type` None is the initial listing."""
        key = ObjectKey.of(body)
        if event_type == "DELETED":
            gone = self._store.pop(key, None)
            self._queue.discard(key)
            if gone is not None:
                claim = self.kind.claim(gone)
                peers = self._claimants.get(claim, set())
                peers.discard(key)
                if not peers:
                    self._claimants.pop(claim, None)
                # A peer that lost the claim to this object may own it now.
                for peer in peers:
                    self._queue.add(peer)
            return
        self._store[key] = copy.deepcopy(dict(body))
        self._claimants.setdefault(self.kind.claim(body), set()).add(key)  # the claim never changes
        if event_type is None or self._needs_reconcile(body):
            self._queue.add(key)

    def _needs_reconcile(self, body: Mapping[str, Any]) -> bool:
        meta = body["metadata"]
        status = body.get("status") or {}
        token = (meta.get("annotations") or {}).get(RECONCILE_REQUEST_ANNOTATION)
        wants_finalizer = (body.get("spec") or {}).get("deletionPolicy") == DeletionPolicy.DELETE.value
        return bool(
            meta.get("deletionTimestamp")
            or wants_finalizer != (self.kind.finalizer in meta.get("finalizers", []))
            or meta.get("generation") != status.get("observedGeneration")
            or (token is not None and token != status.get("lastHandledReconcileAt"))
            or _condition(status, READY) is None
        )

    # --- running ----------------------------------------------------------------------

    async def run(self) -> None:
        """Process the queue and resync periodically, until cancelled."""
        slots = asyncio.Semaphore(self._max_concurrent)
        resync = asyncio.create_task(self._resync_forever())
        try:
            while True:
                key = await self._queue.get()
                await slots.acquire()
                task = asyncio.create_task(self._process(key, slots))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        finally:
            resync.cancel()
            for task in list(self._tasks):
                task.cancel()

    async def _resync_forever(self) -> None:
        while True:
            await asyncio.sleep(self._resync_interval)
            for key in list(self._store):
                self._queue.add(key)

    async def _process(self, key: ObjectKey, slots: asyncio.Semaphore) -> None:
        started = time.monotonic()
        try:
            await self.reconcile(key)
        except Exception:
            # The loop must outlive any bug or surprise: log it and retry later.
            self._log.exception("%s: reconcile failed unexpectedly; retrying with backoff", key)
            self._queue.add_with_backoff(key)
        finally:
            metrics.RECONCILE_SECONDS.labels(self.kind.resource.kind).observe(time.monotonic() - started)
            self._queue.done(key)
            slots.release()

    # --- one object ---------------------------------------------------------------------

    async def reconcile(self, key: ObjectKey) -> None:
        body = self._store.get(key)
        if body is None:
            return
        meta = body["metadata"]
        token = (meta.get("annotations") or {}).get(RECONCILE_REQUEST_ANNOTATION)
        try:
            spec = self.kind.spec_model.model_validate(body.get("spec") or {})
        except ValidationError as error:
            await self._finish(key, body, Outcome.stalled(INVALID_SPEC, f"The spec is invalid: {error}"), token)
            return

        if meta.get("deletionTimestamp"):
            await self._finalize(key, body, spec)
            return
        body = await self._sync_finalizer(key, body, spec)
        if body is None:
            return

        if spec.suspend:
            outcome = Outcome.suspended()
        elif self._stalled_until_new_generation(body, token):
            return
        else:
            outcome = await self.kind.reconcile(self._request(key, body, spec))
        await self._finish(key, body, outcome, token)

    def _request(self, key: ObjectKey, body: Mapping[str, Any], spec: SpecT) -> ReconcileRequest[SpecT]:
        status = body.get("status") or {}
        ready = _condition(status, READY)
        spec_applied = (
            status.get("observedGeneration") == body["metadata"]["generation"]
            and ready is not None
            and ready.get("reason") in (SUCCEEDED, DRIFT_DETECTED)
        )
        peers = tuple(self._store[other] for other in self._claimants.get(self.kind.claim(body), ()) if other != key)
        return ReconcileRequest(key=key, body=body, spec=spec, status=status, spec_applied=spec_applied, peers=peers)

    def _stalled_until_new_generation(self, body: Mapping[str, Any], token: str | None) -> bool:
        """A request the service refused is not re-sent for the same spec."""
        status = body.get("status") or {}
        stalled = _condition(status, STALLED)
        return (
            stalled is not None
            and stalled.get("reason") in self.kind.sticky_stall_reasons
            and stalled.get("observedGeneration") == body["metadata"]["generation"]
            and (token is None or token == status.get("lastHandledReconcileAt"))
        )

    async def _finish(self, key: ObjectKey, body: Mapping[str, Any], outcome: Outcome, token: str | None) -> None:
        summary = summarize(
            body.get("status") or {},
            outcome,
            generation=body["metadata"]["generation"],
            now=_now(),
            handled_reconcile_token=token,
        )
        metrics.RECONCILES.labels(self.kind.resource.kind, outcome.phase.value).inc()
        for note in summary.events:
            log = self._log.warning if note.warning else self._log.info
            log("%s: %s: %s", key, note.reason, note.message)
        written = await self._write(key, body, summary.status, summary.events)
        if not written or outcome.phase is Phase.RETRYING:
            delay = self._queue.add_with_backoff(key)
            self._log.debug("%s: retrying in %.0fs", key, delay)
            return
        self._queue.forget(key)
        if outcome.requeue_after is not None:
            self._queue.add_after(key, outcome.requeue_after)

    async def _write(
        self, key: ObjectKey, body: Mapping[str, Any], status: Mapping[str, Any], events: tuple[EventNote, ...]
    ) -> bool:
        """Events, and the status patch if anything changed; False if the status write failed."""
        patch = merge_patch(body.get("status") or {}, status)
        writes: list[Any] = [self._record_in_order(body, events)]
        if patch:
            writes.append(self._kube.patch_status(self.kind.resource, key, patch))
        results = await settle(*writes)
        if not patch:
            return True
        updated = results[-1]
        if isinstance(updated, BaseException):
            self._log.warning("%s: status write failed: %s", key, updated)
            return False
        if updated is not None and key in self._store:
            # Keep the store ahead of the watch so a quick resync sees what was written.
            self._store[key] = updated
        return True

    async def _record_in_order(self, body: Mapping[str, Any], events: tuple[EventNote, ...]) -> None:
        for note in events:
            await self._record(body, note)

    async def _record(self, body: Mapping[str, Any], note: EventNote) -> None:
        try:
            await self._kube.record_event(
                body, self.kind.resource, reason=note.reason, message=note.message, warning=note.warning
            )
        except (KubeError, OSError) as error:
            self._log.warning("%s: could not record Event %s: %s", ObjectKey.of(body), note.reason, error)

    # --- finalizer and deletion ------------------------------------------------------------

    async def _sync_finalizer(self, key: ObjectKey, body: dict[str, Any], spec: SpecT) -> dict[str, Any] | None:
        """Delete needs a finalizer to act on deletion; Retain must not hold one."""
        finalizers = list(body["metadata"].get("finalizers", []))
        wanted = spec.deletion_policy is DeletionPolicy.DELETE
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
            self._log.info("%s: finalizer update deferred: %s", key, error)
            self._queue.add_with_backoff(key)
            return None
        if updated is not None and key in self._store:
            self._store[key] = updated
        return updated

    async def _finalize(self, key: ObjectKey, body: dict[str, Any], spec: SpecT) -> None:
        finalizers = list(body["metadata"].get("finalizers", []))
        if self.kind.finalizer not in finalizers:
            return
        if spec.suspend or spec.deletion_policy is DeletionPolicy.RETAIN:
            why = "reconciliation is suspended" if spec.suspend else "deletionPolicy is Retain"
            await self._record(body, EventNote(RETAINED, f"Left the {self.kind.noun} in place: {why}."))
        else:
            outcome = await self.kind.delete(self._request(key, body, spec))
            if outcome.phase is not Phase.READY:
                await self._finish(key, body, outcome, None)
                return
            for note in outcome.events:
                self._log.info("%s: %s: %s", key, note.reason, note.message)
                await self._record(body, note)
        finalizers.remove(self.kind.finalizer)
        await self._patch_finalizers(key, body, finalizers)
