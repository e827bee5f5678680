"""Delta file statistics (``numRecords``, min/max, null counts) of frames about to be written.

The store writes its own data files (see ``_files``), so it records their statistics in the
``add`` actions itself, in the shape delta-rs gives them: readers prune files with them.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator, Sequence
from datetime import date, datetime, timedelta
from typing import Any

import polars as pl

STATS_STRING_PREFIX = 32
"""Longest string kept in file statistics (delta-rs's truncation length)."""
SIGNED_INTEGERS = (pl.Int8, pl.Int16, pl.Int32, pl.Int64)
"""Integer dtypes that get min/max statistics (and that Polars-written files may hold)."""


def file_stats(frame: pl.DataFrame, *, unbounded: Collection[str] = ()) -> str:
    """Delta statistics JSON of one file: ``numRecords``, ``minValues``, ``maxValues``,
    ``nullCount``, nested like the schema.

    Min/max are kept for strings (a longer minimum is cut to its first
    :data:`STATS_STRING_PREFIX` characters, a longer maximum is left out), integers, dates and
    datetimes (to the millisecond, rounded outwards), as delta-rs records them; floats, booleans,
    binaries and lists have null counts only (lists none), and so do the columns named in
    ``unbounded`` (top-level names; struct fields included).

    Example:
        >>> import polars as pl
        >>> file_stats(pl.DataFrame({"id": ["b", "a", None], "s": [{"x": 1}, {"x": 3}, None]}))
        '{"numRecords": 3, "minValues": {"id": "a", "s": {"x": 1}}, "maxValues": {"id": "b", "s": {"x": 3}}, "nullCount": {"id": 1, "s": {"x": 1}}}'
        >>> file_stats(pl.DataFrame({"id": ["a"], "h": ["9f"]}), unbounded={"h"})
        '{"numRecords": 1, "minValues": {"id": "a"}, "maxValues": {"id": "a"}, "nullCount": {"id": 0, "h": 0}}'
    """
    return files_stats([frame], unbounded=unbounded)[0]


def files_stats(
    frames: Sequence[pl.DataFrame],
    *,
    unbounded: Collection[str] = (),
    constant: Collection[str] = (),
) -> list[str]:
    """:func:`file_stats` of frames of one schema, computed in one parallel Polars call.

    Columns named in ``constant`` hold one value in every row, as the caller guarantees: their
    statistics come from the first row (10M-row leaf: ~0.05 s less than a pass over them).

    Example:
        >>> frame = pl.DataFrame({"id": ["b", "a"], "v": ["3d4e5cee"] * 2, "run": [None] * 2})
        >>> files_stats([frame], constant={"v", "run"}) == [file_stats(frame)]
        True
    """
    if not frames:
        return []
    leaves, exprs = _aggregations(frames[0].schema, unbounded, constant)
    if exprs:
        rows = [r.row(0, named=True) for r in pl.collect_all([f.lazy().select(exprs) for f in frames])]
    else:
        rows = [{} for _ in frames]
    return [_stats_json(frame.height, leaves, row) for frame, row in zip(frames, rows)]


def partition_stats(
    frame: pl.DataFrame,
    partitions: Sequence[str],
    *,
    unbounded: Collection[str] = (),
    constant: Collection[str] = (),
) -> dict[tuple[Any, ...], str]:
    """:func:`file_stats` of each partition's rows (without the partition columns), keyed by
    the partition values: one ``group_by`` over ``frame``, where :func:`files_stats` of the
    split frames runs one query per file (1M rows over 100 partitions: ~0.085 s).

    Example:
        >>> frame = pl.DataFrame({"day": ["a", "b", "a"], "id": ["x", "y", "z"]})
        >>> stats = partition_stats(frame, ["day"])
        >>> stats[("a",)] == file_stats(frame.filter(pl.col("day") == "a").drop("day"))
        True
    """
    schema = pl.Schema({c: t for c, t in frame.schema.items() if c not in partitions})
    leaves, exprs = _aggregations(schema, unbounded, constant)
    keys = [pl.col(c).alias(f"__mxd_key{i}") for i, c in enumerate(partitions)]  # no clash
    grouped = frame.group_by(keys).agg(pl.len().alias("__mxd_rows"), *exprs)
    return {
        tuple(row[f"__mxd_key{i}"] for i in range(len(partitions))): _stats_json(
            row["__mxd_rows"], leaves, row
        )
        for row in grouped.iter_rows(named=True)
    }


def _aggregations(
    schema: Any, unbounded: Collection[str], constant: Collection[str]
) -> tuple[list[tuple[tuple[str, ...], pl.DataType]], list[pl.Expr]]:
    """The leaf columns of ``schema`` with statistics and the expressions computing them."""
    leaves = [(path, dtype) for path, dtype in _leaves(schema) if not isinstance(dtype, pl.List)]
    exprs: list[pl.Expr] = []
    for i, (path, dtype) in enumerate(leaves):
        column = _column(path)
        if path[0] in constant:
            null = column.first().is_null()
            exprs.append(pl.when(null).then(pl.len()).otherwise(0).alias(f"n{i}"))
            column = column.first()
        else:
            exprs.append(column.null_count().alias(f"n{i}"))
        if _has_bounds(dtype) and path[0] not in unbounded:
            exprs += [column.min().alias(f"lo{i}"), column.max().alias(f"hi{i}")]
    return leaves, exprs


def _stats_json(
    height: int, leaves: list[tuple[tuple[str, ...], pl.DataType]], row: dict[str, Any]
) -> str:
    stats: dict[str, Any] = {"numRecords": height, "minValues": {}, "maxValues": {}}
    stats["nullCount"] = {}
    for i, (path, dtype) in enumerate(leaves):
        _put(stats["nullCount"], path, row[f"n{i}"])
        low, high = row.get(f"lo{i}"), row.get(f"hi{i}")
        if low is not None:
            _put(stats["minValues"], path, _bound(low, dtype, upper=False))
        if high is not None and (value := _bound(high, dtype, upper=True)) is not None:
            _put(stats["maxValues"], path, value)
    return json.dumps(stats)


def _leaves(
    schema: Any, prefix: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], pl.DataType]]:
    for name, dtype in schema.items():
        if isinstance(dtype, pl.Struct):
            yield from _leaves({f.name: f.dtype for f in dtype.fields}, (*prefix, name))
        else:
            yield (*prefix, name), dtype


def _column(path: tuple[str, ...]) -> pl.Expr:
    expr = pl.col(path[0])
    for name in path[1:]:
        expr = expr.struct.field(name)
    return expr


def _has_bounds(dtype: pl.DataType) -> bool:
    return isinstance(dtype, (pl.String, pl.Date, pl.Datetime, *SIGNED_INTEGERS))


def _bound(value: Any, dtype: pl.DataType, *, upper: bool) -> Any:
    if isinstance(value, datetime):
        if upper and value.microsecond % 1000:
            value += timedelta(microseconds=1000 - value.microsecond % 1000)
        return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str) and len(value) > STATS_STRING_PREFIX:
        return None if upper else value[:STATS_STRING_PREFIX]
    return value


def _put(target: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for name in path[:-1]:
        target = target.setdefault(name, {})
    target[path[-1]] = value
