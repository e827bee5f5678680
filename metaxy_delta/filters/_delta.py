"""Validated filter tree → DataFusion predicate string for delta-rs.

The string is built token by token from the validated tree (never from user text): identifiers
are always double-quoted with embedded ``"`` doubled (so case, spaces and dots are kept), strings
are single-quoted with embedded ``'`` doubled (DataFusion does not treat backslashes as escapes
in string literals), numbers come from Python ``int``/``float`` values. Every compound operand of
``AND``/``OR``/``NOT`` is parenthesised, and ``NOT`` is pushed down to the conditions (see
:mod:`._normal` for the DataFusion NULL bug this avoids).

``DATE`` literals are rendered as ISO strings (``'2026-01-01'``), which DataFusion coerces to the
compared column's type (a date, or midnight UTC on a timestamp column). ``TIMESTAMP`` literals are
ISO strings too, compared with ``CAST(column AS TIMESTAMP)``: the column then becomes a naive
``Timestamp(ns)`` holding its UTC wall clock (Delta ``timestamp``), its value (``timestamp_ntz``)
or its midnight (``date``), so naive-UTC literals compare exactly as on the Narwhals side. Columns
compared with a non-integral number are cast to ``DOUBLE`` because delta-rs would otherwise cast
the literal to an integer column's type by truncation (``int_col = 0.5`` matching ``0``).
Consequence for :meth:`DeltaTable.file_uris`: delta-rs cannot prune on ``CAST(... AS DOUBLE)``, on
``LIKE``, or on ``CAST(date_column AS TIMESTAMP)``.

Examples:
    >>> from metaxy_delta.filters._parse import parse_sql
    >>> from metaxy_delta.filters._delta import to_delta
    >>> print(to_delta(parse_sql("\\"My Col\\" = 'it''s' AND NOT (n BETWEEN -1 AND 2.5)")[1]))
    ("My Col" = 'it''s') AND (NOT (CAST("n" AS DOUBLE) BETWEEN -1 AND 2.5))
    >>> print(to_delta(parse_sql("NOT (a = 1 OR b IN (2, 3))")[1]))
    (NOT ("a" = 1)) AND (NOT ("b" IN (2, 3)))
    >>> print(to_delta(parse_sql("ts >= TIMESTAMP '2026-01-01 12:00:00+02:00'")[1]))
    CAST("ts" AS TIMESTAMP) >= '2026-01-01T10:00:00'
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence

from ._ir import (
    Between,
    Column,
    Comparison,
    InList,
    IsNull,
    Like,
    Literal,
    Operand,
    Predicate,
    condition_cast,
    render,
)
from ._literals import CastTo, Scalar
from ._normal import normalise


def quote_identifier(name: str) -> str:
    """Double-quote a column name for DataFusion.

    Examples:
        >>> print(quote_identifier('say "hi"'))
        "say ""hi\"\"\"
    """
    return '"' + name.replace('"', '""') + '"'


def quote_string(value: str) -> str:
    """Single-quote a string literal for DataFusion.

    Examples:
        >>> print(quote_string("a' OR '1'='1"))
        'a'' OR ''1''=''1'
    """
    return "'" + value.replace("'", "''") + "'"


def sql_literal(value: Scalar) -> str:
    """Render a literal value (``None`` → ``NULL``; dates/timestamps as ISO strings).

    Examples:
        >>> [sql_literal(v) for v in (None, True, -3, 0.5, dt.date(2026, 1, 2))]
        ['NULL', 'TRUE', '-3', '0.5', "'2026-01-02'"]
    """
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot render non-finite float {value!r}")
        return repr(value)
    if isinstance(value, dt.date):  # datetime is a date subclass; both render as ISO text
        return quote_string(value.isoformat())
    return quote_string(value)


CASTS: Mapping[CastTo, str] = {CastTo.TIMESTAMP: "TIMESTAMP", CastTo.DOUBLE: "DOUBLE"}
"""DataFusion type of each :class:`~._literals.CastTo` (the Narwhals renderer has its own table)."""


_LIKE_SPECIAL = frozenset("%_\\")


def _operand(node: Operand, cast: CastTo | None = None) -> str:
    if isinstance(node, Literal):
        return sql_literal(node.value)
    column = quote_identifier(node.name)
    return column if cast is None else f"CAST({column} AS {CASTS[cast]})"


class _DeltaRenderer:
    """:class:`~._ir.Renderer` producing DataFusion SQL text."""

    def column(self, node: Column) -> str:
        return quote_identifier(node.name)

    def comparison(self, node: Comparison) -> str:
        cast = condition_cast(node)
        return f"{_operand(node.left, cast)} {node.op.value} {_operand(node.right, cast)}"

    def is_null(self, node: IsNull) -> str:
        return f"{_operand(node.operand)} IS NULL"

    def in_list(self, node: InList) -> str:
        values = ", ".join(sql_literal(v) for v in node.values)
        return f"{_operand(node.operand, condition_cast(node))} IN ({values})"

    def between(self, node: Between) -> str:
        cast = condition_cast(node)
        subject, low, high = (_operand(op, cast) for op in (node.operand, node.low, node.high))
        return f"{subject} BETWEEN {low} AND {high}"

    def like(self, node: Like) -> str:
        if not node.case_insensitive and not set(node.pattern) & _LIKE_SPECIAL:
            # A pattern without wildcards is an equality. Rendered as LIKE, DataFusion (delta-rs
            # 1.6) gets ``s = 'a' AND s LIKE 'a'`` and ``s = 'a' AND NOT (s LIKE 'a')`` wrong
            # on a row with s = 'a' (the second made a hard delete remove a row it did not match).
            return f"{_operand(node.operand)} = {quote_string(node.pattern)}"
        keyword = "ILIKE" if node.case_insensitive else "LIKE"
        return f"{_operand(node.operand)} {keyword} {quote_string(node.pattern)}"

    def negate(self, operand: str) -> str:
        return f"NOT ({operand})"

    def conjunction(self, operands: Sequence[str]) -> str:
        return " AND ".join(f"({op})" for op in operands)

    def disjunction(self, operands: Sequence[str]) -> str:
        return " OR ".join(f"({op})" for op in operands)


def to_delta(node: Predicate) -> str:
    """Render a validated predicate as a predicate string for delta-rs / DataFusion.

    The tree is first put in the NULL-safe normal form of :func:`._normal.normalise`.
    """
    return render(normalise(node), _DeltaRenderer())
