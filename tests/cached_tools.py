"""Tools the tests build from the Go module proxy into the stack's cache folder.

Each has a build script in hack/lib that returns in milliseconds when the cached
binary matches this checkout (its version in hack/versions.env, the script itself),
so tests may run it every time; only the first build takes minutes.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def version(key: str) -> str:
    """A value of hack/versions.env."""
    for line in (REPO / "hack" / "versions.env").read_text().splitlines():
        name, _, value = line.strip().partition("=")
        if name == key:
            return value
    raise AssertionError(f"hack/versions.env has no {key}")


def cache_dir() -> Path:
    """The same folder hack/stack.py caches its binaries in."""
    if os.environ.get("INFOMETIS_CACHE_DIR"):
        return Path(os.environ["INFOMETIS_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "infometis"


def built(script: str, folder: str) -> Path:
    """Run hack/lib/SCRIPT for the cache's FOLDER (building there if the binary is missing or stale); the folder."""
    out = cache_dir() / folder
    script_path = REPO / "hack" / "lib" / script
    build = subprocess.run([str(script_path), str(out)], capture_output=True, text=True, timeout=1800)
    if build.returncode != 0:
        raise AssertionError(f"{script} failed ({build.returncode}):\n{build.stderr}")
    return out
