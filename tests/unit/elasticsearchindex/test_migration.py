"""The migration's steps (controllers.elasticsearchindex.migration): every step from every observed state,
and the state a pass cut short at each point leaves, resumed without loss or a second copy running."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from controllers.elasticsearchindex.migration import (
    COUNT_MISMATCH,
    MIGRATION_FAILED,
    MIGRATION_UNSUPPORTED,
    CatchUp,
    DeleteOldIndex,
    MigrationPlan,
    StartCopy,
    Step,
    StopMigration,
    SwitchAlias,
    plan_migration,
    poll_seconds,
)
from controllers.elasticsearchindex.model import ElasticsearchIndexSpec, MigrationStatus
from controllers.elasticsearchindex.plan import REQUIRES_MIGRATION, DesiredIndex, IndexPlan, Managed, plan_index
from controllers.elasticsearchindex.state import ClusterFacts, CopyTask, MigrationFacts, Observation, ObservedIndex

NAME, SOURCE, TARGET = "orders", "orders-v1", "orders-v2"
CLUSTER = ClusterFacts(uuid="cluster-1", distribution="opensearch", version="3.8.0")
OLD_MAPPINGS = {"properties": {"value": {"type": "long"}}}
NEW_SPEC: dict[str, Any] = {
    "settings": {"number_of_shards": 3},
    "mappings": {"properties": {"value": {"type": "keyword"}}},
    "migration": {"strategy": "Reindex"},
}
CHECKPOINT = 41
NOTHING_MANAGED = Managed()


def index(name: str, *, shards: int = 1, mappings: Any = None, blocked: bool = False, aliases: Any = None) -> Any:
    settings = {"index.number_of_shards": str(shards), "index.uuid": f"uuid-{name}"}
    if blocked:
        settings["index.blocks.write"] = "true"
    return ObservedIndex(
        name=name,
        uuid=f"uuid-{name}",
        settings=settings,
        mappings=OLD_MAPPINGS if mappings is None else mappings,
        aliases=aliases or {},
    )


def spec(**overrides: Any) -> ElasticsearchIndexSpec:
    return ElasticsearchIndexSpec.model_validate({**NEW_SPEC, **overrides})


def desired(specification: ElasticsearchIndexSpec | None = None) -> DesiredIndex:
    return DesiredIndex.from_spec(NAME, specification or spec())


def new_target(*, blocked: bool = False) -> ObservedIndex:
    fitted: ObservedIndex = replace(
        index(TARGET, shards=3, mappings={"properties": {"value": {"type": "keyword"}}}), aliases={}
    )
    return fitted


def behind_alias(*indices: ObservedIndex) -> Observation:
    return Observation(name=NAME, cluster=CLUSTER, indices=indices, name_is_alias=True)


def source(*, blocked: bool = False) -> ObservedIndex:
    return index(SOURCE, blocked=blocked, aliases={NAME: {"is_write_index": True}, "orders-read": {}})


def recorded(step: Step = Step.CREATING, task: str | None = None, **extra: Any) -> MigrationStatus:
    return MigrationStatus(
        source_index=SOURCE, target_index=TARGET, step=step, task=task, checkpoint=CHECKPOINT, **extra
    )


def task(
    task_id: str = "node:7", *, catch_up: bool = False, completed: bool = False, failures: tuple[str, ...] = ()
) -> CopyTask:
    return CopyTask(id=task_id, catch_up=catch_up, completed=completed, total=100, copied=40, failures=failures)


def plan(
    observation: Observation,
    record: MigrationStatus | None,
    specification: ElasticsearchIndexSpec | None = None,
    *,
    may_start: bool = True,
    managed: Managed = NOTHING_MANAGED,
) -> Any:
    wanted = desired(specification)
    base = plan_index(wanted, observation, managed)
    options = (specification or spec()).migration
    return plan_migration(wanted, base, observation, record, options, may_start=may_start)


def during(
    record: MigrationStatus,
    *,
    blocked: bool = False,
    target: ObservedIndex | None = None,
    copy: CopyTask | None = None,
    orphans: tuple[CopyTask, ...] = (),
    documents: tuple[int, int] | None = None,
    current: ObservedIndex | None = None,
) -> Observation:
    """The name behind its alias on the source (or `current`), with the migration's facts."""
    old = source(blocked=blocked)
    facts = MigrationFacts(source=old, target=target, task=copy, orphans=orphans, documents=documents)
    return replace(behind_alias(current or old), migration=facts)


def only_change(result: Any) -> Any:
    assert isinstance(result, MigrationPlan), result
    assert len(result.changes) == 1, result.changes
    return result.changes[0]


# --- starting --------------------------------------------------------------------------


def test_without_spec_migration_the_plan_stalls_requiring_a_migration_and_touches_nothing() -> None:
    result = plan(behind_alias(source()), None, spec(migration=None))
    assert isinstance(result, IndexPlan)
    assert result.blocker is not None and result.blocker.reason == REQUIRES_MIGRATION
    assert not result.changes


def test_a_migration_starts_by_recording_source_target_and_checkpoint_before_touching_anything() -> None:
    facts = MigrationFacts(reindex_supported=True, versions=(1,), checkpoint=CHECKPOINT)
    result = plan(replace(behind_alias(source()), migration=facts), None)
    assert isinstance(result, MigrationPlan)
    assert result.changes == () and result.blocker is None
    assert result.record == recorded(Step.CREATING)
    assert result.progress and "orders-v2" in result.progress
    assert {d.field for d in result.migration_needed} == {
        "settings.index.number_of_shards",
        "mappings.value.type",
    }


def test_adopting_a_plain_index_counts_it_as_version_0() -> None:
    plain = Observation(name=NAME, cluster=CLUSTER, indices=(index(NAME),))
    facts = MigrationFacts(reindex_supported=True, versions=(), checkpoint=-1)
    result = plan(replace(plain, migration=facts), None)
    assert isinstance(result, MigrationPlan) and result.record is not None
    assert (result.record.source_index, result.record.target_index) == (NAME, "orders-v1")


def test_the_target_skips_every_version_present_kept_old_indices_included() -> None:
    facts = MigrationFacts(reindex_supported=True, versions=(1, 3), checkpoint=0)
    result = plan(replace(behind_alias(source()), migration=facts), None)
    assert result.record.target_index == "orders-v4"


def test_a_server_without_reindex_stalls_with_the_reason_and_records_nothing() -> None:
    facts = MigrationFacts(reindex_supported=False)
    result = plan(replace(behind_alias(source()), migration=facts), None)
    assert isinstance(result, MigrationPlan)
    assert result.blocker is not None and result.blocker.reason == MIGRATION_UNSUPPORTED
    assert "no _reindex API" in result.blocker.message and "Nothing was changed" in result.blocker.message
    assert result.changes == () and result.record is None


def test_drift_under_report_does_not_start_a_migration() -> None:
    facts = MigrationFacts(reindex_supported=True, checkpoint=0)
    result = plan(replace(behind_alias(source()), migration=facts), None, may_start=False)
    assert isinstance(result, IndexPlan) and result.blocker is not None


def test_nothing_to_migrate_leaves_the_plain_plan() -> None:
    same = spec(settings={}, mappings={"properties": {"value": {"type": "long"}}})
    result = plan(behind_alias(source()), None, same)
    assert isinstance(result, IndexPlan) and result.blocker is None


# --- the steps -------------------------------------------------------------------------------


def test_creating_with_no_target_creates_it_with_the_spec_and_starts_the_first_copy() -> None:
    change = only_change(plan(during(recorded()), recorded()))
    assert isinstance(change, StartCopy)
    assert change.create is not None and change.create.index == TARGET
    assert change.create.settings == {"index.number_of_shards": "3"}
    assert change.create.aliases == {}  # the name moves only at the switch


def test_a_target_without_a_copy_gets_the_first_copy_started() -> None:
    change = only_change(plan(during(recorded(), target=new_target()), recorded()))
    assert isinstance(change, StartCopy) and change.create is None


def test_the_start_event_reads_the_same_whether_or_not_the_target_existed() -> None:
    first = only_change(plan(during(recorded()), recorded()))
    again = only_change(plan(during(recorded(), target=new_target()), recorded()))
    assert first.summary() == again.summary() and first.drift() == again.drift()


def test_a_running_first_copy_is_waited_for_with_its_progress_shown() -> None:
    result = plan(during(recorded(), target=new_target(), copy=task()), recorded())
    assert result.changes == () and result.blocker is None
    assert result.record == recorded(Step.COPYING, "node:7")
    assert "40 of 100 copied" in result.progress


def test_a_finished_first_copy_leads_to_the_catch_up_from_the_recorded_checkpoint() -> None:
    observed = during(recorded(Step.COPYING, "node:7"), target=new_target(), copy=task(completed=True))
    change = only_change(plan(observed, recorded(Step.COPYING, "node:7")))
    assert change == CatchUp(source=SOURCE, target=TARGET, checkpoint=CHECKPOINT)


def test_a_running_final_copy_is_waited_for_with_writes_blocked() -> None:
    record = recorded(Step.CATCHING_UP, "node:8")
    result = plan(during(record, blocked=True, target=new_target(), copy=task("node:8", catch_up=True)), record)
    assert result.changes == () and result.record == record
    assert "blocked" in result.progress


def test_equal_counts_after_the_final_copy_move_the_name_with_every_alias() -> None:
    record = recorded(Step.CATCHING_UP, "node:8")
    observed = during(
        record,
        blocked=True,
        target=new_target(),
        copy=task("node:8", catch_up=True, completed=True),
        documents=(100, 100),
    )
    result = plan(observed, record, spec(aliases={"orders-latest": {"is_write_index": False}}))
    change = only_change(result)
    assert isinstance(change, SwitchAlias)
    assert (change.source, change.target, change.documents, change.remove_source_index) == (
        SOURCE,
        TARGET,
        100,
        False,
    )
    assert change.remove_aliases == (NAME, "orders-read")
    assert change.add_aliases == {"orders-read": {}, "orders-latest": {"is_write_index": False}}
    assert result.record.source_documents == 100


def test_a_plain_index_is_replaced_by_the_alias_in_the_same_request() -> None:
    record = MigrationStatus(
        source_index=NAME, target_index="orders-v1", step=Step.CATCHING_UP, task="n:1", checkpoint=3
    )
    plain = index(NAME, blocked=True, aliases={"orders-read": {"filter": {"term": {"a": 1}}, "index_routing": "1"}})
    observed = Observation(
        name=NAME,
        cluster=CLUSTER,
        indices=(plain,),
        migration=MigrationFacts(
            source=plain,
            target=replace(new_target(), name="orders-v1"),
            task=task("n:1", catch_up=True, completed=True),
            documents=(5, 5),
        ),
    )
    change = only_change(plan(observed, record))
    assert isinstance(change, SwitchAlias) and change.remove_source_index
    assert change.remove_aliases == ()
    assert change.add_aliases == {"orders-read": {"filter": {"term": {"a": 1}}, "index_routing": "1"}}


def test_different_counts_unblock_the_source_and_stall_with_the_numbers() -> None:
    record = recorded(Step.CATCHING_UP, "node:8")
    observed = during(
        record,
        blocked=True,
        target=new_target(),
        copy=task("node:8", catch_up=True, completed=True),
        documents=(98, 100),
    )
    change = only_change(plan(observed, record))
    assert isinstance(change, StopMigration)
    assert change.unblock and not change.delete_target and change.cancel == ()
    assert change.stall is not None and change.stall[0] == COUNT_MISMATCH
    assert "98" in change.stall[1] and "100" in change.stall[1]


def test_once_stopped_the_pass_stalls_and_records_the_failure() -> None:
    record = recorded(Step.CATCHING_UP, "node:8")
    observed = during(record, target=new_target())
    observed = replace(observed, migration=replace(observed.migration, stopped=(COUNT_MISMATCH, "counts differ")))
    result = plan(observed, record)
    assert result.blocker is not None and result.blocker.reason == COUNT_MISMATCH
    assert result.changes == ()
    assert result.record.step == Step.FAILED and result.record.task is None


def test_a_failed_first_copy_stalls_with_the_servers_words() -> None:
    record = recorded(Step.COPYING, "node:7")
    failed = task(completed=True, failures=("document '3': mapper_parsing_exception: failed to parse",))
    result = plan(during(record, target=new_target(), copy=failed), record)
    assert result.changes == ()
    assert result.blocker.reason == MIGRATION_FAILED and "mapper_parsing_exception" in result.blocker.message
    assert result.record.step == Step.FAILED


def test_a_failed_final_copy_unblocks_the_source_before_stalling() -> None:
    record = recorded(Step.CATCHING_UP, "node:8")
    failed = task("node:8", catch_up=True, completed=True, failures=("es_rejected_execution_exception: full",))
    change = only_change(plan(during(record, blocked=True, target=new_target(), copy=failed), record))
    assert isinstance(change, StopMigration) and change.unblock and change.stall[0] == MIGRATION_FAILED


def test_after_the_switch_the_old_index_is_deleted_only_when_asked() -> None:
    record = recorded(Step.CATCHING_UP, "node:8")
    moved = replace(new_target(), aliases={NAME: {"is_write_index": True}})
    observed = replace(during(record, current=moved, target=moved), name="orders")
    observed = replace(observed, migration=replace(observed.migration, source=index(SOURCE, blocked=True)))
    kept = plan(observed, record)
    assert kept.record is None and kept.changes == () and kept.progress is None and kept.blocker is None

    deleting = plan(observed, record, spec(migration={"strategy": "Reindex", "deleteOldIndex": True}))
    assert only_change(deleting) == DeleteOldIndex(index=SOURCE, target=TARGET)
    assert deleting.record.step == Step.DELETING_OLD_INDEX


def test_the_old_index_gone_the_migration_is_over() -> None:
    record = recorded(Step.DELETING_OLD_INDEX)
    moved = replace(new_target(), aliases={NAME: {"is_write_index": True}})
    observed = replace(behind_alias(moved), migration=MigrationFacts(source=None, target=moved))
    result = plan(observed, record, spec(migration={"strategy": "Reindex", "deleteOldIndex": True}))
    assert result.record is None and result.changes == () and result.progress is None


def test_after_the_switch_a_field_the_spec_dropped_is_not_a_migration_again() -> None:
    """Documents still carry a removed field: the target maps it dynamically. It was the spec's, not any more."""
    record = recorded(Step.CATCHING_UP, "node:8")
    with_old_field = {"properties": {"value": {"type": "keyword"}, "legacy": {"type": "text"}}}
    moved = replace(new_target(), mappings=with_old_field, aliases={NAME: {"is_write_index": True}})
    observed = replace(behind_alias(moved), migration=MigrationFacts(source=None, target=moved))
    result = plan(observed, record, managed=Managed(fields=frozenset({"value", "legacy"})))
    assert result.record is None and result.blocker is None and result.migration_needed == ()


def test_the_spec_changing_again_during_a_migration_starts_the_next_one_after_it() -> None:
    record = recorded(Step.CATCHING_UP, "node:8")
    moved = replace(new_target(), aliases={NAME: {"is_write_index": True}})
    observed = replace(behind_alias(moved), migration=MigrationFacts(source=None, target=moved))
    result = plan(observed, record, spec(settings={"number_of_shards": 5}))
    assert result.record is None and result.blocker is None and "another migration" in result.progress


def test_a_failed_migration_asked_again_removes_its_target_then_starts_over() -> None:
    record = recorded(Step.FAILED)
    change = only_change(plan(during(record, target=new_target()), record))
    assert isinstance(change, StopMigration) and change.delete_target and change.stall is None
    result = plan(during(record), record)
    assert result.changes == () and result.record.step == Step.CREATING and result.record.task is None


def test_a_reverted_spec_cancels_the_copy_unblocks_and_deletes_the_target() -> None:
    record = recorded(Step.CATCHING_UP, "node:8")
    reverted = spec(settings={}, mappings={"properties": {"value": {"type": "long"}}})
    running = task("node:8", catch_up=True)
    change = only_change(plan(during(record, blocked=True, target=new_target(), copy=running), record, reverted))
    assert isinstance(change, StopMigration)
    assert (change.cancel, change.unblock, change.delete_target, change.stall) == (("node:8",), True, True, None)
    done = plan(during(record), record, reverted)
    assert done.record is None and done.changes == () and done.blocker is None


def test_removing_spec_migration_undoes_it_and_the_plain_stall_returns() -> None:
    record = recorded(Step.COPYING, "node:7")
    change = only_change(plan(during(record, target=new_target(), copy=task()), record, spec(migration=None)))
    assert isinstance(change, StopMigration) and change.delete_target and "spec.migration was removed" in change.why
    done = plan(during(record), record, spec(migration=None))
    assert done.record is None and done.blocker.reason == REQUIRES_MIGRATION


def test_a_name_moved_elsewhere_meanwhile_stops_and_starts_over() -> None:
    record = recorded(Step.COPYING, "node:7")
    other = index("orders-other", aliases={NAME: {}})
    change = only_change(plan(during(record, target=new_target(), copy=task(), current=other), record))
    assert isinstance(change, StopMigration) and change.cancel == ("node:7",) and change.delete_target


def test_a_target_no_longer_matching_the_spec_is_replaced() -> None:
    record = recorded(Step.COPYING, "node:7")
    five = spec(settings={"number_of_shards": 5})
    change = only_change(plan(during(record, target=new_target(), copy=task()), record, five))
    assert isinstance(change, StopMigration) and change.delete_target and change.cancel == ("node:7",)
    assert "spec changed" in change.why
    restart = only_change(plan(during(record), record, five))
    assert isinstance(restart, StartCopy) and restart.create.settings == {"index.number_of_shards": "5"}


def test_a_target_deleted_during_a_copy_has_the_copy_cancelled_before_it_is_created_again() -> None:
    record = recorded(Step.COPYING, "node:7")
    change = only_change(plan(during(record, copy=task()), record))
    assert isinstance(change, StopMigration) and change.cancel == ("node:7",) and not change.delete_target


# --- resuming after a pass cut short at each point ---------------------------------------------


def test_killed_after_recording_before_creating_the_target() -> None:
    change = only_change(plan(during(recorded()), recorded()))
    assert isinstance(change, StartCopy) and change.create is not None


def test_killed_after_creating_the_target_before_the_copy() -> None:
    change = only_change(plan(during(recorded(), target=new_target()), recorded()))
    assert isinstance(change, StartCopy) and change.create is None


def test_killed_after_starting_the_copy_before_recording_its_task_adopts_it() -> None:
    orphan = task("node:9")
    result = plan(during(recorded(), target=new_target(), orphans=(orphan,)), recorded())
    assert result.changes == ()
    assert result.record == recorded(Step.COPYING, "node:9")


def test_killed_after_starting_the_copy_that_then_finished_unseen_copies_again() -> None:
    change = only_change(plan(during(recorded(), target=new_target()), recorded()))
    assert isinstance(change, StartCopy)


def test_a_recorded_copy_that_finished_while_the_operator_was_down_is_read_and_followed() -> None:
    record = recorded(Step.COPYING, "node:7")
    change = only_change(plan(during(record, target=new_target(), copy=task(completed=True)), record))
    assert isinstance(change, CatchUp)


def test_a_recorded_copy_the_server_lost_is_started_again() -> None:
    record = recorded(Step.COPYING, "node:7")
    change = only_change(plan(during(record, target=new_target(), copy=None), record))
    assert isinstance(change, StartCopy)


def test_killed_after_blocking_before_the_final_copy_catches_up_again() -> None:
    record = recorded(Step.COPYING, "node:7")
    observed = during(record, blocked=True, target=new_target(), copy=task(completed=True))
    assert only_change(plan(observed, record)) == CatchUp(source=SOURCE, target=TARGET, checkpoint=CHECKPOINT)


def test_killed_after_starting_the_final_copy_adopts_it_as_the_final_one() -> None:
    record = recorded(Step.COPYING, "node:7")
    orphan = task("node:10", catch_up=True)
    observed = during(record, blocked=True, target=new_target(), copy=task(completed=True), orphans=(orphan,))
    result = plan(observed, record)
    assert result.changes == () and result.record == recorded(Step.CATCHING_UP, "node:10")


def test_a_final_copy_lost_or_finished_unseen_is_made_again() -> None:
    record = recorded(Step.CATCHING_UP, "node:8")
    change = only_change(plan(during(record, blocked=True, target=new_target()), record))
    assert isinstance(change, CatchUp)


def test_a_block_lifted_after_the_final_copy_means_another_final_copy() -> None:
    record = recorded(Step.CATCHING_UP, "node:8")
    observed = during(record, target=new_target(), copy=task("node:8", catch_up=True, completed=True))
    assert isinstance(only_change(plan(observed, record)), CatchUp)


def test_killed_after_the_switch_before_recording_it() -> None:
    record = recorded(Step.CATCHING_UP, "node:8")
    moved = replace(new_target(), aliases={NAME: {"is_write_index": True}})
    observed = replace(behind_alias(moved), migration=MigrationFacts(source=index(SOURCE, blocked=True), target=moved))
    assert plan(observed, record).record is None


def test_killed_after_unblocking_on_a_count_mismatch_ends_in_the_same_stall() -> None:
    record = recorded(Step.CATCHING_UP, "node:8")
    observed = during(record, target=new_target(), copy=task("node:8", catch_up=True, completed=True))
    # Blocked again, copied again; the counts still differ, so it stops again.
    assert isinstance(only_change(plan(observed, record)), CatchUp)


def test_two_copies_running_are_waited_for_never_joined_by_a_third() -> None:
    record = recorded(Step.COPYING)
    result = plan(during(record, target=new_target(), orphans=(task("a:1"), task("a:2"))), record)
    assert result.changes == () and result.record == record


# --- properties ----------------------------------------------------------------------------------

copy_tasks = st.builds(
    CopyTask,
    id=st.sampled_from(["n:1", "n:2", "n:3"]),
    catch_up=st.booleans(),
    completed=st.booleans(),
    total=st.just(10),
    copied=st.just(5),
    failures=st.sampled_from([(), ("boom",)]),
)


@given(
    step=st.sampled_from(list(Step)),
    blocked=st.booleans(),
    target_exists=st.booleans(),
    copy=st.none() | copy_tasks,
    orphans=st.lists(copy_tasks.map(lambda t: replace(t, completed=False, failures=())), max_size=2),
    documents=st.none() | st.tuples(st.integers(0, 3), st.integers(0, 3)),
    switched=st.booleans(),
    delete_old=st.booleans(),
)
def test_no_state_leads_to_loss_or_two_copies(
    step: Step,
    blocked: bool,
    target_exists: bool,
    copy: CopyTask | None,
    orphans: list[CopyTask],
    documents: tuple[int, int] | None,
    switched: bool,
    delete_old: bool,
) -> None:
    record = recorded(step, copy.id if copy else None)
    target = new_target() if target_exists else None
    switched = switched and target is not None
    observed = during(record, blocked=blocked, target=target, copy=copy, orphans=tuple(orphans), documents=documents)
    if switched and target is not None:
        moved = replace(target, aliases={NAME: {"is_write_index": True}})
        observed = replace(observed, indices=(moved,), migration=replace(observed.migration, target=moved))
    options = {"strategy": "Reindex", "deleteOldIndex": delete_old}
    result = plan(observed, record, spec(migration=options))
    assert isinstance(result, MigrationPlan)
    assert len(result.changes) <= 1
    running = {t.id for t in orphans} | ({copy.id} if copy and not copy.completed else set())
    for change in result.changes:
        if isinstance(change, StartCopy | CatchUp):
            assert not running, "a copy started while another runs"
        if isinstance(change, SwitchAlias):
            assert blocked and copy is not None and copy.catch_up and copy.completed and not copy.failures
            assert documents is not None and documents[0] == documents[1] and not orphans
        if isinstance(change, DeleteOldIndex):
            assert switched and target is not None, "the old index deleted before the name moved"
        if isinstance(change, StopMigration) and change.delete_target:
            assert set(change.cancel) >= running, "a target deleted while a copy into it runs"
        if isinstance(change, StopMigration):
            assert not switched


def test_copies_are_looked_at_when_they_should_be_done_the_final_one_at_once() -> None:
    halfway = CopyTask("n:1", catch_up=False, completed=False, total=100, copied=50, running_seconds=0.4)
    assert poll_seconds(halfway) == 0.4
    assert poll_seconds(replace(halfway, running_seconds=30)) == 1.0
    assert poll_seconds(replace(halfway, copied=99)) == 0.1
    assert poll_seconds(replace(halfway, copied=0)) == 0.1
    assert poll_seconds(replace(halfway, catch_up=True, running_seconds=30)) == 0.1
