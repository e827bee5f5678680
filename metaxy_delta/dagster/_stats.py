"""Row counts, data versions and the runtime metadata logged on Dagster events.

The data version of a feature (or of one partition/slice of it) is computed from its visible
rows (current feature version, latest live row per sample): ``mean(metaxy_created_at)`` as in
Metaxy, followed by the row count and the latest ``metaxy_updated_at``, e.g.
``"1795544765807396.0-3-1795544765807396"`` (``"empty"`` for no rows). The mean alone (Metaxy
0.1.11) misses deletes: every row of one write shares one timestamp, so deleting some of them
leaves the mean unchanged; the count catches that, and the latest update catches re-writes that
carry their original ``metaxy_created_at``.

Example:
    >>> import polars as pl
    >>> from datetime import datetime, timezone
    >>> import metaxy_delta.dagster as mxd
    >>> ts = datetime(2024, 1, 1, tzinfo=timezone.utc)
    >>> df = pl.DataFrame({"metaxy_created_at": [ts, ts], "metaxy_updated_at": [ts, ts]})
    >>> mxd.compute_stats_from_lazy_frame(df.lazy())
    FeatureStats(row_count=2, data_version=DataVersion(value='1704067200000000.0-2-1704067200000000'))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import dagster as dg
import narwhals as nw

from metaxy_delta.dagster._constants import (
    DATA_VERSION_KEY,
    DAGSTER_METAXY_FEATURE_METADATA_KEY,
    DAGSTER_METAXY_INFO_METADATA_KEY,
    DELTA_VERSION_KEY,
    FEATURE_VERSION_KEY,
    MATERIALIZED_IN_RUN_KEY,
    PARTITION_FILTER_KEY,
    PARTITION_ROW_COUNT_KEY,
    ROW_COUNT_KEY,
    STORE_KEY,
    TABLE_PREVIEW_KEY,
    URI_KEY,
)
from metaxy_delta.dagster._features import build_feature_info_metadata
from metaxy_delta.dagster._partitions import (
    Condition,
    context_partition_keys,
    describe,
    partition_conditions,
    slice_conditions,
    to_exprs,
)
from metaxy_delta.dagster._resources import as_store
from metaxy_delta.dagster._table_metadata import build_table_preview_metadata
from metaxy_delta.models import current_graph
from metaxy_delta.models.constants import (
    METAXY_CREATED_AT,
    METAXY_MATERIALIZATION_ID,
    METAXY_UPDATED_AT,
)
from metaxy_delta.models.keys import FeatureKey, coerce_to_feature_key

EMPTY_DATA_VERSION = "empty"


class FeatureStats(NamedTuple):
    """Row count and Dagster data version of a (filtered) feature."""

    row_count: int
    data_version: dg.DataVersion


def compute_row_count(lazy_df: Any) -> int:
    """Number of rows of a narwhals-compatible (lazy) frame."""
    frame = nw.from_native(lazy_df)
    counted = frame.select(nw.len().alias("n"))
    result = counted.collect() if isinstance(counted, nw.LazyFrame) else counted
    return int(result.item(0, 0))


def compute_stats_from_lazy_frame(lazy_df: Any) -> FeatureStats:
    """:class:`FeatureStats` of a frame in one aggregation (see the module docstring)."""
    frame = nw.from_native(lazy_df)
    names = set(frame.collect_schema().names())
    aggregations = [nw.len().alias("n")]
    if METAXY_CREATED_AT in names:
        aggregations.append(nw.col(METAXY_CREATED_AT).dt.timestamp("us").mean().alias("created"))
    if METAXY_UPDATED_AT in names:
        aggregations.append(nw.col(METAXY_UPDATED_AT).dt.timestamp("us").max().alias("updated"))
    selected = frame.select(aggregations)
    row = (selected.collect() if isinstance(selected, nw.LazyFrame) else selected).rows(named=True)[0]
    count = int(row["n"])
    if count == 0:
        return FeatureStats(0, dg.DataVersion(EMPTY_DATA_VERSION))
    parts = []
    if row.get("created") is not None:
        parts.append(repr(float(row["created"])))
    parts.append(str(count))
    if row.get("updated") is not None:
        parts.append(str(int(row["updated"])))
    return FeatureStats(count, dg.DataVersion("-".join(parts)))


def compute_feature_stats(store: Any, feature: Any) -> FeatureStats:
    """:class:`FeatureStats` of a feature's default read.

    Raises:
        FeatureNotFoundError: The feature has no table (in the store or its fallbacks).
    """
    store = as_store(store)
    with store.open("r"):
        return compute_stats_from_lazy_frame(store.read(feature))


def column_dtypes(store: Any, key: FeatureKey, columns: Sequence[str]) -> dict[str, Any]:
    """Stored dtypes of ``columns`` in the table a read of ``key`` uses (this store's, else a
    fallback store's); ``{}`` if there is none. The store must be open."""
    if not columns:
        return {}
    holder = store.find_store_for_feature(key, check_fallback=True)
    if holder is None:
        return {}
    with holder.open("r"):
        schema = holder.read_feature_schema_from_store(key)
    return {c: schema[c] for c in columns if c in schema}


def read_filtered(store: Any, key: FeatureKey, conditions: Sequence[Condition], **kwargs: Any) -> Any:
    """``store.read`` with ``conditions`` typed by the stored columns (pushed into the scan)."""
    dtypes = column_dtypes(store, key, [c.column for c in conditions])
    return store.read(key, filters=to_exprs(conditions, dtypes), **kwargs)


def runtime_metadata(
    store: Any,
    feature: Any,
    *,
    partition: Sequence[Condition] = (),
    slice_: Sequence[Condition] = (),
    partitions: int = 0,
    run_id: str | None = None,
    preview: bool = True,
    log: Any = None,
) -> tuple[dict[str, Any], FeatureStats]:
    """Metadata for an event of ``feature`` restricted to ``partition`` + ``slice_`` conditions.

    ``partitions`` is the number of Dagster partitions the run covers. ``dagster/row_count``
    then counts the whole slice and, for one partition, ``dagster/partition_row_count`` the
    partition's rows. A run over several partitions (a single-run backfill) leaves the latter
    out: Dagster copies the event's metadata to every partition of the range, and the range's
    count would be wrong for each (Metaxy reports it). ``metaxy/data_version`` is left out for
    the same reason, and callers set no Dagster data version then.

    Each item is computed on its own: one failing (e.g. the preview) is logged as a warning and
    the rest is still returned (Metaxy 0.1.11 drops everything on any error). The store must be
    open.

    Raises:
        FeatureNotFoundError: The feature has no table.
    """
    key = coerce_to_feature_key(feature)
    conditions = [*partition, *slice_]
    frame, resolved = read_filtered(store, key, conditions, with_store_info=True)
    stats = compute_stats_from_lazy_frame(frame)
    metadata: dict[str, Any] = {
        DAGSTER_METAXY_FEATURE_METADATA_KEY: key.to_string(),
        FEATURE_VERSION_KEY: current_graph().get_feature_version(key),
    }
    if partitions <= 1:
        metadata[DATA_VERSION_KEY] = stats.data_version.value
    if partitions == 1:
        metadata[PARTITION_ROW_COUNT_KEY] = stats.row_count
    if conditions:
        metadata[PARTITION_FILTER_KEY] = describe(conditions)

    def attempt(name: str, build: Callable[[], Any]) -> None:
        try:
            value = build()
        except Exception as err:  # noqa: BLE001 - optional metadata never fails a step
            if log is not None:
                log.warning(f"metaxy_delta: could not compute {name} for {key.to_string()}: {err!r}")
            return
        if value is not None:
            metadata[name] = value

    attempt(DAGSTER_METAXY_INFO_METADATA_KEY, lambda: build_feature_info_metadata(key))
    attempt(
        ROW_COUNT_KEY,
        lambda: compute_row_count(read_filtered(store, key, slice_)) if partitions else stats.row_count,
    )
    attempt(URI_KEY, lambda: dg.MetadataValue.path(resolved.table_uri(key)))
    attempt(DELTA_VERSION_KEY, lambda: _version(resolved, key))
    attempt(STORE_KEY, lambda: store_info(store, resolved, key))
    if run_id is not None:
        attempt(
            MATERIALIZED_IN_RUN_KEY,
            lambda: compute_row_count(frame.filter(nw.col(METAXY_MATERIALIZATION_ID) == run_id)),
        )
    if preview:
        attempt(TABLE_PREVIEW_KEY, lambda: build_table_preview_metadata(frame))
    return metadata, stats


def _version(store: Any, key: FeatureKey) -> int | None:
    with store.open("r"):  # a fallback store the read resolved to is not open
        return store.version(key)


def store_info(store: Any, resolved: Any, key: FeatureKey) -> dict[str, Any]:
    """``metaxy/store`` metadata: the configured store and the one the data came from."""
    return {
        "name": store.name,
        "type": store.qualified_class_name,
        "display": store.display(),
        "versioning_engine": "polars",
        "resolved_from": {
            "name": resolved.name,
            "type": resolved.qualified_class_name,
            "display": resolved.display(),
            "uri": resolved.table_uri(key),
        },
    }


def build_runtime_feature_metadata(
    feature_key: Any,
    store: Any,
    context: Any,
    *,
    partition_col: Any = None,
    metaxy_partition: Any = None,
) -> tuple[dict[str, Any], FeatureStats]:
    """Runtime metadata and stats of a feature for the partition(s) of ``context``.

    ``dagster/row_count`` counts the whole ``metaxy/partition`` slice (all Dagster partitions)
    and ``dagster/partition_row_count`` the run's partition(s), as in Metaxy. Opens the store.

    Raises:
        FeatureNotFoundError: The feature has no table.
    """
    store = as_store(store)
    keys = context_partition_keys(context)
    with store.open("r"):
        return runtime_metadata(
            store,
            feature_key,
            partition=partition_conditions(partition_col, keys),
            slice_=slice_conditions(metaxy_partition),
            partitions=len(keys),
            log=getattr(context, "log", None),
        )
