"""Conversion of narwhals-compatible frames to Polars LazyFrames (the engine's native type)."""

from __future__ import annotations

from typing import Any

import narwhals as nw
import polars as pl


def as_polars_lazy(frame: Any) -> pl.LazyFrame:
    """Any narwhals-compatible frame (Polars, pandas, PyArrow, narwhals) as a Polars LazyFrame.

    Example:
        >>> import pyarrow as pa
        >>> as_polars_lazy(pa.table({"a": [1]})).collect().shape
        (1, 1)
    """
    if isinstance(frame, pl.LazyFrame):
        return frame
    if isinstance(frame, pl.DataFrame):
        return frame.lazy()
    if isinstance(frame, (nw.DataFrame, nw.LazyFrame)):
        native = frame.to_native()
        if isinstance(native, (pl.DataFrame, pl.LazyFrame)):
            return as_polars_lazy(native)
        frame = native
    try:
        converted = nw.from_native(frame)
    except TypeError:
        raise TypeError(
            f"expected a dataframe (Polars, pandas, PyArrow or narwhals), got {type(frame).__name__}"
        ) from None
    if isinstance(converted, nw.LazyFrame):
        return pl.LazyFrame(converted.collect().to_arrow())
    return pl.from_arrow(converted.to_arrow()).lazy()  # type: ignore[union-attr]
