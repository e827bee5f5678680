"""Property test: a random filter selects the same rows through three independent paths.

1. the Narwhals expression evaluated by Polars (``DataFrame.filter`` keeps rows where it is true);
2. a Delta table after ``DeltaTable.delete(to_delta_predicate(filter))`` (must keep exactly the
   rows where the predicate is *not* true: false or null);
3. a plain-Python reference evaluator with SQL three-valued logic, written here.
"""

from __future__ import annotations

import operator
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import narwhals as nw
import polars as pl
from deltalake import DeltaTable, write_deltalake
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metaxy_delta.filters import parse_filter

Row = dict[str, Any]
Truth = bool | None

SCHEMA = {
    "rid": pl.Int64,
    "i": pl.Int64,
    "f": pl.Float64,
    "My Col": pl.Int64,
    "s": pl.String,
    "t": pl.String,
    "b": pl.Boolean,
}
NUMERIC = {"i": "i", "f": "f", "My Col": '"My Col"'}  # column → SQL spelling
STRINGS = {"s": "s", "t": "t"}
OPS: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<>": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
ALPHABET = "aAb_%\\' "


@dataclass(frozen=True)
class Case:
    """A filter's SQL text and its reference evaluation on one row."""

    sql: str
    evaluate: Callable[[Row], Truth]


def and3(values: list[Truth]) -> Truth:
    if any(v is False for v in values):
        return False
    return None if any(v is None for v in values) else True


def or3(values: list[Truth]) -> Truth:
    if any(v is True for v in values):
        return True
    return None if any(v is None for v in values) else False


def not3(value: Truth) -> Truth:
    return None if value is None else not value


def compare(op: str, left: Any, right: Any) -> Truth:
    return None if left is None or right is None else OPS[op](left, right)


def like_match(text: str, pattern: str, ci: bool) -> bool:
    """Reference LIKE: ``%``, ``_``, backslash escapes the next char (trailing one is literal)."""
    tokens: list[tuple[str, str]] = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            tokens.append(("lit", pattern[index + 1] if index + 1 < len(pattern) else "\\"))
            index += 2
            continue
        tokens.append(("any", "") if char == "%" else ("one", "") if char == "_" else ("lit", char))
        index += 1
    if ci:
        text = text.lower()
        tokens = [(kind, value.lower()) for kind, value in tokens]
    # matches[j] = text[:k] matches tokens[:j], rolled over k
    reachable = {0}
    for kind, value in tokens:
        following: set[int] = set()
        for k in reachable:
            if kind == "any":
                following.update(range(k, len(text) + 1))
            elif k < len(text) and (kind == "one" or text[k] == value):
                following.add(k + 1)
        reachable = following
    return len(text) in reachable


def sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def sql_num(value: int | float) -> str:
    return repr(value)


ints = st.integers(-3, 3)
floats = st.sampled_from([-1.5, 0.0, 0.5, 1.0, 2.25, 3.0])
numbers = st.one_of(ints, floats)
texts = st.text(alphabet=ALPHABET, max_size=4)


@st.composite
def compare_literal(draw: st.DrawFn) -> Case:
    op = draw(st.sampled_from(sorted(OPS)))
    if draw(st.booleans()):
        col, sql_col = draw(st.sampled_from(sorted(NUMERIC.items())))
        value: Any = draw(numbers)
        lit = sql_num(value)
    else:
        col, sql_col = draw(st.sampled_from(sorted(STRINGS.items())))
        value = draw(texts)
        lit = sql_str(value)
    if draw(st.booleans()):
        return Case(f"{sql_col} {op} {lit}", lambda r: compare(op, r[col], value))
    return Case(f"{lit} {op} {sql_col}", lambda r: compare(op, value, r[col]))


@st.composite
def compare_columns(draw: st.DrawFn) -> Case:
    op = draw(st.sampled_from(sorted(OPS)))
    group = draw(st.sampled_from([NUMERIC, STRINGS]))
    (a, sql_a), (b, sql_b) = draw(
        st.lists(st.sampled_from(sorted(group.items())), min_size=2, max_size=2)
    )
    return Case(f"{sql_a} {op} {sql_b}", lambda r: compare(op, r[a], r[b]))


@st.composite
def null_checks(draw: st.DrawFn) -> Case:
    col, sql_col = draw(st.sampled_from(sorted({**NUMERIC, **STRINGS, "b": "b"}.items())))
    negate = draw(st.booleans())
    form = draw(st.sampled_from(["{c} IS {n}NULL", "{c} {op} NULL", "NULL {op} {c}"]))
    sql = form.format(c=sql_col, n="NOT " if negate else "", op="!=" if negate else "=")
    return Case(sql, lambda r: (r[col] is not None) if negate else (r[col] is None))


@st.composite
def in_lists(draw: st.DrawFn) -> Case:
    if draw(st.booleans()):
        col, sql_col = draw(st.sampled_from(sorted(NUMERIC.items())))
        values: list[Any] = draw(st.lists(ints, min_size=1, max_size=3))
        items = ", ".join(map(sql_num, values))
    else:
        col, sql_col = draw(st.sampled_from(sorted(STRINGS.items())))
        values = draw(st.lists(texts, min_size=1, max_size=3))
        items = ", ".join(map(sql_str, values))
    negate = draw(st.booleans())

    def evaluate(r: Row) -> Truth:
        found = None if r[col] is None else r[col] in values
        return not3(found) if negate else found

    return Case(f"{sql_col} {'NOT ' if negate else ''}IN ({items})", evaluate)


@st.composite
def betweens(draw: st.DrawFn) -> Case:
    low: Any
    high: Any
    if draw(st.booleans()):
        col, sql_col = draw(st.sampled_from(sorted(NUMERIC.items())))
        low, high = draw(numbers), draw(numbers)
        sql_low, sql_high = sql_num(low), sql_num(high)
    else:
        col, sql_col = draw(st.sampled_from(sorted(STRINGS.items())))
        low, high = draw(texts), draw(texts)
        sql_low, sql_high = sql_str(low), sql_str(high)
    negate = draw(st.booleans())

    def evaluate(r: Row) -> Truth:
        inside = and3([compare(">=", r[col], low), compare("<=", r[col], high)])
        return not3(inside) if negate else inside

    keyword = "NOT BETWEEN" if negate else "BETWEEN"
    return Case(f"{sql_col} {keyword} {sql_low} AND {sql_high}", evaluate)


@st.composite
def likes(draw: st.DrawFn) -> Case:
    col, sql_col = draw(st.sampled_from(sorted(STRINGS.items())))
    pattern = draw(texts)
    ci, negate = draw(st.booleans()), draw(st.booleans())

    def evaluate(r: Row) -> Truth:
        matched = None if r[col] is None else like_match(r[col], pattern, ci)
        return not3(matched) if negate else matched

    keyword = ("NOT " if negate else "") + ("ILIKE" if ci else "LIKE")
    return Case(f"{sql_col} {keyword} {sql_str(pattern)}", evaluate)


booleans_cases = st.sampled_from(
    [
        Case("b", lambda r: r["b"]),
        Case("b = TRUE", lambda r: r["b"]),
        Case("b IS FALSE", lambda r: not3(r["b"])),
    ]
)
atoms = st.one_of(
    compare_literal(),
    compare_columns(),
    null_checks(),
    in_lists(),
    betweens(),
    likes(),
    booleans_cases,
)


def _extend(children: st.SearchStrategy[Case]) -> st.SearchStrategy[Case]:
    def negate(c: Case) -> Case:
        return Case(f"NOT ({c.sql})", lambda r: not3(c.evaluate(r)))

    def both(pair: tuple[Case, Case], keyword: str) -> Case:
        a, b = pair
        combine = and3 if keyword == "AND" else or3
        return Case(
            f"({a.sql}) {keyword} ({b.sql})", lambda r: combine([a.evaluate(r), b.evaluate(r)])
        )

    pairs = st.tuples(children, children)
    return st.one_of(
        children.map(negate),
        pairs.map(lambda p: both(p, "AND")),
        pairs.map(lambda p: both(p, "OR")),
    )


filters = st.recursive(atoms, _extend, max_leaves=6)

rows = st.lists(
    st.fixed_dictionaries(
        {
            "i": st.none() | ints,
            "f": st.none() | floats,
            "My Col": st.none() | ints,
            "s": st.none() | texts,
            "t": st.none() | texts,
            "b": st.none() | st.booleans(),
        }
    ),
    min_size=1,
    max_size=8,
)


@settings(
    max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(case=filters, data=rows)
def test_polars_delta_and_reference_agree(case: Case, data: list[Row]) -> None:
    table = [{"rid": n, **row} for n, row in enumerate(data)]
    frame = pl.DataFrame(table, schema=SCHEMA, orient="row")
    everything = set(range(len(table)))
    expected = {row["rid"] for row in table if case.evaluate(row) is True}

    parsed = parse_filter(case.sql)
    kept = set(nw.from_native(frame).filter(parsed.to_expr())["rid"].to_list())
    assert kept == expected, (case.sql, parsed.to_delta_predicate())

    with tempfile.TemporaryDirectory() as tmp:
        write_deltalake(tmp, frame.to_arrow())
        DeltaTable(tmp).delete(parsed.to_delta_predicate())
        remaining = set(DeltaTable(tmp).to_pyarrow_table().column("rid").to_pylist())
    assert remaining == everything - expected, (case.sql, parsed.to_delta_predicate())
