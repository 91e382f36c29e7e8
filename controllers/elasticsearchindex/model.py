"""The ElasticsearchIndex custom resource: spec and status models, and the CRD's
names, printer columns and CEL rules. crds/ is generated from this file.

Settings, mappings and aliases are written as in the create-index API of
Elasticsearch and OpenSearch, so a team copies what it already has.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from controllers.core.crd import CrdInfo, PrinterColumn
from controllers.core.model import CamelModel, CommonSpec, CommonStatus
from controllers.core.objects import ResourceInfo
from controllers.core.policy import KindPolicy
from controllers.elasticsearchindex.normalise import flat_settings

RESOURCE = ResourceInfo(
    group="infometis.io", version="v1alpha1", plural="elasticsearchindices", kind="ElasticsearchIndex"
)
FINALIZER = "infometis.io/elasticsearchindex-deletion"
MAX_INDEX_NAME_BYTES = 255  # the servers' limit
# The servers' index name rules, plus no leading '.': dot-prefixed names are the
# servers' system and hidden indices (.security, .kibana, .tasks), never a tenant's.
# The servers refuse any name that lowercasing changes: the schema's pattern (RE2, as the API
# server and pydantic run it) names the Unicode upper- and titlecase letters.
INDEX_NAME_PATTERN = r'^[^-_+.\\/*?"<>| ,#:\p{Lu}\p{Lt}][^\\/*?"<>| ,#:\p{Lu}\p{Lt}]*$'
_FORBIDDEN_CHARACTERS = frozenset('\\/*?"<>| ,#:')
# The concrete indices behind a migrated name are '<name>-v<generation of the index>'.
VERSION_SEPARATOR = "-v"
HEALTHY = "Healthy"


# Settings and mappings are free-form, but the parts the admission rules compare are typed so
# CEL can read them: number_of_shards in each of its spellings, and each top-level field's type.
_SHARDS = {"x-kubernetes-int-or-string": True, "description": "Primary shards; fixed when the index is created."}
SETTINGS_SCHEMA: dict[str, Any] = {
    "x-kubernetes-preserve-unknown-fields": True,
    "properties": {
        "number_of_shards": _SHARDS,
        "index.number_of_shards": _SHARDS,
        "index": {
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": True,
            "properties": {"number_of_shards": _SHARDS},
        },
    },
}
MAX_TOP_LEVEL_FIELDS = 10_000  # bounds the admission rules' cost (10x the servers' default total_fields.limit)
MAPPINGS_SCHEMA: dict[str, Any] = {
    "x-kubernetes-preserve-unknown-fields": True,
    "properties": {
        "properties": {
            "type": "object",
            "maxProperties": MAX_TOP_LEVEL_FIELDS,
            "description": "The fields, by name.",
            "additionalProperties": {
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": True,
                "properties": {"type": {"type": "string", "maxLength": 64, "description": "The field's type."}},
            },
        },
    },
}


class IndexDeletionPolicy(StrEnum):
    RETAIN = "Retain"
    DELETE = "Delete"
    DELETE_IF_EMPTY = "DeleteIfEmpty"


class MigrationStrategy(StrEnum):
    REINDEX = "Reindex"


class MigrationSpec(CamelModel):
    strategy: MigrationStrategy = Field(
        description=(
            "Reindex: create the next concrete index with the new settings and mappings, copy the documents "
            "with the server's _reindex, verify the counts and move the name (an alias) over atomically."
        )
    )
    delete_old_index: bool = Field(
        default=False,
        description="Delete the previous concrete index once the name points at the new one (default: keep it).",
    )


class AliasSpec(BaseModel):
    """An alias as in the create-index API (snake_case, as the servers write it)."""

    model_config = ConfigDict(extra="forbid")
    filter: dict[str, Any] | None = Field(
        default=None,
        description="A query limiting what the alias shows.",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )
    routing: str | None = Field(default=None, description="Routing for both indexing and search.")
    index_routing: str | None = Field(default=None, description="Routing for indexing only.")
    search_routing: str | None = Field(default=None, description="Routing for search only.")
    is_write_index: bool | None = Field(default=None, description="Writes through the alias go to this index.")
    is_hidden: bool | None = Field(default=None, description="Hidden from wildcard expressions.")


class ElasticsearchIndexSpec(CommonSpec):
    index_name: str | None = Field(
        default=None,
        min_length=1,
        pattern=INDEX_NAME_PATTERN,
        description=(
            "The index's name; metadata.name when absent. Immutable. Lowercase, none of \\ / * ? \" < > | , # : "
            "or space, not starting with - _ + or '.', at most 255 bytes."
        ),
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": f"size(bytes(self)) <= {MAX_INDEX_NAME_BYTES}",
                    "message": f"index names are at most {MAX_INDEX_NAME_BYTES} bytes",
                },
            ]
        },
    )
    settings: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "Index settings, nested or flat, with or without the 'index.' prefix, numbers or strings "
            "(number_of_shards: 3, index.refresh_interval: 1s). The operator owns the keys listed: one "
            "removed later is reset to the server's default."
        ),
        json_schema_extra=SETTINGS_SCHEMA,
    )
    mappings: dict[str, Any] = Field(
        default_factory=dict,
        description="Mappings as in the create-index API (properties, dynamic, _meta, ...).",
        json_schema_extra=MAPPINGS_SCHEMA,
    )
    aliases: dict[str, AliasSpec] = Field(
        default_factory=dict,
        max_length=100,
        description="Aliases of this index, as in the create-index API; the operator owns the ones listed.",
    )
    deletion_policy: IndexDeletionPolicy = Field(  # type: ignore[assignment]
        default=IndexDeletionPolicy.RETAIN,
        description=(
            "What deleting this object does to the index. Retain (default) leaves it; Delete removes it; "
            "DeleteIfEmpty removes it only when it holds no documents (writes are blocked while it is counted)."
        ),
    )
    migration: MigrationSpec | None = Field(
        default=None,
        description=(
            "How to apply changes the server cannot make in place (number_of_shards, a field's type, a removed "
            "field). Absent: such a change stalls with reason RequiresMigration and nothing is touched."
        ),
    )

    @field_validator("settings")
    @classmethod
    def _settings_stored_as_written(cls, settings: dict[str, Any]) -> dict[str, Any]:
        flat_settings(settings)  # raises SettingsInvalid (a ValueError) for a key given twice
        return settings

    @field_validator("index_name")
    @classmethod
    def _a_valid_index_name(cls, index_name: str | None) -> str | None:
        if index_name is not None:
            refusal = index_name_refusal(index_name)
            if refusal:
                raise ValueError(refusal)
        return index_name


class ElasticsearchIndexPolicy(KindPolicy):
    """The tenancy policy's `elasticsearchindices` section (see controllers.core.policy)."""

    max_shards: int | None = Field(default=None, ge=1, description="The most primary shards one index may ask for.")
    max_replicas: int | None = Field(default=None, ge=0, description="The most replicas one index may ask for.")

    def refusal(self, namespace: str, resource_name: str, spec: CommonSpec) -> str | None:
        why = super().refusal(namespace, resource_name, spec)
        if why is not None or not isinstance(spec, ElasticsearchIndexSpec):
            return why
        flat = flat_settings(spec.settings)
        for key, limit, what in (
            ("index.number_of_shards", self.max_shards, "shards"),
            ("index.number_of_replicas", self.max_replicas, "replicas"),
        ):
            value = flat.get(key)
            if limit is not None and value is not None and (not str(value).isdigit() or int(value) > limit):
                return f"{value} {what} is above the tenancy policy's limit of {limit}"
        return None


class MigrationStatus(CamelModel):
    source_index: str = Field(description="The concrete index the documents are copied from.")
    target_index: str = Field(description="The concrete index being filled.")
    step: str = Field(
        description=(
            "Creating (target chosen, not yet filled), Copying (first pass, writes go on), CatchingUp (writes to "
            "the source blocked, documents changed since the first pass began copied again), DeletingOldIndex, "
            "or Failed (stopped; the source takes writes again)."
        )
    )
    task: str | None = Field(default=None, description="The server's id of the running _reindex task.")
    source_documents: int | None = Field(default=None, description="Documents in the source when writes stopped.")
    checkpoint: int | None = Field(
        default=None,
        description=(
            "The source's global checkpoint (smallest over its primaries) before the first copy began: the final "
            "pass copies the documents whose sequence number is above it."
        ),
    )


class ElasticsearchIndexStatus(CommonStatus):
    index_name: str | None = Field(default=None, description="The name users read and write (index or alias).")
    concrete_index: str | None = Field(default=None, description="The concrete index behind the name.")
    index_uuid: str | None = Field(default=None, description="The server's uuid of the concrete index.")
    shards: int | None = Field(default=None, description="Primary shards observed.")
    replicas: int | None = Field(default=None, description="Replicas per shard observed.")
    managed_settings: list[str] = Field(
        default_factory=list,
        description="Settings set from spec.settings (flat, index.-prefixed); one removed from the spec is reset.",
    )
    managed_fields: list[str] = Field(
        default_factory=list,
        description="Mapping fields declared by the spec when last applied; one removed needs a migration.",
    )
    managed_aliases: list[str] = Field(
        default_factory=list, description="Aliases set from spec.aliases; one removed from the spec is removed."
    )
    migration: MigrationStatus | None = Field(default=None, description="Present while a migration runs.")


def index_name_of(body: Mapping[str, Any]) -> str:
    """spec.indexName, else metadata.name (read from the raw object, so it works for any peer)."""
    return str((body.get("spec") or {}).get("indexName") or body["metadata"]["name"])


def is_versioned_index(name: str, concrete: str) -> bool:
    """Whether `concrete` is one of the versioned indices the operator keeps behind the name `name`."""
    prefix = name + VERSION_SEPARATOR
    return concrete.startswith(prefix) and concrete[len(prefix) :].isdigit()


def index_name_refusal(name: str) -> str | None:
    """Why the servers (or the operator) would refuse this index name; None when valid."""
    if not name:
        return "an index name cannot be empty"
    if name in (".", ".."):
        return "'.' and '..' are not index names"
    if len(name.encode()) > MAX_INDEX_NAME_BYTES:
        return f"index names are at most {MAX_INDEX_NAME_BYTES} bytes"
    if name.lower() != name or name[0] in "-_+." or _FORBIDDEN_CHARACTERS & set(name):
        return (
            f'{name!r} is not an index name: lowercase, none of \\ / * ? " < > | , # : or space, not starting '
            "with - _ + or '.'"
        )
    return None


# metadata.name is the index name when spec.indexName is absent: Kubernetes names are
# lowercase already; the rules that remain are checked here.
_NAME_RULES = (
    {
        "rule": (
            "(has(self.spec.indexName) ? self.spec.indexName : self.metadata.name) == "
            "(has(oldSelf.spec.indexName) ? oldSelf.spec.indexName : oldSelf.metadata.name)"
        ),
        "message": "the index name (spec.indexName, or metadata.name when absent) is immutable",
    },
    {
        "rule": f"has(self.spec.indexName) || size(self.metadata.name) <= {MAX_INDEX_NAME_BYTES}",
        "message": f"metadata.name is longer than {MAX_INDEX_NAME_BYTES} bytes, the limit for index names: "
        "set spec.indexName",
    },
    {
        "rule": "has(self.spec.indexName) || !self.metadata.name.startsWith('.')",
        "message": "names starting with '.' are the servers' system indices: set spec.indexName",
    },
)


def _shards_written(obj: str) -> str:
    """CEL: number_of_shards as the spec of `obj` writes it, as an int (a string converted); 0 when absent.

    Compared as ints: the API server prices a comparison of int-or-string values as one of
    strings as long as a request, and refuses the rule as too costly.
    """
    settings = f"{obj}.spec.settings"
    return (
        f"(!has({settings}) ? 0 : has({settings}.number_of_shards) ? int({settings}.number_of_shards) : "
        f"has({settings}.index__dot__number_of_shards) ? int({settings}.index__dot__number_of_shards) : "
        f"has({settings}.index) && has({settings}.index.number_of_shards) ? "
        f"int({settings}.index.number_of_shards) : 0)"
    )


def _fields(obj: str) -> str:
    return f"{obj}.spec.mappings.properties"


def _has_fields(obj: str) -> str:
    return f"(has({obj}.spec.mappings) && has({_fields(obj)}))"


def _field_type(obj: str, field: str) -> str:
    return f"(has({_fields(obj)}[{field}].type) ? {_fields(obj)}[{field}].type : 'object')"


_MIGRATION_HINT = (
    ": set spec.migration to move the index to a new one by reindexing, or keep what the index has "
    "(the operator names each difference when it cannot apply a spec)"
)
# While the object is Ready its current spec is what the index has: then removing or retyping a
# top-level field can only be done by a migration. Otherwise (not yet applied, stalled, server
# down) the change is left to the operator, which refuses it with RequiresMigration if it must,
# so a stalled change can always be reverted. Nested fields and other static settings are the
# operator's to refuse too: CEL cannot walk free-form mappings.
# The messages are fixed: the API server prices a message built from field names (strings of
# unbounded length) far above its budget.
_READY = (
    "has(self.status) && has(self.status.conditions) && "
    "self.status.conditions.exists(c, c.type == 'Ready' && c.status == 'True')"
)
_MIGRATION_RULES = (
    {
        # Compared with the shards the index has (status.shards), so writing the same number
        # another way, or going back to it, is always allowed.
        "rule": (
            f"has(self.spec.migration) || !has(self.status) || !has(self.status.shards) || "
            f"{_shards_written('self')} == 0 || {_shards_written('self')} == {_shards_written('oldSelf')} || "
            f"{_shards_written('self')} == self.status.shards"
        ),
        "message": f"settings.number_of_shards cannot change on an existing index (see status.shards){_MIGRATION_HINT}",
        "reason": "FieldValueForbidden",
    },
    {
        "rule": (
            f"has(self.spec.migration) || !({_READY}) || !{_has_fields('oldSelf')} || "
            f"{_fields('oldSelf')}.all(f, {_has_fields('self')} && f in {_fields('self')})"
        ),
        "message": f"mapping fields cannot be removed from an existing index{_MIGRATION_HINT}",
        "reason": "FieldValueForbidden",
    },
    {
        "rule": (
            f"has(self.spec.migration) || !({_READY}) || !{_has_fields('oldSelf')} || !{_has_fields('self')} || "
            f"{_fields('oldSelf')}.all(f, !(f in {_fields('self')}) || "
            f"{_field_type('oldSelf', 'f')} == {_field_type('self', 'f')})"
        ),
        "message": f"the type of a mapping field cannot change on an existing index{_MIGRATION_HINT}",
        "reason": "FieldValueForbidden",
    },
)

CRD = CrdInfo(
    resource=RESOURCE,
    singular="elasticsearchindex",
    short_names=("iesi",),
    categories=("infometis",),
    spec_model=ElasticsearchIndexSpec,
    status_model=ElasticsearchIndexStatus,
    description="An Elasticsearch or OpenSearch index kept in the state this object declares.",
    printer_columns=(
        PrinterColumn("Index", "string", ".status.indexName"),
        PrinterColumn("Shards", "integer", ".status.shards"),
        PrinterColumn("Replicas", "integer", ".status.replicas"),
        PrinterColumn("Health", "string", f'.status.conditions[?(@.type=="{HEALTHY}")].reason'),
        PrinterColumn("Ready", "string", '.status.conditions[?(@.type=="Ready")].status'),
        PrinterColumn("Reason", "string", '.status.conditions[?(@.type=="Ready")].reason'),
        PrinterColumn("Plan", "string", ".status.plan.digest", priority=1),
        PrinterColumn("Age", "date", ".metadata.creationTimestamp"),
    ),
    root_validations=_NAME_RULES + _MIGRATION_RULES,
)
