"""SQL filter text → validated :mod:`._ir` tree, via sqlglot's tokenizer and parser.

Everything is allow-listed: a sqlglot node type that has no entry in the dispatch tables below, or
an entry with an argument the table does not expect (``IN (SELECT ...)``, ``BETWEEN SYMMETRIC``),
is rejected with a :class:`~metaxy_delta.errors.FilterParseError` quoting the fragment. Comments
and ``;`` are rejected at token level, before parsing.

Examples:
    >>> from metaxy_delta.filters._parse import parse_sql
    >>> parse_sql("name != NULL")[1]
    Not(operand=IsNull(operand=Column(name='name')))
    >>> try:
    ...     parse_sql("upper(name) = 'A'")
    ... except FilterParseError as err:
    ...     print(err)
    Unsupported expression in filter "upper(name) = 'A'": UPPER(name)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from sqlglot import Token, TokenType, exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError, TokenError

from metaxy_delta.errors import FilterParseError

from ._ir import (
    And,
    Between,
    Column,
    CompareOp,
    Comparison,
    InList,
    IsNull,
    Like,
    Literal,
    Not,
    Operand,
    Or,
    Predicate,
)
from ._literals import Scalar, literal_kind, parse_date, parse_number, parse_timestamp

_DIALECT = Dialect.get_or_raise(None)

COMPARISONS: Mapping[type[exp.Expression], CompareOp] = {
    exp.EQ: CompareOp.EQ,
    exp.NEQ: CompareOp.NE,
    exp.LT: CompareOp.LT,
    exp.LTE: CompareOp.LE,
    exp.GT: CompareOp.GT,
    exp.GTE: CompareOp.GE,
}
"""sqlglot comparison node → operator (``<>`` and ``!=`` both parse to ``exp.NEQ``)."""

_BINARY = frozenset({"this", "expression"})
_ALLOWED_ARGS: Mapping[type[exp.Expression], frozenset[str]] = {
    **{cls: _BINARY for cls in (*COMPARISONS, exp.And, exp.Or, exp.Is, exp.Dot)},
    exp.Not: frozenset({"this"}),
    exp.Paren: frozenset({"this"}),
    exp.Neg: frozenset({"this"}),
    exp.In: frozenset({"this", "expressions"}),
    exp.Between: frozenset({"this", "low", "high"}),
    exp.Like: frozenset({"this", "expression", "negate"}),
    exp.ILike: frozenset({"this", "expression", "negate"}),
    exp.Column: frozenset({"this", "table", "db", "catalog"}),
    exp.Identifier: frozenset({"this", "quoted"}),
    exp.Literal: frozenset({"this", "is_string"}),
    exp.Boolean: frozenset({"this"}),
    exp.Null: frozenset(),
    exp.Cast: frozenset({"this", "to"}),
    exp.DataType: frozenset({"this", "nested"}),
}
"""Every sqlglot node type a filter may contain, with the arguments it may set."""


_TYPED_LITERALS: Mapping[exp.DType, tuple[TokenType, Callable[[str], Scalar]]] = {
    exp.DataType.Type.DATE: (TokenType.DATE, parse_date),
    exp.DataType.Type.TIMESTAMP: (TokenType.TIMESTAMP, parse_timestamp),
}
"""``DATE '…'`` / ``TIMESTAMP '…'``: keyword token that must precede the string, and its parser."""


class _Builder:
    """Turns one parsed statement into a :data:`~._ir.Predicate`, validating as it walks."""

    def __init__(self, source: str, tokens: list[Token]) -> None:
        self.source = source
        self.tokens = tokens
        self._predicates: Mapping[type[exp.Expression], Callable[[Any], Predicate]] = {
            **{cls: self._comparison for cls in COMPARISONS},
            exp.Boolean: self._constant,
            exp.And: self._bool_op,
            exp.Or: self._bool_op,
            exp.Not: lambda node: Not(self.predicate(node.this)),
            exp.Paren: lambda node: self.predicate(node.this),
            exp.Is: self._is,
            exp.In: self._in,
            exp.Between: self._between,
            exp.Like: self._like,
            exp.ILike: self._like,
            exp.Column: self._column,
            exp.Dot: self._column,
        }

    def error(
        self, node: exp.Expression, reason: str = "Unsupported expression", *, fragment: str = ""
    ) -> FilterParseError:
        """Error quoting the whole filter and the offending fragment (default: ``node`` as SQL)."""
        fragment = fragment or node.sql()
        return FilterParseError(
            f'{reason} in filter "{self.source}": {fragment}', source=self.source
        )

    def check(self, node: exp.Expression) -> None:
        """Reject node types and arguments outside :data:`_ALLOWED_ARGS`, and attached comments."""
        allowed = _ALLOWED_ARGS.get(type(node))
        if allowed is None:
            raise self.error(node)
        for key, value in node.args.items():
            if key not in allowed and value not in (None, False, [], ""):
                raise self.error(value if isinstance(value, exp.Expression) else node)
        if node.comments:
            raise self.error(node, "Comments are not allowed")

    def predicate(self, node: exp.Expression) -> Predicate:
        self.check(node)
        handler = self._predicates.get(type(node))
        if handler is None:
            raise self.error(node, "Expected a boolean condition")
        return handler(node)

    def _bool_op(self, node: exp.And | exp.Or) -> Predicate:
        # Iterative over the (left-deep) chain so `a AND b AND ...` has no depth limit.
        cls = And if isinstance(node, exp.And) else Or
        operands: list[Predicate] = []
        pending: list[exp.Expression] = [node]
        while pending:
            current = pending.pop()
            if type(current) is type(node):
                self.check(current)
                pending.extend((current.expression, current.this))
                continue
            built = self.predicate(current)
            operands.extend(built.operands if isinstance(built, cls) else [built])
        return cls(tuple(operands))

    def operand(self, node: exp.Expression) -> Operand:
        self.check(node)
        if isinstance(node, exp.Paren):
            return self.operand(node.this)
        if isinstance(node, exp.Column | exp.Dot):
            return self._column(node)
        if isinstance(node, exp.Literal):
            return Literal(node.this if node.is_string else self._number(node))
        if isinstance(node, exp.Boolean):
            return Literal(bool(node.this))
        if isinstance(node, exp.Null):
            return Literal(None)
        if isinstance(node, exp.Neg):
            inner = self.operand(node.this)
            if isinstance(inner, Literal) and literal_kind(inner.value) == "number":
                assert isinstance(inner.value, int | float)
                return Literal(-inner.value)
            raise self.error(node, "Unary minus applies only to numeric literals")
        if isinstance(node, exp.Cast):
            return self._typed_literal(node)
        raise self.error(node, "Unsupported operand")

    def _number(self, node: exp.Literal) -> int | float:
        try:
            return parse_number(str(node.this))
        except ValueError as err:
            raise self.error(node, f"Invalid numeric literal ({err})") from None

    def _typed_literal(self, node: exp.Cast) -> Literal:
        to, lit = node.args["to"], node.this
        self.check(to)
        expected = _TYPED_LITERALS.get(to.this)
        # sqlglot parses CAST('x' AS DATE), 'x'::DATE and DATE 'x' to the same tree: only the
        # last one is a literal, recognised by the keyword token right before the string token.
        if expected is None or not isinstance(lit, exp.Literal) or not lit.is_string:
            raise self.error(node)
        self.check(lit)
        start = lit.meta.get("start")
        index = next((i for i, t in enumerate(self.tokens) if t.start == start), 0)
        if index == 0 or self.tokens[index - 1].token_type != expected[0]:
            raise self.error(node)
        try:
            return Literal(expected[1](str(lit.this)))
        except ValueError as err:
            keyword = to.this.value
            reason = f"Invalid {keyword} literal ({err})"
            raise self.error(node, reason, fragment=f"{keyword} {lit.sql()}") from None

    def _column(self, node: exp.Column | exp.Dot) -> Column:
        self.check(node)
        parts: list[str] = []
        for part in (
            (node.this, node.expression)
            if isinstance(node, exp.Dot)
            else reversed([node.args.get(k) for k in ("this", "table", "db", "catalog")])
        ):
            if part is None:
                continue
            if isinstance(part, exp.Column | exp.Dot):
                parts.append(self._column(part).name)
                continue
            if not isinstance(part, exp.Identifier):
                raise self.error(node, "Unsupported column reference")
            self.check(part)
            if not part.this:
                raise self.error(node, "Empty column name")
            parts.append(part.this)
        return Column(".".join(parts))

    def _with_column(self, node: exp.Expression, *operands: Operand) -> None:
        if not any(isinstance(op, Column) for op in operands):
            raise self.error(node, "Condition references no column")

    def _constant(self, node: exp.Expression) -> Predicate:
        raise self.error(node, "Condition references no column")

    def _comparison(self, node: exp.Expression) -> Predicate:
        return self._compare(node, COMPARISONS[type(node)])

    def _is(self, node: exp.Is) -> Predicate:
        # `x IS NULL` → IsNull; `IS` with any other operand means equality (Metaxy semantics).
        return self._compare(node, CompareOp.EQ)

    def _compare(self, node: exp.Expression, op: CompareOp) -> Predicate:
        left, right = self.operand(node.this), self.operand(node.args["expression"])
        self._with_column(node, left, right)
        nulls = [side for side in (left, right) if side == Literal(None)]
        if not nulls:
            return Comparison(op, left, right)
        # Metaxy semantics: `x = NULL` means `x IS NULL`, `x != NULL` means `x IS NOT NULL`.
        other = right if left in nulls else left
        if op is CompareOp.EQ:
            return IsNull(other)
        if op is CompareOp.NE:
            return Not(IsNull(other))
        raise self.error(node, "NULL can only be compared with =, !=, <> or IS")

    def _in(self, node: exp.In) -> Predicate:
        subject = self.operand(node.this)
        if not isinstance(subject, Column):
            raise self.error(node, "IN needs a column on its left")
        if not node.expressions:
            raise self.error(node, "Empty IN list")
        values: list[Scalar] = []
        for item in node.expressions:
            value = self.operand(item)
            if not isinstance(value, Literal):
                raise self.error(item, "IN list items must be literals")
            if value.value is None:
                raise self.error(item, "NULL is not allowed in an IN list (use IS NULL)")
            values.append(value.value)
        if len({literal_kind(v) for v in values}) > 1:
            raise self.error(node, "IN list mixes literal types")
        return InList(subject, tuple(values))

    def _between(self, node: exp.Between) -> Predicate:
        subject, low, high = (self.operand(node.args[k]) for k in ("this", "low", "high"))
        self._with_column(node, subject, low, high)
        if Literal(None) in (subject, low, high):
            raise self.error(node, "NULL is not allowed in BETWEEN")
        return Between(subject, low, high)

    def _like(self, node: exp.Like | exp.ILike) -> Predicate:
        subject, pattern = self.operand(node.this), self.operand(node.expression)
        if not isinstance(subject, Column):
            raise self.error(node, "LIKE needs a column on its left")
        if not (isinstance(pattern, Literal) and isinstance(pattern.value, str)):
            raise self.error(node.expression, "LIKE pattern must be a string literal")
        like = Like(subject, pattern.value, case_insensitive=isinstance(node, exp.ILike))
        return Not(like) if node.args.get("negate") else like


def _describe(err: ParseError) -> str:
    if not err.errors:
        return str(err).splitlines()[0]
    first = err.errors[0]
    near = f" near {first['highlight']!r}" if first.get("highlight") else ""
    description = re.sub(r"<class '(?:\w+\.)*(\w+)'>", r"\1", str(first["description"]))
    return f"{description}{near} (line {first['line']}, col {first['col']})"


def parse_sql(source: str) -> tuple[exp.Expression, Predicate]:
    """Parse one SQL condition into ``(sqlglot AST, validated predicate tree)``.

    Raises:
        FilterParseError: the text is empty, not a single supported condition, or contains a
            comment or ``;``. The message quotes the offending fragment and the whole filter.
    """
    if not isinstance(source, str):
        raise FilterParseError(f"Filter must be a str, got {type(source).__name__}: {source!r}")
    if not source.strip():
        raise FilterParseError("Filter string cannot be empty.", source=source)
    try:
        tokens = _DIALECT.tokenize(source)
    except TokenError as err:
        raise FilterParseError(
            f'Failed to tokenize filter "{source}": {err}', source=source
        ) from None
    for token in tokens:
        if token.comments:
            comment = "; ".join(c.strip() for c in token.comments)
            raise FilterParseError(
                f'Comments are not allowed in filter "{source}": {comment!r}', source=source
            )
        if token.token_type == TokenType.SEMICOLON:
            raise FilterParseError(
                f'Only one condition is allowed, found ";" in filter "{source}": '
                f"{source[token.start :].strip()}",
                source=source,
            )
    try:
        statements = _DIALECT.parser().parse(tokens, source)
    except RecursionError:
        raise FilterParseError(f'Filter is nested too deeply: "{source}"', source=source) from None
    except ParseError as err:
        raise FilterParseError(
            f'Failed to parse filter "{source}": {_describe(err)}', source=source
        ) from None
    ast = statements[0] if len(statements) == 1 else None
    if not isinstance(ast, exp.Expression):  # pragma: no cover - `;` and blank text rejected above
        raise FilterParseError(f'Expected one condition in filter "{source}"', source=source)
    try:
        return ast, _Builder(source, tokens).predicate(ast)
    except RecursionError:
        raise FilterParseError(f'Filter is nested too deeply: "{source}"', source=source) from None
