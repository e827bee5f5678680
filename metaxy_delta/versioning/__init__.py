"""The versioning engine: pure functions over lazy frames, hash-compatible with Metaxy.

Nothing here touches storage; the store reads the upstream and current frames and hands them
in. Inputs may be any narwhals-compatible frame (Polars, pandas, PyArrow, narwhals); outputs
are narwhals LazyFrames backed by Polars, lazy until the caller collects.

Example:
    >>> import polars as pl
    >>> import metaxy_delta as mx
    >>> from metaxy_delta import versioning
    >>> with mx.FeatureGraph().use() as g:
    ...     class Video(mx.BaseFeature, spec=mx.FeatureSpec(key="video", id_columns=["id"], fields=["frames", "audio"])):
    ...         id: str
    ...     class Processed(mx.BaseFeature, spec=mx.FeatureSpec(key="processed", id_columns=["id"], deps=[Video], fields=[mx.FieldSpec(key="default", code_version="1")])):
    ...         id: str
    ...     plan = g.get_feature_plan("processed")
    >>> video = pl.LazyFrame({"id": ["a"], "metaxy_data_version_by_field": [{"frames": "video_frame_hash_1", "audio": "video_audio_hash_1"}]})
    >>> expected = versioning.compute_expected(plan, {mx.FeatureKey("video"): video}, hash_algorithm=mx.HashAlgorithm.XXHASH64)
    >>> expected.select("metaxy_provenance_by_field", "metaxy_provenance").collect().to_native().row(0)
    ({'default': '96465930'}, '81606296')
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import narwhals as nw

from metaxy_delta.models.constants import HashAlgorithm
from metaxy_delta.models.keys import coerce_to_feature_key
from metaxy_delta.models.plan import FeaturePlan
from metaxy_delta.versioning._frames import as_polars_lazy
from metaxy_delta.versioning._hashing import (
    SUPPORTED_ALGORITHMS,
    check_algorithm,
    hash_expr,
    hash_struct_values,
)
from metaxy_delta.versioning._increment import (
    Increment,
    LazyIncrement,
    PolarsIncrement,
    PolarsLazyIncrement,
    resolve_increment,
)
from metaxy_delta.versioning._provenance import (
    add_provenance,
    check_provenance_struct,
    finalize_versions,
)
from metaxy_delta.versioning._upstream import (
    DROPPED_UPSTREAM_COLUMNS,
    prepare_upstream,
    renamed_system_column,
)


def _length(hash_length: int | None) -> int:
    from metaxy_delta.models._hashing import truncation_length

    return truncation_length() if hash_length is None else hash_length


def compute_expected(
    plan: FeaturePlan,
    upstream: Mapping[Any, Any],
    *,
    hash_algorithm: HashAlgorithm | str = HashAlgorithm.XXHASH32,
    hash_length: int | None = None,
) -> nw.LazyFrame[Any]:
    """Expected rows of a non-root feature, with provenance, from its upstream frames.

    ``upstream`` maps each dependency key to its current rows (as the store reads them).
    """
    algo = check_algorithm(hash_algorithm)
    length = _length(hash_length)
    frames = {coerce_to_feature_key(k): as_polars_lazy(v) for k, v in upstream.items()}
    joined = prepare_upstream(plan, frames, algo, length)
    expected = add_provenance(
        joined.frame, plan, joined.data_version_columns, joined.optional, algo, length
    ).drop(joined.temporary_columns)
    return nw.from_native(expected)


def prepare_samples(
    plan: FeaturePlan,
    samples: Any,
    *,
    hash_algorithm: HashAlgorithm | str = HashAlgorithm.XXHASH32,
    hash_length: int | None = None,
) -> nw.LazyFrame[Any]:
    """Validate user ``samples`` and (re)compute their sample-level version columns.

    The frame must carry ``metaxy_provenance_by_field`` with exactly the feature's fields;
    ``metaxy_provenance`` is always recomputed; bookkeeping columns are dropped.
    """
    algo = check_algorithm(hash_algorithm)
    frame = as_polars_lazy(samples)
    check_provenance_struct(frame, plan, "samples")
    schema = frame.collect_schema()
    frame = frame.drop([c for c in DROPPED_UPSTREAM_COLUMNS if c in schema])
    return nw.from_native(finalize_versions(frame, plan, algo, _length(hash_length)))


def resolve(
    plan: FeaturePlan,
    *,
    upstream: Mapping[Any, Any] | None = None,
    samples: Any = None,
    current: Any = None,
    hash_algorithm: HashAlgorithm | str = HashAlgorithm.XXHASH32,
    hash_length: int | None = None,
    staleness_predicates: Sequence[nw.Expr] = (),
    skip_comparison: bool = False,
    current_unique: bool = False,
) -> LazyIncrement:
    """Lazy increment of a feature from upstream frames (or ``samples``) and stored rows.

    ``current_unique=True`` promises one stored row per sample (ID columns), as the store's
    reads give; the comparison then takes one join instead of four.
    """
    if samples is not None:
        expected = prepare_samples(
            plan, samples, hash_algorithm=hash_algorithm, hash_length=hash_length
        )
        has_input = False
    elif plan.feature.deps:
        expected = compute_expected(
            plan, upstream or {}, hash_algorithm=hash_algorithm, hash_length=hash_length
        )
        has_input = True
    else:
        raise ValueError(
            f"feature {plan.key} is a root feature (no deps): pass `samples` with its "
            "metaxy_provenance_by_field"
        )
    stored = None if current is None else as_polars_lazy(current)
    inc = resolve_increment(
        expected.to_native(),
        stored,
        plan.join_columns,
        staleness_predicates=staleness_predicates,
        skip_comparison=skip_comparison,
        current_unique=current_unique
        and set(plan.join_columns) == set(plan.feature.id_columns),
    )
    return LazyIncrement(
        new=nw.from_native(inc.new),
        stale=nw.from_native(inc.stale),
        orphaned=nw.from_native(inc.orphaned),
        input=expected if has_input else None,
        one_pass=inc.one_pass,
    )


__all__ = [
    "DROPPED_UPSTREAM_COLUMNS",
    "SUPPORTED_ALGORITHMS",
    "Increment",
    "LazyIncrement",
    "PolarsIncrement",
    "PolarsLazyIncrement",
    "as_polars_lazy",
    "check_algorithm",
    "compute_expected",
    "finalize_versions",
    "hash_expr",
    "hash_struct_values",
    "prepare_samples",
    "renamed_system_column",
    "resolve",
    "resolve_increment",
]
