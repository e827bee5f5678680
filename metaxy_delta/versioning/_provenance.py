"""Sample provenance and data-version columns (spec §3.2, §3.3, §3.7).

For each downstream field ``F`` (in spec order)::

    parts = [F.key, F.code_version] + [P.to_string(), V(P) for P in sorted(parents(F))]
    metaxy_provenance_by_field[F] = trunc(hash("|".join(parts)))
    metaxy_provenance = trunc(hash("|".join(struct values sorted by field name)))

``V(P)`` is the upstream row's *data version* of field ``P`` (so user data-version overrides
propagate); it is ``""`` when an optional dependency has no matching row.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import polars as pl

from metaxy_delta.errors import MetadataSchemaError
from metaxy_delta.models.constants import (
    METAXY_DATA_VERSION,
    METAXY_DATA_VERSION_BY_FIELD,
    METAXY_PROVENANCE,
    METAXY_PROVENANCE_BY_FIELD,
    HashAlgorithm,
)
from metaxy_delta.models.keys import FeatureKey
from metaxy_delta.models.plan import FeaturePlan
from metaxy_delta.versioning._hashing import hash_joined, hash_struct_values


def field_names(plan: FeaturePlan) -> list[str]:
    """Struct keys of the feature's fields, in spec order."""
    return [f.key.to_struct_key() for f in plan.feature.fields]


def provenance_by_field_expr(
    plan: FeaturePlan,
    data_version_columns: Mapping[FeatureKey, str],
    optional: set[FeatureKey],
    algorithm: HashAlgorithm,
    length: int,
) -> pl.Expr:
    """The ``metaxy_provenance_by_field`` struct computed from joined upstream columns."""
    members = []
    for field in plan.feature.fields:
        parts: list[pl.Expr] = [pl.lit(field.key.to_string()), pl.lit(str(field.code_version))]
        for parent in plan.field_parents(field.key):
            value = (
                pl.col(data_version_columns[parent.feature])
                .struct.field(parent.field.to_struct_key())
                .cast(pl.String)
            )
            if parent.feature in optional:
                value = value.fill_null("")
            parts += [pl.lit(parent.to_string()), value]
        members.append(hash_joined(parts, algorithm, length).alias(field.key.to_struct_key()))
    return pl.struct(members)


def add_provenance(
    frame: pl.LazyFrame,
    plan: FeaturePlan,
    data_version_columns: Mapping[FeatureKey, str],
    optional: set[FeatureKey],
    algorithm: HashAlgorithm,
    length: int,
) -> pl.LazyFrame:
    """Add the four provenance/data-version columns to a joined upstream frame."""
    names = field_names(plan)
    by_field = provenance_by_field_expr(plan, data_version_columns, optional, algorithm, length)
    return frame.with_columns(by_field.alias(METAXY_PROVENANCE_BY_FIELD)).with_columns(
        hash_struct_values(pl.col(METAXY_PROVENANCE_BY_FIELD), names, algorithm, length).alias(
            METAXY_PROVENANCE
        ),
        pl.col(METAXY_PROVENANCE_BY_FIELD).alias(METAXY_DATA_VERSION_BY_FIELD),
    ).with_columns(pl.col(METAXY_PROVENANCE).alias(METAXY_DATA_VERSION))


def check_provenance_struct(frame: pl.LazyFrame, plan: FeaturePlan, what: str) -> None:
    """Raise :class:`MetadataSchemaError` unless the frame carries a well-formed struct.

    The struct must exist and have exactly the feature's fields (as strings or nulls).
    """
    schema = frame.collect_schema()
    key = plan.feature.key
    if METAXY_PROVENANCE_BY_FIELD not in schema:
        raise MetadataSchemaError(
            f"{what} for feature {key} has no {METAXY_PROVENANCE_BY_FIELD!r} column",
            feature=key,
            column=METAXY_PROVENANCE_BY_FIELD,
        )
    dtype = schema[METAXY_PROVENANCE_BY_FIELD]
    if not isinstance(dtype, pl.Struct):
        raise MetadataSchemaError(
            f"{what} for feature {key}: {METAXY_PROVENANCE_BY_FIELD!r} must be a struct of "
            f"strings with fields {field_names(plan)}, got {dtype}",
            feature=key,
            column=METAXY_PROVENANCE_BY_FIELD,
        )
    got = {f.name: f.dtype for f in dtype.fields}
    expected = set(field_names(plan))
    if set(got) != expected:
        raise MetadataSchemaError(
            f"{what} for feature {key}: {METAXY_PROVENANCE_BY_FIELD!r} has fields "
            f"{sorted(got)}, expected exactly {sorted(expected)} (missing: "
            f"{sorted(expected - set(got))}, unexpected: {sorted(set(got) - expected)})",
            feature=key,
            column=METAXY_PROVENANCE_BY_FIELD,
        )
    bad = sorted(n for n, t in got.items() if t not in (pl.String, pl.Null))
    if bad:
        raise MetadataSchemaError(
            f"{what} for feature {key}: {METAXY_PROVENANCE_BY_FIELD!r} fields {bad} must be "
            "strings",
            feature=key,
            column=METAXY_PROVENANCE_BY_FIELD,
        )


def finalize_versions(
    frame: pl.LazyFrame,
    plan: FeaturePlan,
    algorithm: HashAlgorithm,
    length: int,
    *,
    complete: Collection[str] = (),
    provenance_current: bool = False,
) -> pl.LazyFrame:
    """Recompute ``metaxy_provenance`` and fill the data-version columns (spec §3.3, §3.7).

    - ``metaxy_provenance`` is always recomputed from the struct (never trusted), unless the
      caller has checked that it already is the struct's hash on every row
      (``provenance_current``, see ``store._frames.provenance_is_current``).
    - ``metaxy_data_version_by_field`` defaults to the provenance struct; null members of a
      user-supplied override are filled from the provenance struct.
    - ``metaxy_data_version`` is the sample hash of the data-version struct when absent (or
      when an override struct was given without it); nulls are filled from provenance.

    ``complete`` names data-version columns the caller knows have no nulls (struct and
    members) and, for the struct, exactly the feature's string fields: they are kept as they
    are, which spares the hash a ``fill_null`` would compute for every row.
    """
    names = field_names(plan)
    schema = frame.collect_schema()
    untyped = [c for c in (METAXY_DATA_VERSION_BY_FIELD, METAXY_DATA_VERSION)
               if isinstance(schema.get(c), pl.Null)]  # fmt: skip
    if untyped:  # all-null overrides (dtype Null): filled from provenance, as if absent
        frame = frame.drop(untyped)
        schema = frame.collect_schema()
    complete = set(complete)
    if METAXY_DATA_VERSION_BY_FIELD in complete:
        expected = pl.Struct({n: pl.String for n in names})
        if schema.get(METAXY_DATA_VERSION_BY_FIELD) != expected:
            complete.discard(METAXY_DATA_VERSION_BY_FIELD)
    if schema.get(METAXY_DATA_VERSION) != pl.String:
        complete.discard(METAXY_DATA_VERSION)
    prov = pl.col(METAXY_PROVENANCE_BY_FIELD)
    frame = frame.with_columns(
        pl.struct([prov.struct.field(n).cast(pl.String).alias(n) for n in names]).alias(
            METAXY_PROVENANCE_BY_FIELD
        )
    )
    if not provenance_current:
        frame = frame.with_columns(
            hash_struct_values(prov, names, algorithm, length).alias(METAXY_PROVENANCE)
        )
    has_dv_struct = METAXY_DATA_VERSION_BY_FIELD in schema
    if METAXY_DATA_VERSION_BY_FIELD in complete:
        pass
    elif has_dv_struct:
        dv = pl.col(METAXY_DATA_VERSION_BY_FIELD)
        dv_names = {f.name for f in schema[METAXY_DATA_VERSION_BY_FIELD].fields}  # type: ignore[union-attr]
        members = [
            (
                dv.struct.field(n).cast(pl.String).fill_null(prov.struct.field(n))
                if n in dv_names
                else prov.struct.field(n)
            ).alias(n)
            for n in names
        ]
        frame = frame.with_columns(
            pl.when(dv.is_null()).then(prov).otherwise(pl.struct(members)).alias(
                METAXY_DATA_VERSION_BY_FIELD
            )
        )
    else:
        frame = frame.with_columns(prov.alias(METAXY_DATA_VERSION_BY_FIELD))
    if METAXY_DATA_VERSION in complete:
        return frame
    if METAXY_DATA_VERSION in schema and not has_dv_struct:
        dv_sample = pl.col(METAXY_DATA_VERSION).cast(pl.String).fill_null(pl.col(METAXY_PROVENANCE))
    elif METAXY_DATA_VERSION in schema:
        dv_sample = pl.col(METAXY_DATA_VERSION).cast(pl.String).fill_null(
            hash_struct_values(pl.col(METAXY_DATA_VERSION_BY_FIELD), names, algorithm, length)
        )
    elif has_dv_struct:
        dv_sample = hash_struct_values(
            pl.col(METAXY_DATA_VERSION_BY_FIELD), names, algorithm, length
        )
    else:
        dv_sample = pl.col(METAXY_PROVENANCE)
    return frame.with_columns(dv_sample.alias(METAXY_DATA_VERSION))
