"""Runs the shipped Argo CD health scripts (config/argocd/health) on objects, in Argo CD's own Lua.

The runner is hack/argocd: gopher-lua at the version Argo CD ARGOCD_VERSION
(hack/versions.env) ships, loaded, fed and read back as Argo CD's controller
does (hack/argocd/main.go). hack/lib/build-argocd-health.sh builds it into the
same cache folder as the stack's binaries; only the Go toolchain and the module
proxy are needed, no server.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BUILD_SCRIPT = REPO / "hack" / "lib" / "build-argocd-health.sh"
SCRIPTS = REPO / "config" / "argocd" / "health"


def _argocd_version() -> str:
    for line in (REPO / "hack" / "versions.env").read_text().splitlines():
        key, _, value = line.strip().partition("=")
        if key == "ARGOCD_VERSION":
            return value
    raise AssertionError("hack/versions.env has no ARGOCD_VERSION")


def _cache_dir() -> Path:
    """The folder hack/stack.py caches its binaries in."""
    if os.environ.get("INFOMETIS_CACHE_DIR"):
        return Path(os.environ["INFOMETIS_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "infometis"


@functools.cache
def runner() -> Path:
    """The runner binary, built or rebuilt if this checkout's sources differ from the cached one.

    Milliseconds when the cached binary is current; a cold build takes ten to thirty seconds.
    """
    out = _cache_dir() / f"argocd-health-v{_argocd_version()}"
    build = subprocess.run([str(BUILD_SCRIPT), str(out)], capture_output=True, text=True, timeout=900)
    if build.returncode != 0:
        raise AssertionError(f"{BUILD_SCRIPT.name} failed ({build.returncode}):\n{build.stderr}")
    return out / "argocd-health"


def run_script(script: Path, objects: list[dict[str, Any]]) -> list[dict[str, str]]:
    """What Argo CD makes of each object with this health script: status and message, or error."""
    result = subprocess.run(
        [str(runner()), str(script)], input=json.dumps(objects), capture_output=True, text=True, timeout=60
    )
    if result.returncode != 0:
        raise AssertionError(f"the Argo CD health runner failed ({result.returncode}): {result.stderr}")
    answers: list[dict[str, str]] = json.loads(result.stdout)
    return answers


def argocd_health(obj: dict[str, Any]) -> tuple[str, str]:
    """(status, message) Argo CD shows for an object of one of our kinds, with the shipped script."""
    (answer,) = run_script(SCRIPTS / f"{obj['kind']}.lua", [obj])
    if answer.get("error"):
        raise AssertionError(f"Argo CD could not compute the health of {obj['kind']}: {answer['error']}")
    return answer["status"], answer["message"]
