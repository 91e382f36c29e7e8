"""Service connections: the operator's default, or a Secret named by spec.clusterRef.

A Secret holds the service's client properties as its keys (for Kafka:
bootstrap.servers, security.protocol, sasl.*, ssl.* as librdkafka names them).
Values are never logged or shown: every message that could carry one passes
through Connection.redact first.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from controllers.core.kube import KubeApi

# Keys whose values are addresses or switches, not credentials; everything
# else in a connection Secret is treated as secret.
PUBLIC_KEYS = frozenset(
    {"bootstrap.servers", "security.protocol", "sasl.mechanism", "sasl.mechanisms", "client.id", "url"}
)
REDACTED = "***"


class ClusterRefInvalid(Exception):
    """The named connection cannot be used as it is; a user must fix it."""


class ConnectionSecretMissing(ClusterRefInvalid):
    """The clusterRef Secret does not exist (not yet, or deleted: as when its namespace is)."""


@dataclass(frozen=True)
class Connection:
    name: str  # "default" or "secret <namespace>/<name>": safe to show
    properties: Mapping[str, str] = field(repr=False)

    @property
    def identity(self) -> tuple[tuple[str, str], ...]:
        """Equal for equal settings, so one client serves every object that shares them."""
        return tuple(sorted(self.properties.items()))

    def redact(self, text: str) -> str:
        for key, value in self.properties.items():
            if key not in PUBLIC_KEYS and value:
                text = text.replace(value, REDACTED)
        return text


class Connections:
    """Resolves clusterRef Secrets, caching each for `ttl` seconds.

    The cache keeps one GET per Secret per resync period instead of one per
    object; a rotated credential is picked up within `ttl`.
    """

    def __init__(self, kube: KubeApi, *, ttl: float) -> None:
        self._kube = kube
        self._ttl = ttl
        self._cache: dict[tuple[str, str], tuple[float, dict[str, str] | None]] = {}

    async def resolve(
        self,
        namespace: str,
        cluster_ref: str | None,
        *,
        default: Mapping[str, str] | None,
        required_keys: tuple[str, ...],
        fresh: bool = False,
    ) -> Connection:
        """The connection; `fresh` reads the Secret now, as a deletion must: a Secret deleted
        a moment ago (its namespace going) must not still lend its credentials."""
        if cluster_ref is None:
            if default is None:
                raise ClusterRefInvalid("no spec.clusterRef and the operator has no default connection configured")
            return Connection("default", dict(default))
        data = await self._read(namespace, cluster_ref, fresh=fresh)
        where = f"secret {namespace}/{cluster_ref}"
        if data is None:
            raise ConnectionSecretMissing(f"spec.clusterRef names {where}, which does not exist")
        missing = [key for key in required_keys if not data.get(key)]
        if missing:
            raise ClusterRefInvalid(f"{where} lacks the key(s) {', '.join(missing)}")
        return Connection(where, data)

    async def _read(self, namespace: str, name: str, *, fresh: bool) -> dict[str, str] | None:
        now = time.monotonic()
        cached = self._cache.get((namespace, name))
        if cached and now - cached[0] < self._ttl and not fresh:
            return cached[1]
        data = await self._kube.read_secret(namespace, name)
        self._cache[(namespace, name)] = (now, data)
        return data
