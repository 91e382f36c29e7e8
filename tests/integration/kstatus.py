"""Runs kstatus, the status rules Flux and kpt apply to any object, on objects.

The checker is hack/kstatus: the real `status.Compute` of sigs.k8s.io/cli-utils
(CLI_UTILS_VERSION in hack/versions.env), built by hack/lib/build-kstatus.sh
into the stack's cache folder. Only the Go toolchain and the module proxy are
needed, not the stack's servers.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO / "hack" / "lib" / "build-kstatus.sh"


def _cli_utils_version() -> str:
    for line in (REPO / "hack" / "versions.env").read_text().splitlines():
        key, _, value = line.strip().partition("=")
        if key == "CLI_UTILS_VERSION":
            return value
    raise AssertionError("hack/versions.env has no CLI_UTILS_VERSION")


def _cache_dir() -> Path:
    """The same folder hack/stack.py caches its binaries in."""
    if os.environ.get("INFOMETIS_CACHE_DIR"):
        return Path(os.environ["INFOMETIS_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "infometis"


@functools.cache
def checker() -> Path:
    """The checker binary, built or rebuilt if this checkout's sources differ from the cached one.

    The script returns in milliseconds when the cached binary is current; a cold
    build (modules from the proxy, then compiling) takes one to two minutes.
    """
    out = _cache_dir() / f"kstatus-v{_cli_utils_version()}"
    build = subprocess.run([str(BUILD_SCRIPT), str(out)], capture_output=True, text=True, timeout=900)
    if build.returncode != 0:
        raise AssertionError(f"{BUILD_SCRIPT.name} failed ({build.returncode}):\n{build.stderr}")
    return out / "kstatus"


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
