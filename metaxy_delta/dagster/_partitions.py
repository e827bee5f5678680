"""Dagster partitions → Metaxy filters and Delta partition columns.

An asset's ``"partition_by"`` metadata names the column holding its Dagster partition key:

* ``"date"``: one column holding the partition key (for multi-partitions, the composite key
  ``"2024-01-01|eu"``);
* ``{"date": "day", "region": "region"}``: one column per dimension of a
  ``MultiPartitionsDefinition`` (dimension name → column).

Values are compared as the partition key strings, unless the stored column has another type:
then the key is converted (``Date``/``Datetime`` from daily/hourly keys, integers), which
Metaxy 0.1.11 does not do (its string literal silently matches nothing on a date column).
``"metaxy/partition"`` (``{column: value or [values]}``) adds static equality/``is_in``
filters everywhere (Metaxy supports lists in ``load_input`` only).

Example:
    >>> import metaxy_delta.dagster as mxd
    >>> [str(e) for e in mxd.build_partition_filter("date", "2024-01-01")] != []
    True
    >>> mxd.build_partition_filter(None, "2024-01-01")
    []
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import dagster as dg
import narwhals as nw
import polars as pl

from metaxy_delta.dagster._constants import (
    DAGSTER_METAXY_PARTITION_KEY,
    DAGSTER_METAXY_PARTITION_METADATA_KEY,
)
from metaxy_delta.errors import MetaxyError

PartitionBy = str | Mapping[str, str]
_KEY_FORMATS = ("%Y-%m-%d-%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d")


class PartitionMismatchError(MetaxyError, ValueError):
    """An output frame holds rows of another Dagster partition or ``metaxy/partition`` slice."""


@dataclass(frozen=True)
class Condition:
    """``column`` equals one of ``values`` (strings as Dagster gives them, or literal values)."""

    column: str
    values: tuple[Any, ...]

    def expr(self, dtype: Any = None) -> nw.Expr:
        """The condition as a narwhals expression, literals converted to ``dtype``."""
        values = [coerce_value(v, dtype) for v in self.values]
        if not values:  # no partition at all (e.g. a mapping to none): matches no row
            return nw.col(self.column).is_in([])
        if len(values) > 1:
            return nw.col(self.column).is_in(values)
        if values[0] is None:
            return nw.col(self.column).is_null()
        return nw.col(self.column) == nw.lit(values[0])

    def sql(self) -> str:
        """Human-readable SQL form (for metadata and logs)."""
        rendered = [f"'{v}'" if isinstance(v, str) else str(v) for v in self.values]
        if len(rendered) == 1 and self.values[0] is None:
            return f"{self.column} IS NULL"
        if len(rendered) == 1:
            return f"{self.column} = {rendered[0]}"
        return f"{self.column} IN ({', '.join(rendered)})"


def coerce_value(value: Any, dtype: Any) -> Any:
    """Convert a partition key string to the stored column's type (no-op for strings).

    Raises:
        ValueError: The key cannot be read as that type.
    """
    if not isinstance(value, str) or dtype is None:
        return value
    if dtype == nw.Date:
        return _parse_datetime(value).date()
    if dtype == nw.Datetime:
        parsed = _parse_datetime(value)
        zone = getattr(dtype, "time_zone", None)
        if zone and parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=timezone.utc)
        elif not zone and parsed.tzinfo is not None:
            parsed = parsed.astimezone(timezone.utc).replace(tzinfo=None)
        return parsed
    if dtype.is_integer():
        return int(value)
    if dtype.is_float():
        return float(value)
    return value


def _parse_datetime(value: str) -> datetime:
    for fmt in _KEY_FORMATS:
        try:
            return datetime.strptime(value, fmt)
        except ValueError:
            continue
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        msg = f"partition key {value!r} is not a date/time the partition column can hold"
        raise ValueError(msg) from None


def partition_columns(partition_by: PartitionBy | None) -> list[str]:
    """Columns named by ``"partition_by"`` metadata (``[]`` if unset)."""
    if not partition_by:
        return []
    if isinstance(partition_by, str):
        return [partition_by]
    return list(partition_by.values())


def partition_conditions(partition_by: PartitionBy | None, keys: Sequence[str]) -> list[Condition]:
    """Conditions selecting the rows of Dagster partitions ``keys``.

    With per-dimension columns, several keys select each column's values (``is_in``), i.e. the
    cross product of the keys' dimension values.

    Raises:
        ValueError: ``partition_by`` is a dict but the keys are not multi-partition keys.
    """
    if not partition_by or not keys:
        return []
    if isinstance(partition_by, str):
        return [Condition(partition_by, tuple(dict.fromkeys(str(k) for k in keys)))]
    per_column: dict[str, list[str]] = {column: [] for column in partition_by.values()}
    for key in keys:
        by_dimension = getattr(key, "keys_by_dimension", None)
        if by_dimension is None:
            msg = (
                f"'partition_by' maps dimensions to columns ({dict(partition_by)}), but partition "
                f"key {key!r} is not a multi-partition key"
            )
            raise ValueError(msg)
        for dimension, column in partition_by.items():
            if by_dimension[dimension] not in per_column[column]:
                per_column[column].append(by_dimension[dimension])
    return [Condition(column, tuple(values)) for column, values in per_column.items()]


def slice_conditions(partition_metadata: Mapping[str, Any] | None) -> list[Condition]:
    """Conditions from ``"metaxy/partition"`` metadata (list values become ``is_in``)."""
    if not isinstance(partition_metadata, Mapping):
        return []
    return [
        Condition(column, tuple(value) if isinstance(value, (list, tuple, set)) else (value,))
        for column, value in partition_metadata.items()
    ]


def to_exprs(conditions: Sequence[Condition], dtypes: Mapping[str, Any] | None = None) -> list[nw.Expr]:
    """Narwhals expressions of ``conditions`` (literals typed by ``dtypes`` when known)."""
    return [c.expr((dtypes or {}).get(c.column)) for c in conditions]


def describe(conditions: Sequence[Condition]) -> str:
    """``"date = '2024-01-01' AND region = 'eu'"`` (empty string for no conditions)."""
    return " AND ".join(c.sql() for c in conditions)


# --------------------------------------------------------------------------- public helpers


def build_partition_filter(partition_col: str | None, partition_key: str | None) -> list[nw.Expr]:
    """``[nw.col(partition_col) == partition_key]``, or ``[]`` when either is ``None``.

    Example:
        >>> import narwhals as nw, polars as pl
        >>> df = nw.from_native(pl.DataFrame({"date": ["2024-01-01", "2024-01-02"]}))
        >>> df.filter(*build_partition_filter("date", "2024-01-02"))["date"].to_list()
        ['2024-01-02']
    """
    if partition_col is None or partition_key is None:
        return []
    return to_exprs(partition_conditions(partition_col, [partition_key]))


def context_partition_keys(context: Any) -> list[str]:
    """Partition keys of an asset/op execution context (``[]`` if not partitioned)."""
    if getattr(context, "has_partition_key", False):
        return [context.partition_key]
    if getattr(context, "has_partition_key_range", False):
        return list(context.partition_keys)
    return []


def get_partition_filter(context: Any, spec: dg.AssetSpec) -> list[nw.Expr]:
    """Filters restricting reads to the run's Dagster partition(s), from ``spec``'s metadata.

    Use inside your own assets, e.g.
    ``store.resolve_update(feature, target_filters=mxd.get_partition_filter(context, spec))``.
    ``[]`` when the run is not partitioned or the spec has no ``"partition_by"``.

    Example:
        >>> import dagster as dg
        >>> spec = dg.AssetSpec("a", metadata={"partition_by": "date"})
        >>> len(get_partition_filter(dg.build_asset_context(partition_key="2024-01-01"), spec))
        1
    """
    partition_by = spec.metadata.get(DAGSTER_METAXY_PARTITION_KEY)
    if not isinstance(partition_by, (str, Mapping)):
        return []
    return to_exprs(partition_conditions(partition_by, context_partition_keys(context)))


def build_metaxy_partition_filter(partition_metadata: Mapping[str, Any] | None) -> list[nw.Expr]:
    """Filters from ``"metaxy/partition"`` metadata: ``==`` for scalars, ``is_in`` for lists."""
    return to_exprs(slice_conditions(partition_metadata))


def input_conditions(context: dg.InputContext) -> list[Condition]:
    """Conditions for loading an upstream feature, from the **upstream** asset's metadata."""
    upstream = context.upstream_output
    metadata = upstream.definition_metadata if upstream is not None else None
    if not metadata:
        return []
    conditions: list[Condition] = []
    partition_by = metadata.get(DAGSTER_METAXY_PARTITION_KEY)
    if partition_by and context.has_asset_partitions and not _loads_all_partitions(context):
        keys = list(context.asset_partition_keys)
        # a mapping to no upstream partition (e.g. the day before the first one) loads no rows;
        # Metaxy applies no filter then and loads every partition
        conditions += partition_conditions(partition_by, keys) if keys else [
            Condition(column, ()) for column in partition_columns(partition_by)
        ]
    conditions += slice_conditions(metadata.get(DAGSTER_METAXY_PARTITION_METADATA_KEY))
    return conditions


def build_partition_filter_from_input_context(context: dg.InputContext) -> list[nw.Expr]:
    """Filters for loading an upstream feature in ``context`` (partition mapping applied)."""
    return to_exprs(input_conditions(context))


def _loads_all_partitions(context: dg.InputContext) -> bool:
    """Whether the input maps to every upstream partition (e.g. ``AllPartitionMapping``).

    Checked on Dagster's private subset object, so that loading "everything" never enumerates
    the partition keys; any change there just falls back to filtering by the keys.
    """
    try:
        from dagster._core.definitions.partitions.subset.all import AllPartitionsSubset

        return isinstance(getattr(context, "_asset_partitions_subset", None), AllPartitionsSubset)
    except ImportError:  # pragma: no cover - Dagster moved the class
        return False


# --------------------------------------------------------------------------- output frames


def prepare_output_frame(
    frame: pl.DataFrame,
    conditions: Sequence[Condition],
    dtypes: Mapping[str, Any] | None = None,
) -> pl.DataFrame:
    """Add missing single-valued partition/slice columns; reject rows of other partitions.

    Raises:
        PartitionMismatchError: A column is missing but several values are possible, or a row
            holds a value outside the run's partition(s)/slice.
    """
    for condition in conditions:
        column = condition.column
        if column not in frame.columns:
            if len(condition.values) != 1:
                msg = (
                    f"output has no column {column!r} and the run covers several partitions "
                    f"({condition.sql()}); add the column so each row names its partition"
                )
                raise PartitionMismatchError(msg)
            value = coerce_value(condition.values[0], (dtypes or {}).get(column))
            frame = frame.with_columns(pl.lit(value).alias(column))
            continue
        native_dtype = nw.from_native(frame.head(0)).schema[column]
        # a null partition value is outside the run's partitions too (``~`` keeps it null)
        belongs = condition.expr(native_dtype).fill_null(value=False)
        wrong = nw.from_native(frame).filter(~belongs).shape[0]
        if wrong:
            msg = f"{wrong} output row(s) do not belong to this run's partition ({condition.sql()})"
            raise PartitionMismatchError(msg)
    return frame


__all__ = [
    "Condition",
    "PartitionMismatchError",
    "build_metaxy_partition_filter",
    "build_partition_filter",
    "build_partition_filter_from_input_context",
    "get_partition_filter",
]
