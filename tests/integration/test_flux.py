"""GitOps with the real Flux: commits reach Kafka through source-controller and kustomize-controller.

The path users take: a KafkaTopic in a kustomize base, sized by an overlay,
in a Git repository; a GitRepository and a Kustomization (prune, wait: every
object's health checked, as Flux reads it with kstatus) pointing at the
overlay. Each test commits a change and watches what Flux reports, with the
operator running. The stack's Flux (`hack/stack start flux`, started here when
not running, and left running) fetches over HTTP from the stack's Git server.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import yaml
from confluent_kafka.admin import AdminClient
from kubernetes import client

from tests.integration.conftest import RunningOperator
from tests.integration.flux import (
    GIT_REPOSITORIES,
    KUSTOMIZATIONS,
    KUSTOMIZE_GROUP,
    Branch,
    get_kustomization,
    git_repository,
    kustomization,
    ready_for,
    request_reconcile,
)
from tests.integration.helpers import (
    apply,
    describe,
    described_as,
    exists,
    get,
    kafka_topic,
    kubectl,
    run_stack,
    unique,
    wait_for,
)

SOURCE = "infometis"
# Short, as the brief for tests asks; a Kustomization's health check gets a long timeout, so a
# failure reported well within it was not a timeout.
INTERVAL_SECONDS = 10
HEALTH_TIMEOUT = "5m"
FAIL_FAST_BOUND_SECONDS = 60
# Cold start of Flux on a fresh cache builds both controllers: longer than hack/stack's usual bound.
FLUX_START_TIMEOUT_SECONDS = 1800


@dataclass(frozen=True)
class FluxRepository:
    namespace: str  # the GitRepository, the Kustomizations and the KafkaTopics they apply
    branch: Branch


@pytest.fixture(scope="module")
def flux(
    stack: dict[str, str], operator: RunningOperator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FluxRepository]:
    """One GitRepository for the module, on a branch of its own, in a namespace of its own."""
    run_stack("start", "flux", timeout=FLUX_START_TIMEOUT_SECONDS)
    url = stack["FLUX_GIT_URL"]
    namespace = unique("flux")
    client.CoreV1Api().create_namespace({"metadata": {"name": namespace}})
    branch = Branch.create(url, tmp_path_factory.mktemp("flux") / "repository", namespace)
    print(f"\nremoved what earlier Flux test runs left: {branch.sweep_leftovers()}")
    apply(namespace, git_repository(SOURCE, url, branch.name, f"{INTERVAL_SECONDS}s"))
    yield FluxRepository(namespace, branch)
    kubectl("delete", GIT_REPOSITORIES + ".source.toolkit.fluxcd.io", SOURCE, "-n", namespace)
    branch.delete_remote()
    client.CoreV1Api().delete_namespace(namespace)


@dataclass(frozen=True)
class TopicInGit:
    """A KafkaTopic in `<name>/base`, an overlay in `<name>/overlay`, and its Kustomization `name`."""

    name: str
    repository: FluxRepository

    def files(self, partitions: int, config: dict[str, str]) -> dict[str, str]:
        """The base (one partition, one day's retention) and an overlay patching what the test sizes."""
        base = kafka_topic(self.name, 1, 1, deletionPolicy="Delete", config={"retention.ms": "86400000"})
        patch = {**kafka_topic(self.name, partitions, 1), "spec": {"partitions": partitions, "config": config}}
        return {
            f"{self.name}/base/topic.yaml": yaml.safe_dump(base),
            f"{self.name}/base/kustomization.yaml": yaml.safe_dump({"resources": ["topic.yaml"]}),
            f"{self.name}/overlay/kustomization.yaml": yaml.safe_dump(
                {"resources": ["../base"], "patches": [{"path": "topic-size.yaml"}]}
            ),
            f"{self.name}/overlay/topic-size.yaml": yaml.safe_dump(patch),
        }

    def commit(self, message: str, partitions: int, config: dict[str, str] | None = None) -> str:
        return self.repository.branch.commit(self.files(partitions, config or {}), message)

    def result(self, sha: str) -> tuple[str, str, str] | None:
        return ready_for(get_kustomization(self.repository.namespace, self.name), sha)

    def wait_result(self, sha: str, timeout: float) -> tuple[tuple[str, str, str], float]:
        """Ready's (status, reason, message) for the commit, and the seconds it took to show."""
        started = time.monotonic()
        seen = wait_for(lambda: self.result(sha), timeout=timeout, interval=0.2, what=f"{self.name} at {sha}")
        return seen, time.monotonic() - started


@pytest.fixture
def topic_in_git(flux: FluxRepository, kafka_admin: AdminClient) -> Iterator[TopicInGit]:
    """A topic whose Kustomization is deleted afterwards: Flux prunes the KafkaTopic, the topic goes."""
    topic = TopicInGit(unique("flux-orders"), flux)
    yield topic
    kubectl("delete", f"{KUSTOMIZATIONS}.{KUSTOMIZE_GROUP}", topic.name, "-n", flux.namespace, "--ignore-not-found")
    wait_for(lambda: not exists(flux.namespace, topic.name), timeout=60, what=f"KafkaTopic {topic.name} pruned")
    wait_for(lambda: describe(kafka_admin, topic.name) is None, timeout=60, what=f"topic {topic.name} deleted")


def start_kustomization(topic: TopicInGit, partitions: int) -> str:
    """The first commit of the topic and its Kustomization, Ready; that commit's SHA."""
    sha = topic.commit(f"Add {topic.name}", partitions)
    request_reconcile(topic.repository.namespace, SOURCE)
    apply(
        topic.repository.namespace,
        kustomization(
            topic.name,
            SOURCE,
            f"./{topic.name}/overlay",
            topic.repository.namespace,
            f"{INTERVAL_SECONDS}s",
            HEALTH_TIMEOUT,
        ),
    )
    (ready, reason, _), _ = topic.wait_result(sha, timeout=90)
    assert (ready, reason) == ("True", "ReconciliationSucceeded")
    return sha


def test_a_commit_changing_the_overlay_reaches_kafka_and_the_kustomization_is_ready_for_it(
    topic_in_git: TopicInGit, kafka_admin: AdminClient
) -> None:
    start_kustomization(topic_in_git, partitions=2)
    described_as(kafka_admin, topic_in_git.name, lambda t: t["partitions"] == 2)

    # Left to the GitRepository's interval, as a team that only pushes would.
    sha = topic_in_git.commit("More partitions, a week's retention", 3, {"retention.ms": "604800000"})
    (ready, reason, message), by_interval = topic_in_git.wait_result(sha, timeout=INTERVAL_SECONDS + 60)
    assert (ready, reason) == ("True", "ReconciliationSucceeded"), message
    assert message.endswith(f"sha1:{sha}")
    # Ready for the commit means the operator made Kafka match it (wait: true).
    described_as(kafka_admin, topic_in_git.name, lambda t: t["partitions"] == 3 and t["retention.ms"] == "604800000")
    assert get(topic_in_git.repository.namespace, topic_in_git.name)["spec"]["partitions"] == 3

    # Asked for at once, as `flux reconcile source git` does.
    sha = topic_in_git.commit("Two weeks' retention", 3, {"retention.ms": "1209600000"})
    request_reconcile(topic_in_git.repository.namespace, SOURCE)
    (ready, reason, message), on_request = topic_in_git.wait_result(sha, timeout=60)
    assert (ready, reason) == ("True", "ReconciliationSucceeded"), message
    described_as(kafka_admin, topic_in_git.name, lambda t: t["retention.ms"] == "1209600000")
    print(f"\ncommit -> Kustomization Ready: {by_interval:.1f}s by a {INTERVAL_SECONDS}s interval,", end=" ")
    print(f"{on_request:.1f}s on request")


def test_a_commit_decreasing_partitions_is_refused_at_admission_and_the_kustomization_says_why(
    topic_in_git: TopicInGit, kafka_admin: AdminClient
) -> None:
    start_kustomization(topic_in_git, partitions=2)

    sha = topic_in_git.commit("Fewer partitions", 1)
    request_reconcile(topic_in_git.repository.namespace, SOURCE)
    (ready, reason, message), _ = topic_in_git.wait_result(sha, timeout=60)

    assert (ready, reason) == ("False", "ReconciliationFailed")
    assert "partitions cannot be decreased: Kafka cannot remove partitions from a topic" in message
    assert f"KafkaTopic/{topic_in_git.repository.namespace}/{topic_in_git.name}" in message
    # Nothing reached the object or Kafka.
    assert get(topic_in_git.repository.namespace, topic_in_git.name)["spec"]["partitions"] == 2
    assert described_as(kafka_admin, topic_in_git.name, lambda t: True)["partitions"] == 2


def test_a_commit_kafka_refuses_fails_the_kustomization_long_before_its_health_check_timeout(
    topic_in_git: TopicInGit,
) -> None:
    start_kustomization(topic_in_git, partitions=1)

    sha = topic_in_git.commit("A retention Kafka cannot parse", 1, {"retention.ms": "a fortnight"})
    request_reconcile(topic_in_git.repository.namespace, SOURCE)
    (ready, reason, message), failed_after = topic_in_git.wait_result(sha, timeout=FAIL_FAST_BOUND_SECONDS)

    # kstatus reads our Stalled=True as Failed, and kustomize-controller stops waiting on a Failed object.
    assert (ready, reason) == ("False", "HealthCheckFailed")
    assert "failed early due to stalled resources" in message
    assert f"KafkaTopic/{topic_in_git.repository.namespace}/{topic_in_git.name} status: 'Failed'" in message
    # Flux names the object; the object says why, in its own Ready condition.
    topic = get(topic_in_git.repository.namespace, topic_in_git.name)
    ready_condition = next(c for c in topic["status"]["conditions"] if c["type"] == "Ready")
    assert ready_condition["reason"] == "InvalidConfig"
    assert "retention.ms" in ready_condition["message"]
    print(f"\ncommit -> Kustomization failed: {failed_after:.1f}s (health-check timeout {HEALTH_TIMEOUT})")


def test_a_rollback_on_request_outlasts_flux_applying_new_commits_until_it_is_removed(
    topic_in_git: TopicInGit, kafka_admin: AdminClient
) -> None:
    """The service-side rollback (README, "Rollback") beside Git: Flux applies commits, the annotation
    stays (Flux does not manage it), and the topic keeps the revision asked for until the annotation goes."""
    namespace, name = topic_in_git.repository.namespace, topic_in_git.name
    start_kustomization(topic_in_git, partitions=1)  # generation 1: a day's retention
    sha = topic_in_git.commit("A week's retention", 1, {"retention.ms": "604800000"})
    request_reconcile(namespace, SOURCE)
    assert topic_in_git.wait_result(sha, timeout=60)[0][:2] == ("True", "ReconciliationSucceeded")
    described_as(kafka_admin, name, lambda t: t["retention.ms"] == "604800000")

    # A field manager of its own: Flux takes over (and so removes) what managers named kubectl* set.
    kubectl(
        "annotate", "kafkatopic", name, "-n", namespace, "--field-manager=infometis-rollback",
        "infometis.io/rollback-to-revision=1",
    )  # fmt: skip
    described_as(kafka_admin, name, lambda t: t["retention.ms"] == "86400000", timeout=30)

    sha = topic_in_git.commit("Two weeks' retention", 1, {"retention.ms": "1209600000"})
    request_reconcile(namespace, SOURCE)
    (ready, reason, message), _ = topic_in_git.wait_result(sha, timeout=60)
    assert (ready, reason) == ("True", "ReconciliationSucceeded"), message  # settled, as asked
    obj = get(namespace, name)
    assert obj["metadata"]["annotations"]["infometis.io/rollback-to-revision"] == "1"
    assert obj["spec"]["config"] == {"retention.ms": "1209600000"}
    time.sleep(3)  # resyncs: the revision asked for stays
    assert describe(kafka_admin, name)["retention.ms"] == "86400000"  # type: ignore[index]

    kubectl("annotate", "kafkatopic", name, "-n", namespace, "infometis.io/rollback-to-revision-")
    described_as(kafka_admin, name, lambda t: t["retention.ms"] == "1209600000", timeout=30)
