"""Lineage relationships between a feature and one of its upstream dependencies.

Example:
    >>> import metaxy_delta as mx
    >>> mx.LineageRelationship.aggregation(on=["sensor_id"]).model_dump(mode="json")
    {'relationship': {'type': 'N:1', 'on': ['sensor_id']}}
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import Self


class LineageRelationshipType(str, Enum):
    """Cardinality of a dependency: one-to-one, many-to-one or one-to-many."""

    IDENTITY = "1:1"
    AGGREGATION = "N:1"
    EXPANSION = "1:N"


class IdentityRelationship(BaseModel):
    """One upstream row per downstream row, joined on the upstream ID columns."""

    model_config = ConfigDict(frozen=True)
    type: Literal[LineageRelationshipType.IDENTITY] = LineageRelationshipType.IDENTITY


class AggregationRelationship(BaseModel):
    """Many upstream rows per downstream row, grouped by ``on`` (default: downstream IDs)."""

    model_config = ConfigDict(frozen=True)
    type: Literal[LineageRelationshipType.AGGREGATION] = LineageRelationshipType.AGGREGATION
    on: Sequence[str] | None = None


class ExpansionRelationship(BaseModel):
    """Many downstream rows per upstream row; ``on`` names the parent ID columns."""

    model_config = ConfigDict(frozen=True)
    type: Literal[LineageRelationshipType.EXPANSION] = LineageRelationshipType.EXPANSION
    on: Sequence[str]
    id_generation_pattern: str | None = None


LineageRelationshipUnion = IdentityRelationship | AggregationRelationship | ExpansionRelationship


class LineageRelationship(BaseModel):
    """Wrapper around the relationship kinds; build it with the class methods."""

    model_config = ConfigDict(frozen=True)
    relationship: LineageRelationshipUnion = Field(..., discriminator="type")

    @classmethod
    def identity(cls) -> Self:
        """One-to-one (the default)."""
        return cls(relationship=IdentityRelationship())

    @classmethod
    def aggregation(cls, on: Sequence[str] | None = None) -> Self:
        """Many-to-one, grouped by ``on`` or by the downstream ID columns."""
        return cls(relationship=AggregationRelationship(on=None if on is None else list(on)))

    @classmethod
    def expansion(cls, on: Sequence[str], id_generation_pattern: str | None = None) -> Self:
        """One-to-many; ``on`` are the parent ID columns shared by the children."""
        return cls(
            relationship=ExpansionRelationship(
                on=list(on), id_generation_pattern=id_generation_pattern
            )
        )

    @property
    def type(self) -> LineageRelationshipType:
        """The relationship's kind."""
        return self.relationship.type

    @property
    def on(self) -> tuple[str, ...] | None:
        """The grouping/parent columns (``None`` for identity or aggregation by IDs)."""
        on = getattr(self.relationship, "on", None)
        return None if on is None else tuple(on)
