"""Automatic field-level dependency mappings.

When a field declares no explicit ``deps``, each ``FeatureDep.fields_mapping`` decides which
fields of that upstream it depends on.

Example:
    >>> import metaxy_delta as mx
    >>> mapping = mx.FieldsMapping.default()
    >>> sorted(k.to_string() for k in mapping.resolve(mx.FieldKey("default"), [mx.FieldKey("audio"), mx.FieldKey("frames")]))
    ['audio', 'frames']
    >>> sorted(k.to_string() for k in mapping.resolve(mx.FieldKey("audio"), [mx.FieldKey("audio"), mx.FieldKey("frames")]))
    ['audio']
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer
from typing_extensions import Self

from metaxy_delta.models.keys import FieldKey, ValidatedFieldKey, coerce_to_field_key


class FieldsMappingType(str, Enum):
    """The kinds of automatic field mappings."""

    DEFAULT = "default"
    SPECIFIC = "specific"
    ALL = "all"
    NONE = "none"


class DefaultFieldsMapping(BaseModel):
    """Same-named upstream fields (optionally suffix matches); all fields if none match."""

    model_config = ConfigDict(frozen=True)
    type: Literal[FieldsMappingType.DEFAULT] = FieldsMappingType.DEFAULT
    match_suffix: bool = False
    exclude_fields: list[ValidatedFieldKey] = Field(default_factory=list)

    def resolve(self, field: FieldKey, upstream: Iterable[FieldKey]) -> set[FieldKey]:
        candidates = [u for u in upstream if u not in self.exclude_fields]
        hits = {u for u in candidates if u == field or (self.match_suffix and _suffix(field, u))}
        return hits or set(candidates)


def _suffix(field: FieldKey, upstream: FieldKey) -> bool:
    if len(field) == 1 and len(upstream) > 1:
        return field.parts[0] == upstream.parts[-1]
    return len(field) <= len(upstream) and upstream.parts[-len(field) :] == field.parts


class SpecificFieldsMapping(BaseModel):
    """An explicit ``{downstream field: {upstream fields}}`` table."""

    model_config = ConfigDict(frozen=True)
    type: Literal[FieldsMappingType.SPECIFIC] = FieldsMappingType.SPECIFIC
    mapping: dict[ValidatedFieldKey, set[ValidatedFieldKey]]

    @field_serializer("mapping", when_used="json")
    def _json(self, value: Mapping[FieldKey, set[FieldKey]]) -> dict[str, list[list[str]]]:
        return {k.to_string(): [list(v.parts) for v in sorted(vs)] for k, vs in value.items()}

    def resolve(self, field: FieldKey, upstream: Iterable[FieldKey]) -> set[FieldKey]:
        return self.mapping.get(field, set()) & set(upstream)


class AllFieldsMapping(BaseModel):
    """Every upstream field."""

    model_config = ConfigDict(frozen=True)
    type: Literal[FieldsMappingType.ALL] = FieldsMappingType.ALL

    def resolve(self, field: FieldKey, upstream: Iterable[FieldKey]) -> set[FieldKey]:
        return set(upstream)


class NoneFieldsMapping(BaseModel):
    """No upstream field (the dependency then only feeds columns, not provenance)."""

    model_config = ConfigDict(frozen=True)
    type: Literal[FieldsMappingType.NONE] = FieldsMappingType.NONE

    def resolve(self, field: FieldKey, upstream: Iterable[FieldKey]) -> set[FieldKey]:
        return set()


FieldsMappingUnion = (
    AllFieldsMapping | SpecificFieldsMapping | NoneFieldsMapping | DefaultFieldsMapping
)


class FieldsMapping(BaseModel):
    """How fields without explicit deps pick their parents in one upstream feature."""

    model_config = ConfigDict(frozen=True)
    mapping: FieldsMappingUnion = Field(..., discriminator="type")

    @classmethod
    def default(
        cls, *, match_suffix: bool = False, exclude_fields: list[Any] | None = None
    ) -> Self:
        """Exact (or suffix) name matches, falling back to all upstream fields."""
        return cls(
            mapping=DefaultFieldsMapping(
                match_suffix=match_suffix, exclude_fields=list(exclude_fields or [])
            )
        )

    @classmethod
    def specific(cls, mapping: Mapping[Any, Iterable[Any]]) -> Self:
        """An explicit table of downstream field → upstream fields."""
        table = {
            coerce_to_field_key(k): {coerce_to_field_key(v) for v in vs}
            for k, vs in mapping.items()
        }
        return cls(mapping=SpecificFieldsMapping(mapping=table))

    @classmethod
    def all(cls) -> Self:
        """Depend on every upstream field."""
        return cls(mapping=AllFieldsMapping())

    @classmethod
    def none(cls) -> Self:
        """Depend on no upstream field."""
        return cls(mapping=NoneFieldsMapping())

    def resolve(self, field: FieldKey, upstream: Iterable[FieldKey]) -> set[FieldKey]:
        """The upstream fields that ``field`` depends on through this mapping."""
        return self.mapping.resolve(field, list(upstream))
