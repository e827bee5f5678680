"""Rewrite a filter tree into a form DataFusion's optimizer cannot get wrong on NULLs.

DataFusion (delta-rs 1.6) simplifies ``x IN (a) AND x IN (b)`` to ``x IN (a ∩ b)`` and
``x NOT IN (a) OR x NOT IN (b)`` to ``x NOT IN (a ∩ b)``, and an empty list to ``FALSE`` /
``TRUE``, which is wrong when ``x`` is NULL (the result should be NULL). Under a ``NOT`` (or via
the second rule directly) ``DELETE`` then removes rows whose ``x`` is NULL although the predicate is
not true for them. Verified: ``NOT ("s" IN ('') AND "s" IN ('A'))`` deletes the row where ``s`` is
NULL, and so does ``"s" NOT IN ('') OR "s" NOT IN ('A')``.

:func:`normalise` avoids both:

* negation normal form: ``NOT`` is pushed down to the atoms (De Morgan holds in three-valued
  logic), so no ``NOT`` sits above an ``AND``/``OR``. Without a ``NOT`` above them, ``AND``/``OR``
  are monotonic, so a sub-expression that DataFusion evaluates as FALSE instead of NULL can no
  longer turn the whole predicate TRUE;
* in every ``OR``, the ``NOT IN`` lists on the same column are merged into one: the intersection
  of their values, or ``column IS NOT NULL`` when it is empty (exact for non-null values, FALSE
  instead of NULL otherwise, harmless by the previous point).

Examples:
    >>> from metaxy_delta.filters._parse import parse_sql
    >>> normalise(parse_sql("NOT (s IN ('a', 'b') AND s IN ('b', 'c'))")[1])
    Not(operand=InList(operand=Column(name='s'), values=('b',)))
    >>> normalise(parse_sql("NOT (s IN ('a') AND s IN ('c'))")[1])
    Not(operand=IsNull(operand=Column(name='s')))
    >>> normalise(parse_sql("NOT (a OR NOT b)")[1])
    And(operands=(Not(operand=Column(name='a')), Column(name='b')))
"""

from __future__ import annotations

from ._ir import And, Column, InList, IsNull, Not, Or, Predicate, condition_cast
from ._literals import CastTo


def normalise(node: Predicate, *, negate: bool = False) -> Predicate:
    """``node`` (negated if ``negate``) in negation normal form with merged ``NOT IN`` lists."""
    if isinstance(node, Not):
        return normalise(node.operand, negate=not negate)
    if not isinstance(node, And | Or):
        return Not(node) if negate else node
    kind: type[And] | type[Or] = (Or if isinstance(node, And) else And) if negate else type(node)
    children: list[Predicate] = []
    for child in node.operands:
        built = normalise(child, negate=negate)
        children.extend(built.operands if isinstance(built, kind) else [built])
    if kind is Or:
        children = _merge_not_in(children)
    return children[0] if len(children) == 1 else kind(tuple(children))


def _merge_not_in(children: list[Predicate]) -> list[Predicate]:
    """Merge the ``NOT IN`` lists of one ``OR`` that test the same (column, cast)."""
    merged: dict[tuple[str, CastTo | None], InList] = {}
    for child in children:
        if isinstance(child, Not) and isinstance(child.operand, InList):
            key = (child.operand.operand.name, condition_cast(child.operand))
            previous = merged.get(key)
            values = child.operand.values
            if previous is not None:
                values = tuple(v for v in previous.values if v in values)
            merged[key] = InList(child.operand.operand, values)
    out: list[Predicate] = []
    for child in children:
        if not (isinstance(child, Not) and isinstance(child.operand, InList)):
            out.append(child)
            continue
        key = (child.operand.operand.name, condition_cast(child.operand))
        if key not in merged:
            continue  # already emitted at the first list of this column
        merged_list = merged.pop(key)
        column: Column = merged_list.operand
        out.append(Not(merged_list) if merged_list.values else Not(IsNull(column)))
    return out
