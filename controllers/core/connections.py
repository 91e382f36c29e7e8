"""Service connections: the operator's default, or a Secret named by spec.clusterRef.

The core knows no service: each kind's edge module describes its service's
connections in a ConnectionSchema, the keys a Secret may hold, each for a
reason. A Secret is written by a tenant, and client libraries have settings
that make them call URLs, read local files or print their traffic, so a
Secret naming any other key is refused (by key, never by value).

Credentials are never put into a message. Connection.redact is the second
line, for client error text passed on: it hides whole occurrences of them.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from controllers.core.kube import KubeApi

REDACTED = "***"
# A credential shorter than this is not substituted: as a word ("a", "to",
# "SSL") it would garble messages while hiding next to nothing.
MIN_REDACTED_LENGTH = 4


class ClusterRefInvalid(Exception):
    """The named connection cannot be used as it is; a user must fix it."""


class ConnectionSecretMissing(ClusterRefInvalid):
    """The clusterRef Secret does not exist (not yet, or deleted: as when its namespace is)."""


@dataclass(frozen=True)
class ConnectionSchema:
    """What a connection Secret for one service may hold."""

    service: str  # as messages name it: "Kafka"
    keys: Mapping[str, str]  # every key a Secret may hold -> why a connection needs it
    secret: frozenset[str]  # those whose values are credentials
    required: tuple[str, ...]
    # The operator's default connection for objects without spec.clusterRef: one flag
    # and environment variable give the value of one key (e.g. --kafka-bootstrap-servers,
    # KAFKA_BOOTSTRAP_SERVERS -> bootstrap.servers).
    default_flag: str
    default_env: str
    default_key: str
    # Keys a user may expect to work -> why they are refused, and what to use instead.
    refused: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Connection:
    name: str  # "default" or "secret <namespace>/<name>": safe to show
    properties: Mapping[str, str] = field(repr=False)
    secret_keys: frozenset[str]

    @property
    def identity(self) -> tuple[tuple[str, str], ...]:
        """Equal for equal settings, so one client serves every object that shares them."""
        return tuple(sorted(self.properties.items()))

    def redact(self, text: str) -> str:
        """`text` with each whole occurrence of a credential (not one inside a longer word) replaced."""
        credentials = (self.properties.get(key, "") for key in self.secret_keys)
        for value in sorted(credentials, key=len, reverse=True):  # a longer one may contain a shorter
            if len(value) >= MIN_REDACTED_LENGTH:
                text = _whole_occurrences(value).sub(REDACTED, text)
        return text


def _whole_occurrences(value: str) -> re.Pattern[str]:
    before = r"(?<!\w)" if re.match(r"\w", value[0]) else ""
    after = r"(?!\w)" if re.match(r"\w", value[-1]) else ""
    return re.compile(before + re.escape(value) + after)


def connection_from_secret(where: str, data: Mapping[str, str], schema: ConnectionSchema) -> Connection:
    """The connection a Secret's data describes, or ClusterRefInvalid naming the keys at fault."""
    refused = sorted(set(data) - set(schema.keys))
    if refused:
        reasons = "".join(f"; {key} {schema.refused[key]}" for key in refused if key in schema.refused)
        raise ClusterRefInvalid(
            f"{where} holds key(s) the operator does not accept in {schema.service} connections: "
            f"{', '.join(refused)}{reasons}. Allowed: {', '.join(schema.keys)}"
        )
    missing = [key for key in schema.required if not data.get(key)]
    if missing:
        raise ClusterRefInvalid(f"{where} lacks the key(s) {', '.join(missing)}")
    return Connection(where, dict(data), schema.secret)


class Connections:
    """Resolves clusterRef Secrets, caching each for `ttl` seconds.

    The cache keeps one GET per Secret per resync period instead of one per
    object; a rotated credential is picked up within `ttl`.
    """

    def __init__(self, kube: KubeApi, *, ttl: float) -> None:
        self._kube = kube
        self._ttl = ttl
        self._cache: dict[tuple[str, str], tuple[float, dict[str, str] | None]] = {}
        # The default connection, made once per settings mapping: every object without clusterRef asks for it.
        self._defaults: dict[tuple[int, str], tuple[Mapping[str, str], Connection]] = {}

    async def resolve(
        self,
        namespace: str,
        cluster_ref: str | None,
        *,
        default: Mapping[str, str] | None,
        schema: ConnectionSchema,
        fresh: bool = False,
    ) -> Connection:
        """The connection; `fresh` reads the Secret now, as a deletion must: a Secret deleted
        a moment ago (its namespace going) must not still lend its credentials."""
        if cluster_ref is None:
            if default is None:
                raise ClusterRefInvalid("no spec.clusterRef and the operator has no default connection configured")
            made = self._defaults.get((id(default), schema.service))
            if made is None or made[0] is not default:
                # The operator's own settings, not a tenant's: not held to the schema's keys.
                made = (default, Connection("default", dict(default), schema.secret))
                self._defaults[(id(default), schema.service)] = made
            return made[1]
        data = await self._read(namespace, cluster_ref, fresh=fresh)
        where = f"secret {namespace}/{cluster_ref}"
        if data is None:
            raise ConnectionSecretMissing(f"spec.clusterRef names {where}, which does not exist")
        return connection_from_secret(where, data, schema)

    async def _read(self, namespace: str, name: str, *, fresh: bool) -> dict[str, str] | None:
        now = time.monotonic()
        cached = self._cache.get((namespace, name))
        if cached and now - cached[0] < self._ttl and not fresh:
            return cached[1]
        data = await self._kube.read_secret(namespace, name)
        self._cache[(namespace, name)] = (now, data)
        return data
