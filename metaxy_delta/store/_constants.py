"""Constant columns of a write, in the forms Polars' Parquet writer encodes fastest.

A write stamps several system columns with one value for every row (``metaxy_feature_version``,
``metaxy_project_version``, ``metaxy_materialization_id``, the timestamps). Written as they come
(scalar columns), they cost a 10M-row leaf write about 0.5 s; two things remove most of that:

- :func:`share_constants` turns them into chunks that share one buffer
  (:func:`constant_series`): a scalar column is materialised again for every piece the writer
  encodes.
- :func:`as_enums` hands String constants to the writer as Enums of one category (no category
  for nulls). Polars dictionary-encodes a constant String column anyway, but builds that
  dictionary by hashing every value (~0.1 s per 10M rows and column); an Enum brings its
  dictionary along (~0.01 s). Written with the String frame's footer metadata
  (:func:`footer_metadata`: Polars would otherwise declare a dictionary type in the file's Arrow
  schema, which ``scan_delta`` refuses), the file is byte for byte the one the String frame
  gives. :func:`enums_encode_identically` checks that on a small frame before a writer relies on
  it, so a Polars release that writes them differently only costs the speed-up.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Collection
from typing import Any

import polars as pl

CONSTANT_CHUNK_ROWS = 64 * 1024
"""Rows per chunk of :func:`constant_series`."""
SHARED_CONSTANTS_MIN_ROWS = 4 * CONSTANT_CHUNK_ROWS
"""Smaller files keep their scalar columns: re-stamping costs ~1 ms per file, more than their
writer saves (1M rows over 100 partitions: ~0.2 s more)."""


def constant_series(name: str, value: object, dtype: pl.DataType, n: int) -> pl.Series:
    """``n`` copies of ``value``: chunks of :data:`CONSTANT_CHUNK_ROWS` rows sharing one buffer.

    (Materialising the whole column costs an allocation of ``n`` values instead, ~0.1-0.2 s of
    page faults per 10M rows.)

    Example:
        >>> s = constant_series("v", "3d4e5cee", pl.String(), 150_000)
        >>> s.len(), s.n_chunks(), s.unique().to_list()
        (150000, 3, ['3d4e5cee'])
    """
    chunk = pl.select(pl.repeat(value, min(n, CONSTANT_CHUNK_ROWS), dtype=dtype).alias(name))
    column = chunk.to_series()
    if n <= CONSTANT_CHUNK_ROWS:
        return column
    whole, rest = divmod(n, CONSTANT_CHUNK_ROWS)
    return pl.concat([column] * whole + ([column.slice(0, rest)] if rest else []), rechunk=False)


def share_constants(frame: pl.DataFrame, columns: Collection[str]) -> pl.DataFrame:
    """``frame`` with its constant ``columns`` as :func:`constant_series` (unchanged below
    :data:`SHARED_CONSTANTS_MIN_ROWS` rows)."""
    names = [c for c in columns if c in frame.columns]
    if not names or frame.height < SHARED_CONSTANTS_MIN_ROWS:
        return frame
    return _restamped(frame, names, lambda column, _: frame.schema[column])


def as_enums(frame: pl.DataFrame, columns: Collection[str]) -> pl.DataFrame:
    """``frame`` with its constant String ``columns`` as Enums of their one value (for the
    Parquet writer only: write it with :func:`footer_metadata` of ``frame``).

    Example:
        >>> frame = pl.DataFrame({"id": ["a", "b"], "v": ["3d4e5cee"] * 2, "run": [None, None]})
        >>> as_enums(frame.cast({"run": pl.String}), ["v", "run"]).dtypes
        [String, Enum(categories=['3d4e5cee']), Enum(categories=[])]
    """
    names = [c for c in columns if c in frame.columns and frame.schema[c] == pl.String]
    if not names or frame.height == 0:
        return frame
    return _restamped(frame, names, lambda _, value: pl.Enum([] if value is None else [value]))


def _restamped(
    frame: pl.DataFrame, names: list[str], dtype: Callable[[str, object], pl.DataType]
) -> pl.DataFrame:
    """``frame`` with the constant columns ``names`` rebuilt as :func:`constant_series` of
    their first value, of ``dtype(name, value)``."""
    first = frame.head(1).select(names).row(0)  # select() on all rows would copy them
    return frame.with_columns(
        constant_series(c, v, dtype(c, v), frame.height) for c, v in zip(names, first)
    )


def footer_metadata(frame: pl.DataFrame, options: dict[str, Any]) -> dict[str, str]:
    """The key-value metadata (the Arrow schema) Polars writes into the footer of a Parquet
    file of ``frame``'s schema, written with ``options``."""
    buffer = io.BytesIO()
    frame.head(0).write_parquet(buffer, **options)
    return pl.read_parquet_metadata(buffer.getvalue())


def enums_encode_identically(options: dict[str, Any]) -> bool:
    """Whether this Polars writes a frame whose String constants are :func:`as_enums` with the
    String frame's :func:`footer_metadata` byte for byte as it writes the String frame."""
    frame = pl.DataFrame(
        {"id": ["a", "b", "c"], "v": ["3d4e5cee"] * 3, "run": [None] * 3},
        schema={"id": pl.String, "v": pl.String, "run": pl.String},
    )
    try:
        plain, enums = io.BytesIO(), io.BytesIO()
        frame.write_parquet(plain, **options)
        metadata = footer_metadata(frame, options)
        as_enums(frame, ["v", "run"]).write_parquet(enums, metadata=metadata, **options)
    except Exception:  # noqa: BLE001 - an older Polars without ``metadata``: no Enums
        return False
    return plain.getvalue() == enums.getvalue()
