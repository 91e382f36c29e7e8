"""A topic a broker does not list yet is not taken for deleted while Kafka's controller has it.

Found at 10,000 new topics (docs/benchmarks.md): a broker behind the controller
answered describes of topics created seconds before as unknown; the operator
created them again and announced corrected drift. The question the controller
answers is tested on the real brokers in tests/integration/test_kafka_metadata_lag.py;
here, what the kind does with its answer.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from controllers.core.connections import Connection
from controllers.core.outcome import Phase
from controllers.kafkatopic import kind as kind_module
from controllers.kafkatopic.admin import BrokersBehind
from controllers.kafkatopic.kind import BROKER_CATCH_UP_PAUSES, KafkaTopicKind
from controllers.kafkatopic.state import ClusterFacts, Observation, ObservedTopic

CLUSTER = ClusterFacts("cluster-1", (1, 2, 3))
SHOWN = Observation(ObservedTopic("orders", "id-1", ((1,),)), CLUSTER)
NOT_LISTED = Observation(None, CLUSTER)
CLIENT = SimpleNamespace(connection=Connection("default", {}, frozenset()))
KIND = KafkaTopicKind(connections=None, admins=None, default_connection=None)  # type: ignore[arg-type]


class LaggingBrokers:
    """Describes answered from a broker's copy, `listed_after` describes late; the controller's own answer."""

    def __init__(self, *, listed_after: int, controller_has: bool) -> None:
        self.listed_after = listed_after
        self.controller_has = controller_has
        self.describes = 0
        self.questions = 0

    async def observe(self, topic: str, config_keys: frozenset[str]) -> Observation:
        self.describes += 1
        return SHOWN if self.describes > self.listed_after else NOT_LISTED

    async def known_to_controller(self, topic: str) -> bool:
        self.questions += 1
        return self.controller_has


def request(*, topic_id: str | None) -> Any:
    return SimpleNamespace(
        body={"metadata": {"name": "orders"}, "spec": {}},
        spec=SimpleNamespace(config={}, replication_factor=1),
        status=SimpleNamespace(managed_config_keys=[], topic_id=topic_id, replicas_change=None),
    )


@pytest.fixture(autouse=True)
def no_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kind_module, "BROKER_CATCH_UP_PAUSES", (0.0,) * len(BROKER_CATCH_UP_PAUSES))


async def test_a_known_topic_a_broker_lists_late_is_described_again_not_taken_for_deleted() -> None:
    brokers = LaggingBrokers(listed_after=2, controller_has=True)
    observation = await KIND.observe(brokers, request(topic_id="id-1"), applied=())  # type: ignore[arg-type]
    assert observation == SHOWN
    assert (brokers.describes, brokers.questions) == (3, 2)


async def test_a_known_topic_the_controller_lacks_too_is_missing_after_one_question() -> None:
    brokers = LaggingBrokers(listed_after=99, controller_has=False)
    observation = await KIND.observe(brokers, request(topic_id="id-1"), applied=())  # type: ignore[arg-type]
    assert observation == NOT_LISTED
    assert (brokers.describes, brokers.questions) == (1, 1)


async def test_brokers_still_behind_make_the_pass_progress_again_shortly_without_a_warning() -> None:
    brokers = LaggingBrokers(listed_after=99, controller_has=True)
    with pytest.raises(BrokersBehind, match="have not caught up") as raised:
        await KIND.observe(brokers, request(topic_id="id-1"), applied=())  # type: ignore[arg-type]
    outcome = KIND.failure(CLIENT, "orders", None, raised.value)  # type: ignore[arg-type]
    assert (outcome.phase, outcome.requeue_after) == (Phase.PROGRESSING, 1.0)


async def test_a_topic_this_object_never_saw_costs_no_question() -> None:
    brokers = LaggingBrokers(listed_after=99, controller_has=True)
    observation = await KIND.observe(brokers, request(topic_id=None), applied=())  # type: ignore[arg-type]
    assert observation == NOT_LISTED and brokers.questions == 0
