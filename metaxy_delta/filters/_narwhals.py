"""Validated filter tree → Narwhals expression.

Null handling follows SQL three-valued logic (comparisons with a null are null, ``AND``/``OR`` are
Kleene), and ``DataFrame.filter`` keeps only rows where the expression is true, so a filter keeps
exactly the rows that a Delta ``DELETE`` with the same predicate would remove.

``TIMESTAMP`` literals are naive UTC ``datetime`` values; the column side of a condition holding one
is cast to ``Datetime("us")`` (a UTC-aware column becomes its UTC wall clock, a date column its
midnight), so the same literal works on naive, UTC and date columns. Columns compared with a
non-integral number are cast to ``Float64`` (see :class:`~._literals.CastTo`).

Examples:
    >>> import polars as pl
    >>> import narwhals as nw
    >>> from metaxy_delta.filters._parse import parse_sql
    >>> from metaxy_delta.filters._narwhals import to_narwhals
    >>> df = nw.from_native(pl.DataFrame({"name": ["ab", "b", None]}))
    >>> df.filter(to_narwhals(parse_sql("name LIKE 'a%' OR name IS NULL")[1]))["name"].to_list()
    ['ab', None]
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence

import narwhals as nw

from ._ir import (
    Between,
    Column,
    CompareOp,
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
from ._literals import CastTo

OPERATORS: Mapping[CompareOp, Callable[[nw.Expr, nw.Expr], nw.Expr]] = {
    CompareOp.EQ: operator.eq,
    CompareOp.NE: operator.ne,
    CompareOp.LT: operator.lt,
    CompareOp.LE: operator.le,
    CompareOp.GT: operator.gt,
    CompareOp.GE: operator.ge,
}

_REGEX_META = frozenset("\\.+*?()|[]{}^$#&-~")
"""Characters escaped with a backslash; valid escapes in Rust (Polars), RE2 and Python ``re``."""

_LIKE_WILDCARDS: Mapping[str, str] = {"%": ".*", "_": "."}


def like_to_regex(pattern: str, *, case_insensitive: bool = False) -> str:
    """Translate a SQL ``LIKE`` pattern to an anchored regular expression.

    ``%`` matches any run of characters (newlines included), ``_`` exactly one, and a backslash
    makes the next character literal (a trailing backslash is itself literal), as in DataFusion.

    Examples:
        >>> like_to_regex("a%b_")
        '(?s)^a.*b.$'
        >>> print(like_to_regex(r"50\\% (net)", case_insensitive=True))
        (?si)^50% \\(net\\)$
    """
    out: list[str] = []
    chars = iter(pattern)
    for char in chars:
        if char == "\\":
            char = next(chars, "\\")
        elif char in _LIKE_WILDCARDS:
            out.append(_LIKE_WILDCARDS[char])
            continue
        out.append("\\" + char if char in _REGEX_META else char)
    flags = "si" if case_insensitive else "s"
    return f"(?{flags})^{''.join(out)}$"


CASTS: Mapping[CastTo, nw.dtypes.DType] = {
    CastTo.TIMESTAMP: nw.Datetime("us"),
    CastTo.DOUBLE: nw.Float64(),
}
"""Narwhals dtype of each :class:`~._literals.CastTo` (the Delta renderer has its own table)."""


def _operand(node: Operand, cast: CastTo | None = None) -> nw.Expr:
    if isinstance(node, Literal):
        return nw.lit(node.value)
    column = nw.col(node.name)
    return column if cast is None else column.cast(CASTS[cast])


class _NarwhalsRenderer:
    """:class:`~._ir.Renderer` producing ``nw.Expr``."""

    def column(self, node: Column) -> nw.Expr:
        return nw.col(node.name)

    def comparison(self, node: Comparison) -> nw.Expr:
        cast = condition_cast(node)
        return OPERATORS[node.op](_operand(node.left, cast), _operand(node.right, cast))

    def is_null(self, node: IsNull) -> nw.Expr:
        return _operand(node.operand).is_null()

    def in_list(self, node: InList) -> nw.Expr:
        if all(isinstance(v, str | bool) for v in node.values):
            return _operand(node.operand).is_in(list(node.values))
        # Polars >= 2 refuses `is_in` across numeric/temporal types (Float64 column, [1, 2]), so
        # numbers and dates become ORed equalities, which coerce like the comparisons do.
        subject = _operand(node.operand, condition_cast(node))
        return nw.any_horizontal(*(subject == nw.lit(v) for v in node.values), ignore_nulls=False)

    def between(self, node: Between) -> nw.Expr:
        # Spelled out rather than `is_between` so null bounds follow SQL's definition exactly.
        cast = condition_cast(node)
        subject, low, high = (_operand(op, cast) for op in (node.operand, node.low, node.high))
        return (subject >= low) & (subject <= high)

    def like(self, node: Like) -> nw.Expr:
        regex = like_to_regex(node.pattern, case_insensitive=node.case_insensitive)
        return _operand(node.operand).str.contains(regex, literal=False)

    def negate(self, operand: nw.Expr) -> nw.Expr:
        return ~operand

    def conjunction(self, operands: Sequence[nw.Expr]) -> nw.Expr:
        # Flat (not a chain of `&`), so wide filters stay fast; Kleene logic on nulls.
        return nw.all_horizontal(*operands, ignore_nulls=False)

    def disjunction(self, operands: Sequence[nw.Expr]) -> nw.Expr:
        return nw.any_horizontal(*operands, ignore_nulls=False)


def to_narwhals(node: Predicate) -> nw.Expr:
    """Render a validated predicate as a Narwhals expression."""
    return render(node, _NarwhalsRenderer())
