"""plan_topic: desired vs observed -> changes, and why not. No servers."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from controllers.kafkatopic.plan import (
    INSUFFICIENT_BROKERS,
    PARTITIONS_EXCEED_SPEC,
    AlterConfig,
    ConfigUpdate,
    CreateTopic,
    DesiredTopic,
    IncreasePartitions,
    ReassignReplicas,
    TopicPlan,
    assign_replicas,
    plan_topic,
)
from controllers.kafkatopic.state import ConfigValue, ObservedTopic

BROKERS = (1, 2, 3)


def desired(partitions: int = 3, factor: int = 1, **config: str) -> DesiredTopic:
    return DesiredTopic("orders", partitions, factor, config)


def observed(partitions: int = 3, factor: int = 1, **config: str) -> ObservedTopic:
    replicas = tuple(tuple(BROKERS[(p + i) % 3] for i in range(factor)) for p in range(partitions))
    values = {"retention.ms": ConfigValue("604800000", False), "cleanup.policy": ConfigValue("delete", False)}
    values.update({k: ConfigValue(v, True) for k, v in config.items()})
    return ObservedTopic("orders", "id-1", replicas, values)


def plan(
    want: DesiredTopic, have: ObservedTopic | None, managed: frozenset[str] = frozenset(), **kw: object
) -> TopicPlan:
    return plan_topic(
        want,
        have,
        broker_ids=kw.get("brokers", BROKERS),  # type: ignore[arg-type]
        managed_keys_before=managed,
        reassignment_in_progress=bool(kw.get("reassigning", False)),
    )


def test_a_missing_topic_is_created_with_its_config() -> None:
    result = plan(desired(6, 3, **{"retention.ms": "86400000"}), None)
    assert result.changes == (CreateTopic("orders", 6, 3, (("retention.ms", "86400000"),)),)
    assert result.blocker is None


def test_a_topic_that_matches_needs_nothing() -> None:
    assert plan(desired(3, 1, **{"retention.ms": "1"}), observed(3, 1, **{"retention.ms": "1"})) == TopicPlan()


def test_more_partitions_in_the_spec_are_added() -> None:
    assert plan(desired(6), observed(3)).changes == (IncreasePartitions("orders", 3, 6),)


def test_fewer_partitions_in_the_spec_stall_instead_of_shrinking() -> None:
    result = plan(desired(2), observed(3))
    assert result.changes == ()
    assert result.blocker is not None and result.blocker.reason == PARTITIONS_EXCEED_SPEC
    assert "3 partitions but spec.partitions is 2" in result.blocker.message


def test_a_config_value_that_differs_is_set() -> None:
    result = plan(desired(**{"retention.ms": "1000"}), observed(**{"retention.ms": "2000"}))
    assert result.changes == (
        AlterConfig("orders", (ConfigUpdate("retention.ms", "1000", ConfigValue("2000", True)),)),
    )


def test_a_desired_value_equal_to_the_default_is_still_set_on_the_topic() -> None:
    result = plan(desired(**{"retention.ms": "604800000"}), observed())
    assert [u.key for c in result.changes if isinstance(c, AlterConfig) for u in c.updates] == ["retention.ms"]


def test_a_key_removed_from_the_spec_is_reset_to_the_default() -> None:
    result = plan(desired(), observed(**{"retention.ms": "1000"}), managed=frozenset({"retention.ms"}))
    assert result.changes == (AlterConfig("orders", (ConfigUpdate("retention.ms", None, ConfigValue("1000", True)),)),)


def test_keys_the_operator_never_managed_are_left_alone() -> None:
    assert plan(desired(), observed(**{"segment.ms": "1000"})) == TopicPlan()


def test_a_replication_factor_change_reassigns_every_partition() -> None:
    result = plan(desired(3, 3), observed(3, 1))
    (change,) = result.changes
    assert isinstance(change, ReassignReplicas)
    assert (change.current, change.desired) == (1, 3)
    assert [len(replicas) for _, replicas in change.assignment] == [3, 3, 3]


def test_no_new_reassignment_while_one_runs() -> None:
    assert plan(desired(3, 3), observed(3, 1), reassigning=True).changes == ()


def test_the_factor_waits_until_the_partitions_are_added() -> None:
    result = plan(desired(6, 3), observed(3, 1))
    assert result.changes == (IncreasePartitions("orders", 3, 6),)


def test_a_factor_above_the_broker_count_stalls_creation() -> None:
    result = plan(desired(3, 3), None, brokers=(1, 2))
    assert result.changes == ()
    assert result.blocker is not None and result.blocker.reason == INSUFFICIENT_BROKERS
    assert "needs at least 3 brokers; the cluster has 2" in result.blocker.message


def test_a_factor_above_the_broker_count_stalls_the_reassignment_but_not_the_config() -> None:
    result = plan(desired(3, 3, **{"retention.ms": "5"}), observed(3, 1), brokers=(1, 2))
    assert [type(c) for c in result.changes] == [AlterConfig]
    assert result.blocker is not None and result.blocker.reason == INSUFFICIENT_BROKERS


def test_drift_items_name_field_desired_and_actual() -> None:
    result = plan(desired(6, **{"retention.ms": "1000"}), observed(3, **{"retention.ms": "2000"}))
    assert [(d.field, d.desired, d.actual) for d in result.drift()] == [
        ("partitions", "6", "3"),
        ("config.retention.ms", "1000", "2000"),
    ]


def test_assign_replicas_keeps_existing_replicas_first_and_spreads_the_new_ones() -> None:
    result = assign_replicas([(2,), (3,), (1,)], [1, 2, 3], 2)
    assert [replicas[0] for replicas in result] == [2, 3, 1]
    assert sorted(b for replicas in result for b in replicas) == [1, 1, 2, 2, 3, 3]


def test_assign_replicas_shrinks_by_dropping_the_last_replicas() -> None:
    assert assign_replicas([(1, 2, 3), (2, 3, 1)], [1, 2, 3], 1) == ((1,), (2,))


# --- properties -------------------------------------------------------------------------

config_keys = st.sampled_from(["retention.ms", "cleanup.policy", "segment.ms", "min.insync.replicas"])
config_values = st.sampled_from(["1", "2", "delete", "compact"])


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[DesiredTopic, ObservedTopic | None, tuple[int, ...], frozenset[str]]:
    brokers = tuple(range(1, draw(st.integers(1, 5)) + 1))
    want = DesiredTopic(
        "t",
        draw(st.integers(1, 12)),
        draw(st.integers(1, len(brokers))),
        draw(st.dictionaries(config_keys, config_values, max_size=3)),
    )
    if draw(st.booleans()):
        return want, None, brokers, frozenset()
    partitions = draw(st.integers(1, want.partitions))
    replicas = tuple(
        tuple(draw(st.permutations(brokers))[: draw(st.integers(1, len(brokers)))]) for _ in range(partitions)
    )
    overrides = draw(st.dictionaries(config_keys, config_values, max_size=3))
    config = {k: ConfigValue(v, True) for k, v in overrides.items()}
    managed = frozenset(draw(st.lists(config_keys, max_size=3)))
    return want, ObservedTopic("t", "id", replicas, config), brokers, managed


def simulate(have: ObservedTopic | None, result: TopicPlan, brokers: tuple[int, ...]) -> ObservedTopic:
    """What Kafka holds after the changes are carried out."""
    for change in result.changes:
        if isinstance(change, CreateTopic):
            replicas = assign_replicas([()] * change.partitions, brokers, change.replication_factor)
            have = ObservedTopic("t", "id", replicas, {k: ConfigValue(v, True) for k, v in change.config})
        assert have is not None
        if isinstance(change, IncreasePartitions):
            factor = len(have.replicas[0])
            extra = tuple(tuple(brokers[:factor]) for _ in range(change.desired - change.current))
            have = replace(have, replicas=have.replicas + extra)
        elif isinstance(change, AlterConfig):
            config = dict(have.config)
            for update in change.updates:
                if update.desired is None:
                    config[update.key] = ConfigValue("default", False)
                else:
                    config[update.key] = ConfigValue(update.desired, True)
            have = replace(have, config=config)
        elif isinstance(change, ReassignReplicas):
            replicas = list(have.replicas)
            for partition, new in change.assignment:
                replicas[partition] = new
            have = replace(have, replicas=tuple(replicas))
    assert have is not None
    return have


@given(scenarios())
def test_carrying_out_the_plan_converges_within_two_rounds(
    scenario: tuple[DesiredTopic, ObservedTopic | None, tuple[int, ...], frozenset[str]],
) -> None:
    want, have, brokers, managed = scenario
    for _ in range(2):
        result = plan(want, have, managed, brokers=brokers)
        assert result.blocker is None
        have = simulate(have, result, brokers)
        managed = frozenset(want.config)
    assert plan(want, have, managed, brokers=brokers) == TopicPlan()


@given(scenarios())
def test_the_plan_never_touches_a_key_it_does_not_own(
    scenario: tuple[DesiredTopic, ObservedTopic | None, tuple[int, ...], frozenset[str]],
) -> None:
    want, have, brokers, managed = scenario
    touched = {
        u.key
        for c in plan(want, have, managed, brokers=brokers).changes
        if isinstance(c, AlterConfig)
        for u in c.updates
    }
    assert touched <= set(want.config) | managed


@given(scenarios())
def test_the_plan_never_shrinks_partitions(
    scenario: tuple[DesiredTopic, ObservedTopic | None, tuple[int, ...], frozenset[str]],
) -> None:
    want, have, brokers, managed = scenario
    for change in plan(want, have, managed, brokers=brokers).changes:
        if isinstance(change, IncreasePartitions):
            assert change.desired > change.current


@st.composite
def placements(draw: st.DrawFn) -> tuple[tuple[int, ...], list[tuple[int, ...]], int]:
    """Live brokers, partitions with several replicas (some on brokers now dead), and a factor."""
    every = tuple(range(1, draw(st.integers(1, 7)) + 1))
    live = tuple(sorted(draw(st.lists(st.sampled_from(every), min_size=1, unique=True))))
    current = draw(
        st.lists(
            st.permutations(every).flatmap(lambda order: st.integers(1, len(order)).map(lambda k: tuple(order[:k]))),
            min_size=1,
            max_size=20,
        )
    )
    return live, current, draw(st.integers(1, len(live)))


@given(placements())
def test_assignment_keeps_the_leader_and_adds_only_live_brokers(
    case: tuple[tuple[int, ...], list[tuple[int, ...]], int],
) -> None:
    live, current, factor = case
    for before, after in zip(current, assign_replicas(current, live, factor), strict=True):
        assert len(after) == factor == len(set(after))
        assert after[0] == before[0]  # the preferred leader keeps its place
        assert after[: min(factor, len(before))] == before[:factor]  # existing replicas stay, in order
        assert set(after) - set(before) <= set(live)  # new replicas only on live brokers


@given(st.integers(2, 6), st.integers(1, 30))
def test_raising_the_factor_of_an_evenly_spread_topic_keeps_it_even(brokers: int, partitions: int) -> None:
    ids = tuple(range(1, brokers + 1))
    current = [(ids[p % brokers],) for p in range(partitions)]
    load: dict[int, int] = {}
    for replicas in assign_replicas(current, ids, 2):
        for broker in replicas:
            load[broker] = load.get(broker, 0) + 1
    assert max(load.values()) - min(load.get(b, 0) for b in ids) <= 2


def test_a_config_change_is_undone_by_setting_overrides_back_and_resetting_defaults() -> None:
    change = AlterConfig(
        "t",
        (
            ConfigUpdate("retention.ms", "7200000", ConfigValue("3600000", is_topic_override=True)),
            ConfigUpdate("segment.ms", "60000", ConfigValue("604800000", is_topic_override=False)),
        ),
    )
    undo = change.undo()
    assert isinstance(undo, AlterConfig)
    assert [(u.key, u.desired) for u in undo.updates] == [("retention.ms", "3600000"), ("segment.ms", None)]
    assert undo.summary() == "config retention.ms: 7200000 -> 3600000; config segment.ms reset to default (was 60000)"


def test_partitions_added_cannot_be_undone_and_say_why() -> None:
    assert IncreasePartitions("t", 2, 4).undo() == "Kafka cannot remove partitions"
