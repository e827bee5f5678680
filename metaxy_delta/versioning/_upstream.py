"""Upstream preparation: per-dependency transform, lineage, collision check and join (§3.4).

Per dependency: drop the upstream's bookkeeping columns (including ``metaxy_deleted_at``,
which Metaxy leaks into increments, spec §7.12), rename (user renames plus the four
provenance/data-version columns suffixed with the upstream key), filter, select; then apply
the lineage. Aggregation reduces each group to **one** row (Metaxy keeps N rows per sample,
spec §7.15): group columns, the aggregated provenance, and the other upstream columns as lists
ordered by the upstream IDs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import narwhals as nw
import polars as pl

from metaxy_delta.errors import ColumnCollisionError, MetadataSchemaError
from metaxy_delta.models.constants import (
    METAXY_CREATED_AT,
    METAXY_DATA_VERSION,
    METAXY_DATA_VERSION_BY_FIELD,
    METAXY_DELETED_AT,
    METAXY_FEATURE_VERSION,
    METAXY_MATERIALIZATION_ID,
    METAXY_PROJECT_VERSION,
    METAXY_PROVENANCE,
    METAXY_PROVENANCE_BY_FIELD,
    METAXY_UPDATED_AT,
    RENAMED_UPSTREAM_COLUMNS,
    HashAlgorithm,
)
from metaxy_delta.models.keys import FeatureKey
from metaxy_delta.models.lineage import LineageRelationshipType
from metaxy_delta.models.plan import FeaturePlan
from metaxy_delta.models.spec import FeatureDep, FeatureSpec
from metaxy_delta.versioning._hashing import hash_expr, hash_struct_values

DROPPED_UPSTREAM_COLUMNS = (
    METAXY_FEATURE_VERSION,
    METAXY_PROJECT_VERSION,
    METAXY_CREATED_AT,
    METAXY_UPDATED_AT,
    METAXY_DELETED_AT,
    METAXY_MATERIALIZATION_ID,
)


def renamed_system_column(column: str, upstream: FeatureKey) -> str:
    """Name of an upstream system column after the join rename, e.g.
    ``metaxy_data_version_by_field__video_raw``."""
    return f"{column}{upstream.to_column_suffix()}"


@dataclass(frozen=True)
class JoinedUpstream:
    """The joined upstream frame and the names needed to hash it."""

    frame: pl.LazyFrame
    data_version_columns: dict[FeatureKey, str]
    optional: set[FeatureKey]
    temporary_columns: list[str]


def _transform(dep: FeatureDep, upstream: FeatureSpec, frame: pl.LazyFrame) -> pl.LazyFrame:
    schema = frame.collect_schema()
    frame = frame.drop([c for c in DROPPED_UPSTREAM_COLUMNS if c in schema])
    renames = dict(dep.rename or {})
    for column in RENAMED_UPSTREAM_COLUMNS:
        if column in schema:
            renames[column] = renamed_system_column(column, upstream.key)
    missing = sorted(c for c in renames if c not in schema)
    if missing:
        raise MetadataSchemaError(
            f"dependency on {upstream.key}: cannot rename missing column(s) {missing}",
            feature=upstream.key,
            column=missing[0],
        )
    frame = frame.rename(renames)
    if dep.sql_filters:
        frame = nw.from_native(frame).filter(*dep.filters).to_native()
    if dep.select is not None:
        keep = list(dict.fromkeys(dep.select))
        keep += [c for c in dep.lineage.on or () if c not in keep]
        if dep.lineage.on is None:
            keep += [renames.get(c, c) for c in upstream.id_columns if renames.get(c, c) not in keep]
        keep += [renamed_system_column(c, upstream.key) for c in RENAMED_UPSTREAM_COLUMNS]
        available = frame.collect_schema()
        absent = [c for c in keep if c not in available]
        if absent:
            raise MetadataSchemaError(
                f"dependency on {upstream.key}: selected column(s) {absent} are not in the "
                f"upstream frame (columns after rename: {list(available)})",
                feature=upstream.key,
                column=absent[0],
            )
        order: list[pl.Expr] = []
        if dep.lineage.type == LineageRelationshipType.AGGREGATION:
            ids = [renames.get(c, c) for c in upstream.id_columns]
            order = [pl.col(c).alias(f"{_ORDER_PREFIX}{c}") for c in ids if c not in keep]
        frame = frame.select(*keep, *order)
    return frame


_ORDER_PREFIX = "__metaxy_aggregation_order__"
"""Prefix of the upstream ID columns a ``select`` drops, kept until an aggregation has used
them to order each group's rows (see :func:`_aggregate`)."""


def _aggregate(
    dep: FeatureDep,
    upstream: FeatureSpec,
    plan: FeaturePlan,
    frame: pl.LazyFrame,
    algorithm: HashAlgorithm,
    length: int,
) -> pl.LazyFrame:
    group = list(dep.lineage.on or plan.feature.id_columns)
    schema = frame.collect_schema()
    renames = dep.rename or {}
    # Rows are ordered by the upstream ID columns the dep selects (Metaxy's order), then by the
    # ones its ``select`` drops: every group's order is then total. Metaxy 0.1.11 sorted by the
    # selected ones only, so a ``select`` without e.g. ``chunk_id`` left the order to Polars'
    # unstable sort (the hash changed with the thread count; tests/store/test_differential_fuzz).
    ids = [renames.get(c, c) for c in upstream.id_columns]
    hidden = [f"{_ORDER_PREFIX}{c}" for c in ids if f"{_ORDER_PREFIX}{c}" in schema]
    order = [c for c in ids if c in schema] + hidden or group
    dv = renamed_system_column(METAXY_DATA_VERSION_BY_FIELD, upstream.key)
    system = {renamed_system_column(c, upstream.key) for c in RENAMED_UPSTREAM_COLUMNS}
    names = [f.key.to_struct_key() for f in upstream.fields]
    joined = [
        pl.col(dv).struct.field(n).cast(pl.String).sort_by(order).str.join("|").alias(n)
        for n in names
    ]
    skip = system | set(group) | set(hidden)
    others = [pl.col(c).sort_by(order) for c in schema if c not in skip]
    reduced = frame.group_by(group).agg(pl.struct(joined).alias(dv), *others)
    hashed = pl.struct(
        [hash_expr(pl.col(dv).struct.field(n), algorithm, length).alias(n) for n in names]
    )
    sample = hash_struct_values(pl.col(dv), names, algorithm, length)
    return (
        reduced.with_columns(hashed.alias(dv))
        .with_columns(
            pl.col(dv).alias(renamed_system_column(METAXY_PROVENANCE_BY_FIELD, upstream.key)),
            sample.alias(renamed_system_column(METAXY_PROVENANCE, upstream.key)),
        )
        .with_columns(
            pl.col(renamed_system_column(METAXY_PROVENANCE, upstream.key)).alias(
                renamed_system_column(METAXY_DATA_VERSION, upstream.key)
            )
        )
    )


def _used_fields_only(
    frame: pl.LazyFrame, plan: FeaturePlan, upstream: FeatureKey
) -> pl.LazyFrame:
    """``frame`` with the upstream's data-version struct cut to the fields the plan hashes.

    The struct is a temporary column, gone from the increment; its other fields would only be
    carried through the joins (wide benchmark, 10M samples: the two unused fields of ``video``
    took ~0.6 GB of the resolve's peak).
    """
    column = renamed_system_column(METAXY_DATA_VERSION_BY_FIELD, upstream)
    dtype = frame.collect_schema().get(column)
    if not isinstance(dtype, pl.Struct):
        return frame
    used = {
        parent.field.to_struct_key()
        for field in plan.feature.fields
        for parent in plan.field_parents(field.key)
        if parent.feature == upstream
    }
    names = [f.name for f in dtype.fields if f.name in used]
    if not names or len(names) == len(dtype.fields):
        return frame
    members = [pl.col(column).struct.field(n) for n in names]
    return frame.with_columns(pl.struct(members).alias(column))


def prepare_upstream(
    plan: FeaturePlan,
    frames: Mapping[FeatureKey, pl.LazyFrame],
    algorithm: HashAlgorithm,
    length: int,
) -> JoinedUpstream:
    """Transform every upstream frame and join them on the plan's join columns."""
    join_on = list(plan.join_columns)
    prepared: list[tuple[FeatureDep, pl.LazyFrame]] = []
    owners: dict[str, FeatureKey] = {}
    temporary: list[str] = []
    for dep in plan.feature.deps:
        if dep.feature not in frames:
            raise MetadataSchemaError(
                f"no upstream frame given for {dep.feature} (dependency of {plan.key})",
                feature=plan.key,
            )
        upstream = plan.upstream_by_key[dep.feature]
        frame = _transform(dep, upstream, frames[dep.feature])
        if dep.lineage.type == LineageRelationshipType.AGGREGATION:
            frame = _aggregate(dep, upstream, plan, frame, algorithm, length)
        frame = _used_fields_only(frame, plan, dep.feature)
        schema = frame.collect_schema()
        absent = [c for c in join_on if c not in schema]
        if absent:
            raise MetadataSchemaError(
                f"dependency {dep.feature} of {plan.key} lacks join column(s) {absent} "
                f"(join columns: {join_on}; rename the upstream ID columns to match)",
                feature=plan.key,
                column=absent[0],
            )
        system = {renamed_system_column(c, dep.feature) for c in RENAMED_UPSTREAM_COLUMNS}
        temporary += [c for c in schema if c in system]
        for column in schema:
            if column in join_on or column in system:
                continue
            if column in owners:
                raise ColumnCollisionError(
                    f"column {column!r} comes from both {owners[column]} and {dep.feature} "
                    f"(upstreams of {plan.key}); rename or de-select it in one FeatureDep"
                )
            owners[column] = dep.feature
        prepared.append((dep, frame))
    required = [(d, f) for d, f in prepared if not d.optional]
    optional = [(d, f) for d, f in prepared if d.optional]
    if required:
        joined = required[0][1]
        for _, frame in required[1:]:
            joined = joined.join(frame, on=join_on, how="inner")
        for _, frame in optional:
            joined = joined.join(frame, on=join_on, how="left")
    else:
        joined = optional[0][1]
        for _, frame in optional[1:]:
            joined = joined.join(frame, on=join_on, how="full", coalesce=True)
    return JoinedUpstream(
        frame=joined,
        data_version_columns={
            d.feature: renamed_system_column(METAXY_DATA_VERSION_BY_FIELD, d.feature)
            for d, _ in prepared
        },
        optional={d.feature for d, _ in optional},
        temporary_columns=temporary,
    )
