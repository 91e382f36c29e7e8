"""The API server stops for longer than kopf retries a request: the operator waits, says so once, and resumes.

kopf retries a failed request 8 times, 1 to 21 s apart: 54 s. This outage
lasts longer than that, so kopf's default last attempt would fail while the
API server is still away. The test costs about 100 s: `hack/stack stop` takes
30 s (the API server drains kopf's open watch until it is killed), then the
outage lasts 60 s from the moment the process is gone.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.integration.conftest import RunningOperator
from tests.integration.helpers import apply, kafka_topic, run_stack, unique, wait_ready

KOPF_DEFAULT_RETRY_SECONDS = 1 + 1 + 2 + 3 + 5 + 8 + 13 + 21
OUTAGE_SECONDS = KOPF_DEFAULT_RETRY_SECONDS + 6


@pytest.fixture
def api_server_started_afterwards() -> Iterator[None]:
    """Whatever happens in the test, the API server is running again when it ends."""
    yield
    run_stack("start", "kube-apiserver")


def test_an_api_server_outage_longer_than_kopfs_retries_is_waited_out_and_logged_once(
    operator: RunningOperator, namespace: str, api_server_started_afterwards: None
) -> None:
    operator.wait_probe("/readyz", 200)
    log_before = len(operator.log())

    run_stack("stop", "kube-apiserver")
    stopped = time.monotonic()
    body = operator.wait_probe("/readyz", 503)
    assert body["failing"] == ["kubernetes-api"]
    assert body["checks"]["kubernetes-api"].startswith("failing for ")
    assert operator.probe("/healthz")[0] == 200  # restarting the operator would not bring the API server back
    while time.monotonic() < stopped + OUTAGE_SECONDS:
        assert operator.process.poll() is None, "the operator exited during the outage"
        # `hack/stack up` (make test, make integration) starts a stopped server, lock or no lock.
        assert operator.probe("/readyz")[0] == 503, "the API server came back early: did someone run hack/stack up?"
        time.sleep(2)

    run_stack("start", "kube-apiserver")  # returns once the API server is ready
    name = unique("after-outage")
    apply(namespace, kafka_topic(name))
    wait_ready(namespace, name)  # seen by the same watch, without a restart
    operator.wait_probe("/readyz", 200)

    log = operator.log()[log_before:]
    assert log.count("Kubernetes API server unreachable: ") == 1
    assert log.count("Kubernetes API server answers again after ") == 1
    assert "Request attempt" not in log  # not a line per kopf retry
    # Nor one per resync. Only a refusal may show: a starting API server answers 403 until its RBAC is loaded.
    relists = [line for line in log.splitlines() if "to check for deleted objects" in line and " DEBUG " not in line]
    assert all("answered 403" in line for line in relists), relists
