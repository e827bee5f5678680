"""Validated filter tree shared by the Narwhals and the Delta renderers.

:mod:`._parse` turns sqlglot's AST into these small frozen nodes after checking every node against
an allow-list. Renderers never see sqlglot objects: they implement :class:`Renderer` and
:func:`render` does the one recursive walk, so both outputs follow the same structure.

Examples:
    >>> from metaxy_delta.filters._ir import Column, Comparison, CompareOp, Literal, columns_of
    >>> node = Comparison(CompareOp.GT, Column("age"), Literal(18))
    >>> sorted(columns_of(node))
    ['age']
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeAlias, TypeVar

from ._literals import CastTo, Scalar, cast_for


class CompareOp(enum.Enum):
    """Binary comparison operator; the value is the SQL spelling used by the Delta renderer."""

    EQ = "="
    NE = "!="
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="


@dataclass(frozen=True, slots=True)
class Column:
    """A column reference (``name`` is the full column name, dots included)."""

    name: str


@dataclass(frozen=True, slots=True)
class Literal:
    """A constant; ``None`` is SQL ``NULL``."""

    value: Scalar


Operand: TypeAlias = Column | Literal


@dataclass(frozen=True, slots=True)
class Comparison:
    """``left <op> right``; never has a ``NULL`` operand (those become :class:`IsNull`)."""

    op: CompareOp
    left: Operand
    right: Operand


@dataclass(frozen=True, slots=True)
class IsNull:
    """``operand IS NULL``."""

    operand: Operand


@dataclass(frozen=True, slots=True)
class InList:
    """``operand IN (values...)``; values are non-null literals of one kind."""

    operand: Column
    values: tuple[Scalar, ...]


@dataclass(frozen=True, slots=True)
class Between:
    """``operand BETWEEN low AND high`` (inclusive, i.e. ``low <= operand AND operand <= high``)."""

    operand: Operand
    low: Operand
    high: Operand


@dataclass(frozen=True, slots=True)
class Like:
    """``operand [I]LIKE pattern``: ``%`` any run, ``_`` one character, ``\\`` escapes the next."""

    operand: Column
    pattern: str
    case_insensitive: bool = False


@dataclass(frozen=True, slots=True)
class Not:
    """``NOT operand``."""

    operand: Predicate


@dataclass(frozen=True, slots=True)
class And:
    """Conjunction of two or more predicates."""

    operands: tuple[Predicate, ...]


@dataclass(frozen=True, slots=True)
class Or:
    """Disjunction of two or more predicates."""

    operands: tuple[Predicate, ...]


Predicate: TypeAlias = Comparison | IsNull | InList | Between | Like | Not | And | Or | Column
"""A boolean filter; a bare :class:`Column` is a boolean column used as a predicate."""

T = TypeVar("T")


class Renderer(Protocol[T]):
    """One method per node kind; :func:`render` supplies already-rendered children."""

    def column(self, node: Column) -> T:
        """Render a bare boolean column."""
        ...

    def comparison(self, node: Comparison) -> T:
        """Render ``left <op> right``."""
        ...

    def is_null(self, node: IsNull) -> T:
        """Render ``operand IS NULL``."""
        ...

    def in_list(self, node: InList) -> T:
        """Render ``operand IN (...)``."""
        ...

    def between(self, node: Between) -> T:
        """Render ``operand BETWEEN low AND high``."""
        ...

    def like(self, node: Like) -> T:
        """Render ``operand [I]LIKE pattern``."""
        ...

    def negate(self, operand: T) -> T:
        """Render ``NOT operand``."""
        ...

    def conjunction(self, operands: Sequence[T]) -> T:
        """Render ``a AND b AND ...``."""
        ...

    def disjunction(self, operands: Sequence[T]) -> T:
        """Render ``a OR b OR ...``."""
        ...


def render(node: Predicate, renderer: Renderer[T]) -> T:
    """Walk ``node`` bottom-up, delegating every node to ``renderer``."""
    match node:
        case Not(operand):
            return renderer.negate(render(operand, renderer))
        case And(operands):
            return renderer.conjunction([render(child, renderer) for child in operands])
        case Or(operands):
            return renderer.disjunction([render(child, renderer) for child in operands])
        case Column():
            return renderer.column(node)
        case Comparison():
            return renderer.comparison(node)
        case IsNull():
            return renderer.is_null(node)
        case InList():
            return renderer.in_list(node)
        case Between():
            return renderer.between(node)
        case Like():
            return renderer.like(node)
    raise TypeError(f"not a filter node: {node!r}")  # pragma: no cover - exhaustive match


def _children(node: Predicate) -> Iterator[Predicate | Operand]:
    match node:
        case Not(operand):
            yield operand
        case And(operands) | Or(operands):
            yield from operands
        case Comparison(_, left, right):
            yield from (left, right)
        case IsNull(operand) | InList(operand) | Like(operand):
            yield operand
        case Between(operand, low, high):
            yield from (operand, low, high)


def iter_nodes(node: Predicate | Operand) -> Iterator[Predicate | Operand]:
    """Yield ``node`` and all its descendants (pre-order)."""
    yield node
    if not isinstance(node, Literal | Column):
        for child in _children(node):
            yield from iter_nodes(child)


def columns_of(node: Predicate) -> frozenset[str]:
    """Names of every column referenced by ``node``."""
    return frozenset(n.name for n in iter_nodes(node) if isinstance(n, Column))


def condition_cast(node: Comparison | InList | Between) -> CastTo | None:
    """The cast (see :class:`~._literals.CastTo`) the column operands of ``node`` need, if any."""
    if isinstance(node, InList):
        return cast_for(node.values)
    return cast_for(op.value for op in _children(node) if isinstance(op, Literal))
