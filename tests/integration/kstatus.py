"""Runs kstatus, the status rules Flux and kpt apply to any object, on objects.

The checker is hack/kstatus: the real `status.Compute` of sigs.k8s.io/cli-utils
(CLI_UTILS_VERSION in hack/versions.env), built by hack/lib/build-kstatus.sh
into the stack's cache folder. Only the Go toolchain and the module proxy are
needed, not the stack's servers.
"""

from __future__ import annotations

import functools
import json
import subprocess
from pathlib import Path
from typing import Any

from tests.cached_tools import built, version


@functools.cache
def checker() -> Path:
    """The checker binary, built or rebuilt if this checkout's sources differ from the cached one.

    The script returns in milliseconds when the cached binary is current; a cold
    build (modules from the proxy, then compiling) takes one to two minutes.
    """
    return built("build-kstatus.sh", f"kstatus-v{version('CLI_UTILS_VERSION')}") / "kstatus"


def kstatus_of(objects: list[dict[str, Any]]) -> list[dict[str, str]]:
    """For each object, in order: its name, namespace, kstatus status and message, as kstatus computes them.

    `status` is one of Current, InProgress, Failed, Terminating or Unknown; an
    object kstatus cannot read (a malformed field) is Unknown, with the error
    also under `error`, as cli-utils' own status readers report it.
    """
    result = subprocess.run([str(checker())], input=json.dumps(objects), capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise AssertionError(f"the kstatus checker failed ({result.returncode}): {result.stderr}")
    statuses: list[dict[str, str]] = json.loads(result.stdout)
    return statuses
