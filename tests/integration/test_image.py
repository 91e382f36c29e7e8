"""The operator's image (`make image`): what it holds, how it runs, and how it stops.

Built with buildah on the debootstrap base (hack/image), in the background from
the session's start (conftest's image_build), run with podman on the host's
network so it reaches the stack on loopback, as the notes on this machine found
it must be.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator

import pytest

from tests.integration.conftest import RunningOperator
from tests.integration.helpers import REPO, apply, kafka_topic, wait_ready

PODMAN = REPO / "hack" / "image" / "podman"
# The base alone is about 125 MB (Debian minbase and Python); the Kubernetes client is the largest package.
MAX_IMAGE_MB = 400
STOP_SECONDS = 5


def podman(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(PODMAN), *args], capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} failed ({result.returncode}): {result.stderr}")
    return result


def test_the_image_runs_as_non_root_and_holds_no_build_tools_wheels_or_caches(built_image: str) -> None:
    inspected = json.loads(podman("image", "inspect", built_image).stdout)[0]
    assert inspected["Config"]["User"] == "65532:65532"
    assert inspected["Size"] / 1e6 < MAX_IMAGE_MB, f"{inspected['Size'] / 1e6:.0f} MB"
    probe = (
        "for tool in gcc cc make pip pip3 /opt/infometis/bin/pip; do command -v $tool && echo found $tool; done; "
        "find /tmp /root/.cache /var/lib/apt/lists -mindepth 1 2>/dev/null; id -u"
    )
    shown = podman("run", "--rm", "--network", "host", "--entrypoint", "/bin/sh", built_image, "-c", probe).stdout
    assert shown.split() == ["65532"], shown


@pytest.fixture
def container_name() -> Iterator[str]:
    name = f"infometis-it-{uuid.uuid4().hex[:8]}"
    yield name
    podman("rm", "--force", "--ignore", name, check=False)


def test_the_operator_in_the_image_reconciles_read_only_and_stops_within_seconds_on_sigterm(
    built_image: str,
    operator: RunningOperator,
    session_operator_paused: None,
    namespace: str,
    container_name: str,
) -> None:
    podman(
        "run", "--detach", "--name", container_name,
        "--network", "host",
        "--read-only", "--tmpfs", "/tmp",
        "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
        "--volume", f"{operator.kubeconfig}:/etc/infometis/kubeconfig:ro",
        "--env", "KUBECONFIG=/etc/infometis/kubeconfig",
        "--env", f"KAFKA_BOOTSTRAP_SERVERS={os.environ['KAFKA_BOOTSTRAP_SERVERS']}",
        built_image,
        "--controllers", "kafka", "--namespace", namespace,
        "--metrics-port", "0", "--health-port", "0",
    )  # fmt: skip
    name = f"image-{uuid.uuid4().hex[:8]}"
    apply(namespace, kafka_topic(name))
    wait_ready(namespace, name, timeout=60)

    started = time.monotonic()
    podman("stop", "--time", "30", container_name)
    stopped_after = time.monotonic() - started
    state = json.loads(podman("inspect", container_name).stdout)[0]["State"]
    log = podman("logs", container_name).stdout + podman("logs", container_name).stderr
    assert stopped_after < STOP_SECONDS, f"SIGTERM took {stopped_after:.1f}s:\n{log}"
    assert state["ExitCode"] == 0, log
    assert "Traceback" not in log, log
