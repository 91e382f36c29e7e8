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
class CopyTask:
    """A server-side _reindex task as the tasks API shows it (a finished one from the stored result)."""

    id: str
    catch_up: bool  # the final pass (writes to the source blocked), not the first
    completed: bool
    total: int = 0  # documents the task found to copy (so far)
    copied: int = 0  # created + updated so far
    running_seconds: float = 0.0  # how long it has run (while it runs)
    # Why it failed: the task's error, or its first document or search failures; () when it did not.
    failures: tuple[str, ...] = ()


@dataclass(frozen=True)
class MigrationFacts:
    """The server's state a migration step is decided from; each part is asked only when a step needs it."""

    reindex_supported: bool | None = None  # the server has the _reindex API (asked before starting)
    versions: tuple[int, ...] = ()  # N of the '<name>-v<N>' indices present (choosing the target)
    checkpoint: int | None = None  # the source's smallest global checkpoint over its primaries
    source: ObservedIndex | None = None  # the migration's source index, if it exists
    target: ObservedIndex | None = None  # the migration's target index, if it exists
    task: CopyTask | None = None  # the copy task the operator started or adopted, if the server knows it
    orphans: tuple[CopyTask, ...] = ()  # copy tasks from the source to the target running that are not `task`
    documents: tuple[int, int] | None = None  # (source, target) counts after refreshing, when verifying
    # A migration this pass stopped (reason, message): the stall to report once the source is unblocked.
    stopped: tuple[str, str] | None = None

    @property
    def source_blocked(self) -> bool:
        return self.source is not None and self.source.settings.get("index.blocks.write") == "true"


@dataclass(frozen=True)
class Observation:
    name: str  # the name the object manages: an index, or an alias once migrated
    cluster: ClusterFacts
    # The concrete indices the name resolves to: the index itself, or an alias's indices.
    indices: tuple[ObservedIndex, ...] = field(default_factory=tuple)
    name_is_alias: bool = False
    # What a migration due or under way needs to know besides the name's indices; None when none is.
    migration: MigrationFacts | None = None

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
