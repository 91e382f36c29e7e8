"""Values a spec takes from a ConfigMap or Secret key in its own namespace (a flow definition, a password).

Read afresh at every reconcile, so a changed value is applied within one
resync; the object's resourceVersion comes along, so a kind can tell a change
it cannot see on the service (a sensitive value NiFi never shows).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from controllers.core.kube import KubeApi


class ReferenceInvalid(Exception):
    """A referenced object or key does not exist: the user must act, retrying changes nothing."""


@dataclass(frozen=True)
class ReferencedValue:
    value: str
    version: str  # the object's resourceVersion


class References:
    def __init__(self, kube: KubeApi) -> None:
        self._kube = kube

    async def config_map_key(self, namespace: str, name: str, key: str) -> ReferencedValue:
        return await self._key("configmaps", "ConfigMap", namespace, name, key)

    async def secret_key(self, namespace: str, name: str, key: str) -> ReferencedValue:
        return await self._key("secrets", "Secret", namespace, name, key)

    async def _key(
        self, plural: Literal["secrets", "configmaps"], kind: str, namespace: str, name: str, key: str
    ) -> ReferencedValue:
        found = await self._kube.read_data(plural, namespace, name)
        if found is None:
            raise ReferenceInvalid(f"{kind} {namespace}/{name} does not exist")
        data, version = found
        if key not in data:
            keys = ", ".join(sorted(data)) or "none"
            raise ReferenceInvalid(f"{kind} {namespace}/{name} has no key {key!r} (its keys: {keys})")
        return ReferencedValue(data[key], version)
