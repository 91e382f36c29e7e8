"""Runs the shipped Argo CD health script (config/argocd) on an object, in real Lua."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lupa import LuaRuntime

SCRIPT = (Path(__file__).resolve().parents[1] / "config" / "argocd" / "health.lua").read_text()


def argocd_health(obj: dict[str, Any]) -> tuple[str, str]:
    """(status, message) as Argo CD would compute them."""
    lua = LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = lua.table_from(obj, recursive=True)
    result = lua.execute(SCRIPT)
    return str(result["status"]), str(result["message"])
