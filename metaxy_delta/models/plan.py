"""Feature plans: a feature spec together with the specs of its direct upstream features.

The plan answers the structural questions the versioning engine asks: which upstream fields
does each field depend on, and on which columns are the upstream frames joined.

Example:
    >>> import metaxy_delta as mx
    >>> with mx.FeatureGraph().use() as g:
    ...     class Raw(mx.BaseFeature, spec=mx.FeatureSpec(key="raw", id_columns=["id"], fields=["audio", "frames"])):
    ...         id: str
    ...     class Clip(mx.BaseFeature, spec=mx.FeatureSpec(key="clip", id_columns=["id"], deps=[Raw], fields=["audio"])):
    ...         id: str
    ...     plan = g.get_feature_plan("clip")
    >>> [p.to_string() for p in plan.field_parents(mx.FieldKey("audio"))]
    ['raw.audio']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

from metaxy_delta.errors import FieldDependencyError, NoUpstreamFieldsError
from metaxy_delta.models.fields import FieldSpec, SpecialFieldDep
from metaxy_delta.models.keys import FeatureKey, FieldKey
from metaxy_delta.models.lineage import LineageRelationshipType
from metaxy_delta.models.spec import FeatureDep, FeatureSpec


@dataclass(frozen=True, order=False)
class FQFieldKey:
    """A fully qualified field: ``"<feature/key>.<field/key>"``; ordered by that string."""

    feature: FeatureKey
    field: FieldKey

    def to_string(self) -> str:
        """The form that enters every hash, e.g. ``"video/raw.audio"``."""
        return f"{self.feature.to_string()}.{self.field.to_string()}"

    def __lt__(self, other: FQFieldKey) -> bool:
        return self.to_string() < other.to_string()

    def __str__(self) -> str:
        return self.to_string()


@dataclass(frozen=True)
class FeaturePlan:
    """A feature's spec with its upstream specs (in dependency order)."""

    feature: FeatureSpec
    deps: Sequence[FeatureSpec] | None

    @property
    def key(self) -> FeatureKey:
        return self.feature.key

    @property
    def feature_deps(self) -> list[FeatureDep]:
        """The feature's ``FeatureDep`` entries, in spec order."""
        return list(self.feature.deps)

    @cached_property
    def upstream_by_key(self) -> Mapping[FeatureKey, FeatureSpec]:
        return {spec.key: spec for spec in self.deps or ()}

    @cached_property
    def _parents(self) -> Mapping[FieldKey, tuple[FQFieldKey, ...]]:
        return {f.key: tuple(sorted(self._resolve(f))) for f in self.feature.fields}

    def field_parents(self, field: FieldKey) -> tuple[FQFieldKey, ...]:
        """Upstream fields of ``field``, sorted by their fully qualified string."""
        return self._parents[field]

    def _resolve(self, field: FieldSpec) -> set[FQFieldKey]:
        if not self.feature.deps:
            return set()
        if field.deps == SpecialFieldDep.ALL:
            return {
                FQFieldKey(up.key, f.key) for up in self.deps or () for f in up.fields
            }
        if isinstance(field.deps, list) and field.deps:
            out: set[FQFieldKey] = set()
            for dep in field.deps:
                upstream = self.upstream_by_key.get(dep.feature)
                if upstream is None:
                    raise FieldDependencyError(
                        f"field {field.key} of feature {self.key} depends on feature "
                        f"{dep.feature}, which is not among the feature's deps"
                    )
                if dep.fields == SpecialFieldDep.ALL:
                    out |= {FQFieldKey(upstream.key, f.key) for f in upstream.fields}
                    continue
                for parent in dep.fields:
                    if parent not in upstream.fields_by_key:
                        raise FieldDependencyError(
                            f"field {field.key} of feature {self.key} depends on field "
                            f"{parent} of {upstream.key}, which has no such field "
                            f"(fields: {[f.key.to_string() for f in upstream.fields]})"
                        )
                    out.add(FQFieldKey(upstream.key, parent))
            return out
        out = set()
        for dep in self.feature.deps:
            upstream = self.upstream_by_key[dep.feature]
            hits = dep.fields_mapping.resolve(field.key, [f.key for f in upstream.fields])
            out |= {FQFieldKey(upstream.key, h) for h in hits}
        if not out:
            raise NoUpstreamFieldsError(
                f"no upstream fields found for field {field.key} of feature {self.key}: give the "
                "FieldSpec explicit deps or a FeatureDep a fields_mapping that matches a field"
            )
        return out

    def input_id_columns_for_dep(self, dep: FeatureDep) -> tuple[str, ...]:
        """Columns on which this dependency's (renamed) frame joins the others."""
        lineage = dep.lineage
        if lineage.type == LineageRelationshipType.IDENTITY:
            upstream = self.upstream_by_key[dep.feature]
            rename = dep.rename or {}
            return tuple(rename.get(c, c) for c in upstream.id_columns)
        if lineage.type == LineageRelationshipType.AGGREGATION:
            return lineage.on or tuple(self.feature.id_columns)
        return lineage.on or ()

    @cached_property
    def input_id_columns(self) -> tuple[str, ...]:
        """Intersection of every dependency's join columns, in a deterministic order.

        Metaxy returns an unordered ``set`` here (spec §7.15); the order of the first
        dependency is used instead, so joins and column orders are reproducible.
        """
        per_dep = [self.input_id_columns_for_dep(d) for d in self.feature.deps]
        if not per_dep:
            return tuple(self.feature.id_columns)
        common = set(per_dep[0]).intersection(*map(set, per_dep[1:]))
        return tuple(c for c in per_dep[0] if c in common)

    @property
    def join_columns(self) -> tuple[str, ...]:
        """Columns that identify a unit of work for increments (``input_id_columns`` or IDs)."""
        return self.input_id_columns or tuple(self.feature.id_columns)
