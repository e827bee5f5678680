"""Feature specifications: :class:`FeatureSpec` and its dependencies, :class:`FeatureDep`.

Example:
    >>> import metaxy_delta as mx
    >>> spec = mx.FeatureSpec(
    ...     key="video/processed",
    ...     id_columns=["video_id"],
    ...     deps=[mx.FeatureDep(feature="video/raw", rename={"path": "raw_path"})],
    ...     fields=["audio", mx.FieldSpec(key="frames", code_version="2")],
    ... )
    >>> [f.key.to_string() for f in spec.fields], spec.code_version
    (['audio', 'frames'], '09a8d774')
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from typing_extensions import Self

from metaxy_delta.models._hashing import truncate_hash
from metaxy_delta.models.fields import FieldSpec
from metaxy_delta.models.keys import FeatureKey, FieldKey, ValidatedFeatureKey
from metaxy_delta.models.lineage import LineageRelationship
from metaxy_delta.models.mapping import FieldsMapping

if TYPE_CHECKING:
    import narwhals as nw

IDColumns = Sequence[str]


class FeatureDep(BaseModel):
    """A feature-level dependency on an upstream feature.

    ``rename`` is applied first, then ``filters`` (SQL strings, post-rename names), then
    ``select`` (post-rename names; ID and lineage columns are added automatically).
    """

    model_config = ConfigDict(extra="forbid")

    feature: ValidatedFeatureKey
    select: tuple[str, ...] | None = None
    rename: dict[str, str] | None = None
    fields_mapping: FieldsMapping = Field(default_factory=FieldsMapping.default)
    sql_filters: tuple[str, ...] | None = Field(
        default=None,
        description="SQL-like filter strings applied to this dependency.",
        validation_alias=AliasChoices("filters", "sql_filters"),
        serialization_alias="filters",
    )
    lineage: LineageRelationship = Field(
        default_factory=LineageRelationship.identity,
        description="Lineage relationship between this upstream dependency and the downstream "
        "feature.",
    )
    optional: bool = Field(
        default=False,
        description="Whether individual samples of the downstream feature can be computed "
        "without the corresponding samples of the upstream feature. If upstream samples are "
        "missing, they are going to be represented as NULL values in the joined upstream "
        "metadata.",
    )

    @field_validator("sql_filters", mode="before")
    @classmethod
    def _filters_as_tuple(cls, value: Any) -> Any:
        if isinstance(value, str):
            return (value,)
        return value

    @model_validator(mode="after")
    def _select_uses_post_rename_names(self) -> Self:
        if self.select and self.rename:
            renamed_away = set(self.rename) - set(self.rename.values())
            bad = sorted(renamed_away & set(self.select))
            if bad:
                raise ValueError(
                    f"FeatureDep on {self.feature}: select contains pre-rename column name(s) "
                    f"{bad}; use the post-rename names (rename is applied first)"
                )
        return self

    @cached_property
    def filters(self) -> tuple[nw.Expr, ...]:
        """The SQL filter strings parsed into narwhals expressions."""
        from metaxy_delta.filters import parse_filter_string

        return tuple(parse_filter_string(s) for s in self.sql_filters or ())

    def table_name(self) -> str:
        """Table name of the upstream feature."""
        return self.feature.table_name


def _coerce_deps(value: Any) -> list[Any]:
    if value is None:
        return []
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    return [
        item if isinstance(item, (FeatureDep, dict)) else FeatureDep(feature=item)
        for item in items
    ]


def _coerce_fields(value: Any) -> Any:
    return [FieldSpec(key="default")] if value is None else value


class FeatureSpec(BaseModel):
    """Everything that defines a feature: key, ID columns, dependencies, fields, metadata."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: ValidatedFeatureKey
    id_columns: Annotated[tuple[str, ...], BeforeValidator(tuple)] = Field(
        ..., description="Columns that uniquely identify a sample in this feature."
    )
    deps: Annotated[list[FeatureDep], BeforeValidator(_coerce_deps)] = Field(
        default_factory=list
    )
    fields: Annotated[list[FieldSpec], BeforeValidator(_coerce_fields)] = Field(
        default_factory=lambda: [FieldSpec(key="default")]
    )
    metadata: dict[str, Any] = Field(
        default_factory=dict, description="Metadata attached to this feature."
    )
    description: str | None = Field(
        default=None, description="Human-readable description of this feature."
    )

    @model_validator(mode="after")
    def _validate(self) -> Self:
        if not self.id_columns:
            raise ValueError(f"FeatureSpec {self.key}: id_columns must not be empty")
        seen: set[FieldKey] = set()
        for field in self.fields:
            if field.key in seen:
                raise ValueError(
                    f"FeatureSpec {self.key}: duplicate field key {field.key.to_string()!r}; "
                    "all fields must have unique keys"
                )
            seen.add(field.key)
        dep_keys = [d.feature for d in self.deps]
        dupes = sorted({k.to_string() for k in dep_keys if dep_keys.count(k) > 1})
        if dupes:
            raise ValueError(f"FeatureSpec {self.key}: duplicate dependencies on {dupes}")
        return self

    @cached_property
    def deps_by_key(self) -> Mapping[FeatureKey, FeatureDep]:
        """Dependencies indexed by upstream key."""
        return {dep.feature: dep for dep in self.deps}

    @cached_property
    def fields_by_key(self) -> Mapping[FieldKey, FieldSpec]:
        """Fields indexed by key."""
        return {field.key: field for field in self.fields}

    @cached_property
    def code_version(self) -> str:
        """Hash of the fields' keys and code versions (no dependencies, no feature key)."""
        hasher = hashlib.sha256()
        for field in sorted(self.fields, key=lambda f: f.key.to_string()):
            hasher.update(field.key.to_string().encode("utf-8"))
            hasher.update(str(field.code_version).encode("utf-8"))
        return truncate_hash(hasher.hexdigest())

    @cached_property
    def feature_spec_version(self) -> str:
        """Hash of the whole specification (JSON with sorted keys)."""
        payload = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return truncate_hash(hashlib.sha256(payload.encode("utf-8")).hexdigest())

    def table_name(self) -> str:
        """SQL-friendly table name of the feature."""
        return self.key.table_name


FeatureSpecWithIDColumns = FeatureSpec
