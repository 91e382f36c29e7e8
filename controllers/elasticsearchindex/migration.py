"""Moving an index to a new one by reindexing, one resumable step per pass (pure).

With spec.migration set, a change the server cannot make in place (a static
setting, a field's type, a removed field) moves the index: the name users
read and write becomes an alias over versioned concrete indices
'<name>-v<N>' (a plain index counts as version 0), and each migration fills
the next one.

    record    the source, the target '<name>-v<N+1>' and the source's global
              checkpoint go into status.migration before anything is touched
    copy      create the target with the spec's settings and mappings, refresh
              the source, start `_reindex` (wait_for_completion=false: a task)
              while writes go on
    catch up  block writes to the source (the add-block API waits for writes
              under way), refresh it, copy again every document whose
              `_seq_no` is above the checkpoint: all that changed since the
              first copy began
    verify    both refreshed, the counts must be equal
    switch    one `_aliases` request moves the name (write index included) and
              the source's aliases to the target; a plain index is removed by
              the same request (`remove_index`), so the name can become the alias
    delete    the source, only if spec.migration.deleteOldIndex

Writes are kept: every document whose last write the source had processed
before the checkpoint was read is in the first copy's snapshot (the refresh
comes after); every later write has a higher sequence number and is in the
second copy, made once no write can reach the source. The target only ever
receives copies of the source, so it holds a superset of the source's
documents, and equal counts prove it holds exactly them: a document deleted
during the first copy shows as a mismatch, and the migration stops with the
source taking writes again. Both copies overwrite (internal versioning): with
version_type external a document deleted and re-created after the server
forgot the deletion (index.gc_deletes) would carry a lower version than its
first copy and be skipped, silently stale. Overwriting is safe because the
operator never runs two copies at once: a copy task it lost track of is found
in the tasks API (by its description) and adopted or waited for.

Every step is decided from status.migration and the server's state alone, so
a pass cut short at any point (the operator killed) is resumed by the next:
a target that exists but has no copy recorded is copied to again; a task the
status does not name but the server runs is adopted; a finished task's
result is read from the tasks API; a block found on the source is taken as
the migration's own. Any failure before the switch removes the block, so the
old index serves writes again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, ClassVar

from controllers.core.kind import Blocker
from controllers.core.model import DriftItem
from controllers.elasticsearchindex.model import (
    VERSION_SEPARATOR,
    MigrationSpec,
    MigrationStatus,
    is_versioned_index,
)
from controllers.elasticsearchindex.plan import (
    REQUIRES_MIGRATION,
    CreateIndex,
    DesiredIndex,
    IndexPlan,
    Managed,
    concrete_index_name,
    managed_after,
    plan_index,
)
from controllers.elasticsearchindex.state import CopyTask, MigrationFacts, Observation, ObservedIndex

MIGRATION_UNSUPPORTED = "MigrationUnsupported"
MIGRATION_FAILED = "MigrationFailed"
COUNT_MISMATCH = "MigrationCountMismatch"
# Event reasons, each said once per migration (stable messages: see controllers.core.sync).
MIGRATION_STARTED = "MigrationStarted"
MIGRATION_CATCHING_UP = "MigrationCatchingUp"
MIGRATION_COMPLETED = "MigrationCompleted"
OLD_INDEX_DELETED = "OldIndexDeleted"
MIGRATION_STOPPED = "MigrationStopped"
# How soon to look again: while a copy task runs, and when the next step is ready to go.
TASK_POLL_SECONDS = 1.0
NEXT_STEP_SECONDS = 0.1


class Step(StrEnum):
    CREATING = "Creating"
    COPYING = "Copying"
    CATCHING_UP = "CatchingUp"
    DELETING_OLD_INDEX = "DeletingOldIndex"
    FAILED = "Failed"


def _listed(items: tuple[DriftItem, ...]) -> str:
    return "; ".join(f"{d.field} {d.actual} -> {d.desired}" for d in items)


@dataclass(frozen=True)
class StartCopy:
    """Create the target if it is missing, refresh the source and start the first copy (writes go on)."""

    creates: ClassVar[bool] = False
    settles_later: ClassVar[bool] = True
    event_reason: ClassVar[str | None] = MIGRATION_STARTED
    source: str
    target: str
    create: CreateIndex | None  # the target's settings and mappings, when it must be created
    migrating: tuple[DriftItem, ...]  # what the server cannot change in place

    def undo(self) -> str:
        return "a failed migration is stopped by the migration itself (MigrationStopped)"

    def destructive(self) -> str | None:
        return f"migrating to the new index '{self.target}' by reindexing from '{self.source}'"

    def summary(self) -> str:
        # The same words whether or not the target exists yet: a first copy started again after a
        # crash is the same Event.
        return (
            f"migrating to the new index '{self.target}' ({_listed(self.migrating)}) by reindexing from "
            f"'{self.source}'; writes go on during the first copy"
        )

    def drift(self) -> tuple[DriftItem, ...]:
        return self.migrating


@dataclass(frozen=True)
class CatchUp:
    """Block writes to the source, refresh it, and copy what changed since the first copy began."""

    creates: ClassVar[bool] = False
    settles_later: ClassVar[bool] = True
    event_reason: ClassVar[str | None] = MIGRATION_CATCHING_UP
    source: str
    target: str
    checkpoint: int | None  # None: copy everything again

    def undo(self) -> str:
        return "a failed migration is stopped by the migration itself (MigrationStopped)"

    def destructive(self) -> str | None:
        return None

    def summary(self) -> str:
        return (
            f"writes to '{self.source}' are blocked while the documents changed since the first copy began are "
            f"copied to '{self.target}'; until the name moves, writes are refused with a cluster_block_exception "
            "(retry them)"
        )

    def drift(self) -> tuple[DriftItem, ...]:
        return (DriftItem(field=f"migration.{self.target}.catchUp", desired="copied", actual="pending"),)


@dataclass(frozen=True)
class SwitchAlias:
    """Move the name (and the source's aliases) to the target in one request; a plain index is removed by it."""

    creates: ClassVar[bool] = False
    settles_later: ClassVar[bool] = True
    event_reason: ClassVar[str | None] = MIGRATION_COMPLETED
    name: str
    source: str
    target: str
    documents: int
    remove_source_index: bool  # the name was the source index itself
    remove_aliases: tuple[str, ...]  # taken off the source (when it stays)
    add_aliases: Mapping[str, Mapping[str, Any]]  # put on the target besides the name

    def undo(self) -> str:
        return "a failed migration is stopped by the migration itself (MigrationStopped)"

    def destructive(self) -> str | None:
        return None

    def summary(self) -> str:
        before = (
            f"the index '{self.source}' was replaced by the alias"
            if self.remove_source_index
            else f"it no longer points at '{self.source}'"
        )
        return (
            f"now an alias over '{self.target}' (writes included), {self.documents} document(s) copied and "
            f"counted; {before}"
        )

    def drift(self) -> tuple[DriftItem, ...]:
        return (DriftItem(field=f"migration.{self.target}.switch", desired=self.target, actual=self.source),)


@dataclass(frozen=True)
class DeleteOldIndex:
    creates: ClassVar[bool] = False
    settles_later: ClassVar[bool] = True
    event_reason: ClassVar[str | None] = OLD_INDEX_DELETED
    index: str
    target: str

    def undo(self) -> str:
        return "a deleted index cannot be brought back"

    def destructive(self) -> str | None:
        return None

    def summary(self) -> str:
        return f"deleted the previous index '{self.index}' (spec.migration.deleteOldIndex)"

    def drift(self) -> tuple[DriftItem, ...]:
        return (DriftItem(field=f"migration.{self.index}.delete", desired="deleted", actual="exists"),)


@dataclass(frozen=True)
class StopMigration:
    """Undo what stands in the way: cancel copies (waiting for them), unblock the source, delete the target."""

    creates: ClassVar[bool] = False
    settles_later: ClassVar[bool] = True
    event_reason: ClassVar[str | None] = MIGRATION_STOPPED
    source: str
    target: str
    why: str
    cancel: tuple[str, ...] = ()
    unblock: bool = False
    delete_target: bool = False
    # The stall to report once done (reason, message); None: the migration carries on or is over.
    stall: tuple[str, str] | None = None

    def undo(self) -> str:
        return "stopping a migration is itself the way back"

    def destructive(self) -> str | None:
        return None

    def summary(self) -> str:
        undone = [
            *(["copying cancelled"] if self.cancel else []),
            *([f"writes to '{self.source}' allowed again"] if self.unblock else []),
            *([f"'{self.target}' deleted"] if self.delete_target else []),
        ]
        return f"stopped the migration to '{self.target}': {self.why}" + (f"; {', '.join(undone)}" if undone else "")

    def drift(self) -> tuple[DriftItem, ...]:
        return (DriftItem(field=f"migration.{self.target}.stop", desired="stopped", actual="running"),)


MigrationChange = StartCopy | CatchUp | SwitchAlias | DeleteOldIndex | StopMigration


@dataclass(frozen=True)
class MigrationPlan:
    """A plan while a migration is due, runs or has just ended (the core reads changes and blocker)."""

    changes: tuple[Any, ...] = ()
    blocker: Blocker | None = None
    migration_needed: tuple[DriftItem, ...] = ()
    record: MigrationStatus | None = None  # status.migration after this pass; None: no migration
    progress: str | None = None  # what the migration is doing, while it goes on (the Reconciling message)
    poll_seconds: float = TASK_POLL_SECONDS


def version_of(name: str, concrete: str) -> int:
    """The version of a concrete index behind the name: '<name>-v<N>' is N; anything else is 0."""
    return int(concrete[len(name) + len(VERSION_SEPARATOR) :]) if is_versioned_index(name, concrete) else 0


def start_facts_needed(base: IndexPlan, options: MigrationSpec | None, *, may_start: bool) -> bool:
    """Whether a migration is due to start, so the facts it starts from must be observed."""
    return options is not None and may_start and bool(base.migration_needed) and base.blocker is not None


def counts_needed(facts: MigrationFacts) -> bool:
    """The documents are counted once the final copy is done with writes blocked."""
    task = facts.task
    return (
        facts.source_blocked
        and facts.target is not None
        and task is not None
        and task.completed
        and task.catch_up
        and not task.failures
    )


def plan_migration(
    desired: DesiredIndex,
    base: IndexPlan,
    observation: Observation,
    recorded: MigrationStatus | None,
    options: MigrationSpec | None,
    *,
    may_start: bool,
) -> IndexPlan | MigrationPlan:
    """The next step of a migration due or under way; `base` is the plan against the name's index as it is.

    `may_start` is False when a difference is drift that driftPolicy: Report only reports."""
    if recorded is None:
        return _start(desired, base, observation, options, may_start=may_start)
    return _resume(desired, base, observation, recorded, options, observation.migration or MigrationFacts())


def _start(
    desired: DesiredIndex,
    base: IndexPlan,
    observation: Observation,
    options: MigrationSpec | None,
    *,
    may_start: bool,
) -> IndexPlan | MigrationPlan:
    index, facts = observation.index, observation.migration
    if not start_facts_needed(base, options, may_start=may_start) or index is None or facts is None:
        return base
    if base.blocker is not None and base.blocker.reason != REQUIRES_MIGRATION:
        return base
    name, listed = desired.name, _listed(base.migration_needed)
    if facts.reindex_supported is False:
        return MigrationPlan(
            blocker=Blocker(
                MIGRATION_UNSUPPORTED,
                f"Index '{name}' cannot be changed in place ({listed}) and spec.migration asks to move it by "
                "reindexing, but this server has no _reindex API (its reindex module is not installed). Nothing "
                "was changed.",
            ),
            migration_needed=base.migration_needed,
        )
    target = concrete_index_name(name, max((version_of(name, index.name), *facts.versions)) + 1)
    record = MigrationStatus(
        source_index=index.name, target_index=target, step=Step.CREATING, checkpoint=facts.checkpoint
    )
    return MigrationPlan(
        migration_needed=base.migration_needed,
        record=record,
        progress=f"Migrating index '{name}' to the new index '{target}' ({listed}): creating it next and copying "
        f"the documents of '{index.name}'.",
        poll_seconds=NEXT_STEP_SECONDS,
    )


def _fits(desired: DesiredIndex, observation: Observation, index: ObservedIndex) -> bool:
    """The target has what the spec asks for that only creation can set (spec changed since: it does not)."""
    alone = replace(observation, name=index.name, indices=(index,), name_is_alias=False, migration=None)
    return not plan_index(desired, alone, Managed()).migration_needed


def _task_progress(task: CopyTask) -> str:
    return f"{task.copied} of {task.total} copied"


def poll_seconds(task: CopyTask) -> float:
    """When to look at a running copy again: soon for the final one (writes wait for it), else when it
    should be done at its rate so far, at least every TASK_POLL_SECONDS."""
    if task.catch_up or task.copied <= 0 or task.running_seconds <= 0:
        return NEXT_STEP_SECONDS
    remaining = task.running_seconds * (task.total - task.copied) / task.copied
    return min(TASK_POLL_SECONDS, max(NEXT_STEP_SECONDS, remaining))


def _resume(
    desired: DesiredIndex,
    base: IndexPlan,
    observation: Observation,
    recorded: MigrationStatus,
    options: MigrationSpec | None,
    facts: MigrationFacts,
) -> MigrationPlan:
    name = desired.name
    source, target = recorded.source_index, recorded.target_index
    current = observation.index
    blocked = facts.source_blocked
    task = facts.task
    running = tuple(t.id for t in (*((task,) if task and not task.completed else ()), *facts.orphans))
    listed = _listed(base.migration_needed)
    head = f"Migrating index '{name}' from '{source}' to '{target}'"

    def going(record: MigrationStatus, progress: str, *changes: Any, poll: float = TASK_POLL_SECONDS) -> MigrationPlan:
        return MigrationPlan(
            changes=changes,
            migration_needed=base.migration_needed,
            record=record,
            progress=progress,
            poll_seconds=NEXT_STEP_SECONDS if changes else poll,
        )

    def stop(why: str, *, delete_target: bool, stall: tuple[str, str] | None = None) -> StopMigration:
        return StopMigration(
            source=source,
            target=target,
            why=why,
            cancel=running,
            unblock=blocked,
            delete_target=delete_target and facts.target is not None,
            stall=stall,
        )

    def undo_needed(*, delete_target: bool) -> bool:
        return bool(running) or blocked or (delete_target and facts.target is not None)

    # The name points at the target: the switch is made.
    if current is not None and current.name == target:
        old = facts.source
        if (
            options is not None
            and options.delete_old_index
            and old is not None
            and source != name
            and (is_versioned_index(name, source))
        ):
            return going(
                recorded.model_copy(update={"step": Step.DELETING_OLD_INDEX, "task": None}),
                f"{head}: the name points at '{target}' now; deleting the previous index '{source}'.",
                DeleteOldIndex(index=source, target=target),
            )
        # The target was made from the spec: what the spec no longer declares is not the operator's to undo.
        done = plan_index(desired, observation, managed_after(desired))
        if done.migration_needed and options is not None:
            # The spec changed again meanwhile: the next migration starts from the new index.
            return MigrationPlan(
                migration_needed=done.migration_needed,
                record=None,
                progress=f"Index '{name}' was moved to '{target}'; the spec now needs another migration "
                f"({_listed(done.migration_needed)}), which starts next.",
                poll_seconds=NEXT_STEP_SECONDS,
            )
        return MigrationPlan(done.changes, done.blocker, done.migration_needed, record=None)

    # This pass stopped the migration: say why, once the source takes writes again.
    if facts.stopped is not None:
        reason, message = facts.stopped
        return MigrationPlan(
            blocker=Blocker(reason, message),
            migration_needed=base.migration_needed,
            record=recorded.model_copy(update={"step": Step.FAILED, "task": None}),
        )

    # The name no longer resolves to the source (deleted, moved by someone): start over from what it is now.
    if current is None or current.name != source:
        now = f"now resolves to '{current.name}'" if current is not None else "no longer resolves to one index"
        why = f"the name '{name}' {now}, not to the source '{source}'"
        if undo_needed(delete_target=True):
            return going(recorded, f"{head}: stopping, {why}.", stop(why, delete_target=True))
        return MigrationPlan(base.changes, base.blocker, base.migration_needed, record=None)

    # The spec no longer asks for it (reverted, or spec.migration removed): undo it.
    if options is None or not base.migration_needed:
        why = "spec.migration was removed" if options is None else "the spec no longer needs it"
        if undo_needed(delete_target=True):
            return going(recorded, f"{head}: stopping, {why}.", stop(why, delete_target=True))
        return MigrationPlan(base.changes, base.blocker, base.migration_needed, record=None)

    # Stopped earlier by a failure; reconciled again (a new generation or a reconcile request): start over.
    if recorded.step == Step.FAILED:
        why = "starting again after the failure"
        if undo_needed(delete_target=True):
            return going(recorded, f"{head}: {why}.", stop(why, delete_target=True))
        return going(
            recorded.model_copy(update={"step": Step.CREATING, "task": None, "source_documents": None}),
            f"{head} ({listed}): starting again; creating the target next.",
            poll=NEXT_STEP_SECONDS,
        )

    # A target that does not match the spec (changed since it was created): replace it.
    if facts.target is not None and not _fits(desired, observation, facts.target):
        why = f"the spec changed since '{target}' was created"
        return going(recorded, f"{head}: {why}; replacing it.", stop(why, delete_target=True))

    if facts.target is None:
        if running or blocked:
            # A copy into a missing target would create it with dynamic mappings: cancel it first.
            why = f"'{target}' disappeared"
            return going(recorded, f"{head}: {why}; starting again.", stop(why, delete_target=False))
        create = CreateIndex(index=target, settings=desired.settings, mappings=desired.mappings, aliases={})
        return going(
            recorded.model_copy(update={"task": None}),
            f"{head} ({listed}): creating '{target}' and starting the first copy.",
            StartCopy(source=source, target=target, create=create, migrating=base.migration_needed),
        )

    # Copy tasks the status does not name (started by a pass cut short): adopt one, never run two.
    if facts.orphans:
        orphan = facts.orphans[0]
        if len(facts.orphans) > 1 or (task is not None and not task.completed):
            return going(recorded, f"{head}: waiting for {len(running)} copy tasks to end before going on.")
        step = Step.CATCHING_UP if orphan.catch_up else Step.COPYING
        return going(
            recorded.model_copy(update={"step": step, "task": orphan.id}),
            f"{head}: {'final' if orphan.catch_up else 'first'} copy under way (task {orphan.id}, taken over "
            f"after a restart): {_task_progress(orphan)}.",
            poll=poll_seconds(orphan),
        )

    if task is None:
        # No copy known, none running: the recorded one was lost, finished unseen, or never started.
        if recorded.step == Step.CATCHING_UP:
            return going(
                recorded.model_copy(update={"task": None}),
                f"{head}: copying the documents changed since the first copy began again.",
                CatchUp(source=source, target=target, checkpoint=recorded.checkpoint),
            )
        return going(
            recorded.model_copy(update={"task": None}),
            f"{head} ({listed}): starting the first copy.",
            StartCopy(source=source, target=target, create=None, migrating=base.migration_needed),
        )

    step = Step.CATCHING_UP if task.catch_up else Step.COPYING
    record = recorded.model_copy(update={"step": step, "task": task.id})
    if not task.completed:
        if task.catch_up:
            progress = (
                f"{head}: writes to '{source}' are blocked while the documents changed since the first copy "
                f"began are copied: {_task_progress(task)}."
            )
        else:
            progress = f"{head} ({listed}): first copy, writes go on: {_task_progress(task)}."
        return going(record, progress, poll=poll_seconds(task))
    if task.failures:
        message = (
            f"Migrating index '{name}' to '{target}' failed: the {'final' if task.catch_up else 'first'} copy "
            f"(task {task.id}) reported: {'; '.join(task.failures)}. '{source}' still serves the name and takes "
            f"writes; '{target}' is left for inspection. Fix the cause (the new mappings may not accept the "
            "documents), then change the spec or request a reconcile to start again."
        )
        if blocked:
            return going(
                record,
                f"{head}: the copy failed; unblocking '{source}'.",
                stop("the copy failed", delete_target=False, stall=(MIGRATION_FAILED, message)),
            )
        return MigrationPlan(
            blocker=Blocker(MIGRATION_FAILED, message),
            migration_needed=base.migration_needed,
            record=recorded.model_copy(update={"step": Step.FAILED, "task": None}),
        )
    if not task.catch_up or not blocked:
        # The first copy is done (or the block was lifted since the final one): block and catch up.
        return going(
            record,
            f"{head}: first copy done; blocking writes to '{source}' for the final copy.",
            CatchUp(source=source, target=target, checkpoint=recorded.checkpoint),
        )
    if facts.documents is None:
        return going(record, f"{head}: counting the documents.", poll=NEXT_STEP_SECONDS)
    in_source, in_target = facts.documents
    if in_source != in_target:
        message = (
            f"Migrating index '{name}' to '{target}' stopped: after both copies '{source}' holds {in_source} "
            f"document(s) and '{target}' {in_target}. Documents deleted from '{source}' while the first copy ran "
            f"are still in '{target}'. '{source}' still serves the name and takes writes again; nothing else was "
            f"changed. Delete '{target}' or request a reconcile to start the migration again."
        )
        return going(
            record.model_copy(update={"source_documents": in_source}),
            f"{head}: the counts differ; unblocking '{source}'.",
            stop("the document counts differ", delete_target=False, stall=(COUNT_MISMATCH, message)),
        )
    return going(
        record.model_copy(update={"source_documents": in_source}),
        f"{head}: both copies done, {in_source} document(s) in each; moving the name to '{target}'.",
        _switch(desired, observation, current, source, target, in_source),
    )


def _switch(
    desired: DesiredIndex, observation: Observation, current: ObservedIndex, source: str, target: str, documents: int
) -> SwitchAlias:
    name = desired.name
    # Every alias of the old index goes along (the spec's with the spec's definition): the data it showed moves.
    aliases: dict[str, Mapping[str, Any]] = {
        alias: desired.aliases.get(alias, _addable(definition))
        for alias, definition in current.aliases.items()
        if alias != name
    }
    aliases.update(desired.aliases)
    return SwitchAlias(
        name=name,
        source=source,
        target=target,
        documents=documents,
        remove_source_index=not observation.name_is_alias,
        remove_aliases=tuple(sorted({name, *current.aliases} if observation.name_is_alias else ())),
        add_aliases=aliases,
    )


_ALIAS_KEYS = ("filter", "index_routing", "search_routing", "is_write_index", "is_hidden")


def _addable(definition: Mapping[str, Any]) -> dict[str, Any]:
    """An alias as the get-index API shows it, as the aliases API's add action takes it."""
    return {key: definition[key] for key in _ALIAS_KEYS if key in definition}
