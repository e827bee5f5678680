"""Literal values: parsing the typed literal texts, and the column-cast policy both renderers share.

Examples:
    >>> import datetime as dt
    >>> parse_timestamp("2026-01-01 12:00:00+02:00")
    datetime.datetime(2026, 1, 1, 10, 0)
    >>> cast_for([1, 0.5]), cast_for([dt.datetime(2026, 1, 1)]), cast_for([1, 2.0, "a"])
    (<CastTo.DOUBLE: 'DOUBLE'>, <CastTo.TIMESTAMP: 'TIMESTAMP'>, None)
"""

from __future__ import annotations

import datetime as dt
import enum
import math
import re
from collections.abc import Iterable
from typing import TypeAlias

Scalar: TypeAlias = bool | int | float | str | dt.date | dt.datetime | None
"""Python value of a literal. ``datetime`` values are naive and mean UTC."""

_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIMESTAMP_RE = re.compile(
    r"\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?)?(Z|[+-]\d{2}:\d{2})?"
)


def parse_date(text: str) -> dt.date:
    """Value of ``DATE 'YYYY-MM-DD'``; ``ValueError`` when malformed."""
    if not _DATE_RE.fullmatch(text):
        raise ValueError("expected YYYY-MM-DD")
    return dt.date.fromisoformat(text)


def parse_timestamp(text: str) -> dt.datetime:
    """Value of ``TIMESTAMP '…'`` as a naive UTC datetime (an explicit offset is converted)."""
    if not _TIMESTAMP_RE.fullmatch(text):
        raise ValueError("expected YYYY-MM-DD[ HH:MM[:SS[.ffffff]]][Z|+HH:MM]")
    value = dt.datetime.fromisoformat(text)
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def parse_number(text: str) -> int | float:
    """Value of a numeric literal token (``12``, ``1.5``, ``1e3``); ``ValueError`` if not finite."""
    value: int | float = int(text) if text.isdigit() else float(text)
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("numeric literal out of range")
    return value


def literal_kind(value: Scalar) -> str:
    """Literal family (``number``, ``string``, ``boolean``, ``temporal``, ``null``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "temporal" if isinstance(value, dt.date) else "string"


class CastTo(enum.Enum):
    """Type the column operands of one condition are cast to (value: DataFusion type name).

    * ``TIMESTAMP`` when a ``TIMESTAMP`` literal is involved: naive, UTC-aware and date columns
      then all compare as UTC wall-clock timestamps (a date column as its midnight).
    * ``DOUBLE`` when a non-integral (or huge, >= 2**53) float literal is involved: delta-rs casts
      a literal to the column's type, so ``int_col = 0.5`` would otherwise match ``0``
      (truncation) and ``int_col < 1e20`` fail; Polars would narrow ``0.1`` to a ``Float32``
      column's precision. Integral floats (``2.0``) are exact in every numeric type: no cast.
    """

    TIMESTAMP = "TIMESTAMP"
    DOUBLE = "DOUBLE"


def cast_for(values: Iterable[Scalar]) -> CastTo | None:
    """The cast the column operands of a condition with literal ``values`` need, if any."""
    values = list(values)
    if any(isinstance(v, dt.datetime) for v in values):
        return CastTo.TIMESTAMP
    if any(isinstance(v, float) and not (v.is_integer() and abs(v) < 2**53) for v in values):
        return CastTo.DOUBLE
    return None
