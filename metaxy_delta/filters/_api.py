"""Public entry points: :class:`ParsedFilter` and the parse / combine / render helpers."""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import reduce

import narwhals as nw
from sqlglot import exp

from metaxy_delta.errors import FilterParseError

from ._delta import to_delta
from ._ir import (
    Between,
    Comparison,
    InList,
    Like,
    Predicate,
    columns_of,
    condition_cast,
    iter_nodes,
)
from ._literals import CastTo
from ._narwhals import to_narwhals
from ._parse import parse_sql


@dataclass(frozen=True)
class ParsedFilter:
    """A validated SQL filter, renderable as a Narwhals expression or a Delta predicate.

    Attributes:
        source: the text as the user wrote it (also ``str(parsed)``).
        predicate: the validated filter tree both renderers walk.
        ast: sqlglot's parse tree of ``source`` (do not mutate it).

    Examples:
        >>> import polars as pl
        >>> import narwhals as nw
        >>> f = parse_filter("\\"Sample Id\\" IN ('a', 'b') AND score >= 0.5")
        >>> sorted(f.columns)
        ['Sample Id', 'score']
        >>> print(f.to_delta_predicate())
        ("Sample Id" IN ('a', 'b')) AND (CAST("score" AS DOUBLE) >= 0.5)
        >>> df = nw.from_native(pl.DataFrame({"Sample Id": ["a", "c"], "score": [0.9, 0.9]}))
        >>> df.filter(f.to_expr())["Sample Id"].to_list()
        ['a']
    """

    source: str
    predicate: Predicate
    ast: exp.Expression = field(compare=False, repr=False)

    def __str__(self) -> str:
        return self.source

    def to_expr(self) -> nw.Expr:
        """The filter as a Narwhals expression (true for the rows it keeps)."""
        return to_narwhals(self.predicate)

    def to_delta_predicate(self) -> str:
        """The filter as a DataFusion predicate for ``DeltaTable.delete`` / ``file_uris``."""
        return to_delta(self.predicate)

    @property
    def columns(self) -> frozenset[str]:
        """Names of the columns the filter references."""
        return columns_of(self.predicate)

    @property
    def supports_file_pruning(self) -> bool:
        """Whether delta-rs can use the predicate as ``file_uris(file_pruning_predicate=...)``.

        delta-rs cannot turn ``LIKE``/``ILIKE`` or a column cast to ``DOUBLE`` (a comparison
        with a non-integral number) into a file-skipping expression. A ``TIMESTAMP`` literal
        prunes on timestamp columns but not on a ``date`` column (not knowable from the text), so
        callers should still fall back to no pruning if ``file_uris`` raises.
        ``DeltaTable.delete`` accepts every predicate.

        Examples:
            >>> parse_filter("part = 'a'").supports_file_pruning
            True
            >>> parse_filter("part LIKE 'a%'").supports_file_pruning
            False
            >>> parse_filter("n > 0.5").supports_file_pruning
            False
        """
        return not any(
            isinstance(node, Like)
            or (
                isinstance(node, Comparison | InList | Between)
                and condition_cast(node) is CastTo.DOUBLE
            )
            for node in iter_nodes(self.predicate)
        )


def parse_filter(sql: str) -> ParsedFilter:
    """Parse and validate one SQL filter condition.

    Raises:
        FilterParseError: ``sql`` is not a str, is empty, or is not a single supported condition;
            the message quotes the offending fragment and the whole filter.

    Examples:
        >>> parse_filter("status = 'ok'").predicate
        Comparison(op=<CompareOp.EQ: '='>, left=Column(name='status'), right=Literal(value='ok'))
        >>> try:
        ...     parse_filter("x IN (SELECT 1)")
        ... except FilterParseError as err:
        ...     print(err)
        Unsupported expression in filter "x IN (SELECT 1)": (SELECT 1)
    """
    ast, predicate = parse_sql(sql)
    return ParsedFilter(source=sql, predicate=predicate, ast=ast)


def parse_filter_string(sql: str) -> nw.Expr:
    """Parse one SQL filter condition into a Narwhals expression (Metaxy's entry point).

    Examples:
        >>> import polars as pl
        >>> import narwhals as nw
        >>> df = nw.from_native(pl.DataFrame({"x": [1, 2, None]}))
        >>> df.filter(parse_filter_string("x = NULL OR x > 1"))["x"].to_list()
        [2, None]
    """
    return parse_filter(sql).to_expr()


def combine_filters(exprs: Sequence[nw.Expr]) -> nw.Expr | None:
    """AND together ``exprs``; ``None`` when there are none.

    Examples:
        >>> combine_filters([]) is None
        True
    """
    return reduce(operator.and_, exprs) if exprs else None


def parse_filter_strings(sqls: Sequence[str]) -> nw.Expr | None:
    """Parse SQL filter conditions and AND them; ``None`` for an empty sequence.

    A single ``str`` is treated as one filter (not as a sequence of characters).

    Examples:
        >>> import polars as pl
        >>> import narwhals as nw
        >>> df = nw.from_native(pl.DataFrame({"x": [1, 2, 3]}))
        >>> df.filter(parse_filter_strings(["x > 1", "x != 3"]))["x"].to_list()
        [2]
        >>> parse_filter_strings([]) is None
        True
    """
    items = [sqls] if isinstance(sqls, str) else list(sqls)
    return combine_filters([parse_filter_string(sql) for sql in items])


def _as_parsed(item: str | ParsedFilter) -> ParsedFilter:
    return item if isinstance(item, ParsedFilter) else parse_filter(item)


def to_delta_predicate(filters: str | ParsedFilter | Sequence[str | ParsedFilter]) -> str:
    """Render one or more filters (ANDed) as a predicate string for delta-rs.

    The result is meant for ``DeltaTable.delete(predicate)`` and
    ``DeltaTable.file_uris(file_pruning_predicate=...)`` (see
    :attr:`ParsedFilter.supports_file_pruning`). ``x = NULL`` renders as ``x IS NULL``, like on the
    Narwhals side.

    Raises:
        FilterParseError: a string does not parse, or ``filters`` is an empty sequence (an
            empty predicate would match every row).

    Examples:
        >>> print(to_delta_predicate("name = 'a'' OR ''1''=''1'"))
        "name" = 'a'' OR ''1''=''1'
        >>> print(to_delta_predicate(["x = NULL", "\\"Y\\" < 2"]))
        ("x" IS NULL) AND ("Y" < 2)
    """
    if isinstance(filters, str | ParsedFilter) or not isinstance(filters, Sequence):
        return _as_parsed(filters).to_delta_predicate()  # non-str input raises FilterParseError
    parsed = [_as_parsed(item) for item in filters]
    if not parsed:
        raise FilterParseError(
            "to_delta_predicate needs at least one filter, got an empty sequence"
        )
    if len(parsed) == 1:
        return parsed[0].to_delta_predicate()
    return " AND ".join(f"({item.to_delta_predicate()})" for item in parsed)
