"""What the operator observes of an Elasticsearch or OpenSearch cluster, as plain values (no client types)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ObservedIndex:
    name: str  # the concrete index
    uuid: str
    settings: Mapping[str, Any]  # flat, 'index.'-prefixed, as the server stores them
    mappings: Mapping[str, Any]
    aliases: Mapping[str, Mapping[str, Any]]  # alias -> its definition as the server shows it
    health: str | None = None  # green, yellow or red; None when not asked
    documents: int | None = None  # asked only when a step needs it (deletion, migration)

    @property
    def system(self) -> bool:
        """Hidden and system indices are the server's own (or a platform's): never managed."""
        return self.name.startswith(".") or self.settings.get("index.hidden") == "true"


@dataclass(frozen=True)
class ClusterFacts:
    uuid: str
    distribution: str  # elasticsearch or opensearch
    version: str


@dataclass(frozen=True)
class Observation:
    name: str  # the name the object manages: an index, or an alias once migrated
    cluster: ClusterFacts
    # The concrete indices the name resolves to: the index itself, or an alias's indices.
    indices: tuple[ObservedIndex, ...] = field(default_factory=tuple)
    name_is_alias: bool = False

    @property
    def index(self) -> ObservedIndex | None:
        """The concrete index behind the name: itself, or the alias's write index (its only index)."""
        if not self.name_is_alias:
            return self.indices[0] if self.indices else None
        writers = [i for i in self.indices if self.is_write_index(i)]
        return writers[0] if len(writers) == 1 else None

    def is_write_index(self, index: ObservedIndex) -> bool:
        alias = index.aliases.get(self.name) or {}
        written = alias.get("is_write_index")
        return written is True or (written is None and len(self.indices) == 1)

    @property
    def instance(self) -> str:
        return self.cluster.uuid

    @property
    def resource_id(self) -> str | None:
        index = self.index
        return index.uuid if index else None
