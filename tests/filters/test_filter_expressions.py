"""Table-driven tests of SQL filter strings: accepted forms (Polars rows and Delta deletes agree),
rejected forms (precise FilterParseError), and the public helpers."""

from __future__ import annotations

import datetime as dt
import doctest
import importlib
from pathlib import Path

import narwhals as nw
import polars as pl
import pytest
from deltalake import DeltaTable, write_deltalake

from metaxy_delta.errors import FilterParseError
from metaxy_delta.filters import (
    ParsedFilter,
    combine_filters,
    like_to_regex,
    parse_filter,
    parse_filter_string,
    parse_filter_strings,
    to_delta_predicate,
)

UTC = dt.UTC
INJECTION = "a' OR '1'='1"

FRAME = pl.DataFrame(
    {
        "id": [0, 1, 2, 3, 4, 5],
        "i": [1, 2, None, 3, -1, 2],
        "f": [1.5, -2.0, None, 0.0, 2.5, None],
        "s": ["apple", INJECTION, None, "Apple pie", "50% off", "a_b\\c"],
        "t": ["apple", "x", "y", "Apple pie", "z", "a_b\\c"],
        "b": [True, False, None, True, False, None],
        "my col": [10, 20, 30, 40, 50, 60],
        "Upper": [1, 1, 2, 2, 3, 3],
        "a.b": [5, 6, 7, 8, 9, 10],
        'q"uote': ["p", "q", "r", "s", "t", "u"],
        "d": [
            dt.date(2025, 12, 31),
            dt.date(2026, 1, 1),
            None,
            dt.date(2026, 1, 2),
            dt.date(2026, 1, 1),
            dt.date(2024, 2, 29),
        ],
        "ts": [
            dt.datetime(2026, 1, 1, tzinfo=UTC),
            dt.datetime(2026, 1, 1, 10, tzinfo=UTC),
            None,
            dt.datetime(2026, 1, 1, 10, 0, 0, 1, tzinfo=UTC),
            dt.datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC),
            dt.datetime(2026, 6, 1, tzinfo=UTC),
        ],
        "ntz": [
            dt.datetime(2026, 1, 1),
            dt.datetime(2026, 1, 1, 10),
            None,
            dt.datetime(2026, 1, 1, 10, 0, 0, 1),
            dt.datetime(2025, 12, 31, 23, 59, 59),
            dt.datetime(2026, 6, 1),
        ],
    }
)
ALL_IDS = set(FRAME["id"].to_list())

# (filter, ids of the rows it keeps)
ACCEPTED: list[tuple[str, set[int]]] = [
    # comparisons, both spellings of "not equal", literal on either side, column vs column
    ("i = 2", {1, 5}),
    ("i != 2", {0, 3, 4}),
    ("i <> 2", {0, 3, 4}),
    ("i > 1", {1, 3, 5}),
    ("i >= 2", {1, 3, 5}),
    ("i < 2", {0, 4}),
    ("i <= 1", {0, 4}),
    ("1 < i", {1, 3, 5}),
    ("i = -1", {4}),
    ("f = -2.0", {1}),
    ("f > -2.5", {0, 1, 3, 4}),
    ("f >= 1.5e0", {0, 4}),
    ("i = f", set()),
    ("i > f", {1, 3}),
    ("s = t", {0, 3, 5}),
    ("s != t", {1, 4}),
    ("s = 'apple'", {0}),
    ("s > 'a'", {0, 1, 5}),
    # the classic injection attempt is one string literal compared to s
    ("s = 'a'' OR ''1''=''1'", {1}),
    ("s = 'a_b\\c'", {5}),
    ("b", {0, 3}),
    ("NOT b", {1, 4}),
    ("b = TRUE", {0, 3}),
    ("b = FALSE", {1, 4}),
    ("b IS TRUE", {0, 3}),
    ("b IS NOT TRUE", {1, 4}),
    # quoted / dotted / upper-case identifiers
    ('"my col" >= 40', {3, 4, 5}),
    ('"Upper" = 2', {2, 3}),
    ("Upper = 3", {4, 5}),
    ("a.b = 7", {2}),
    ('"a.b" > 8', {4, 5}),
    ("\"q\"\"uote\" IN ('q', 't')", {1, 4}),
    # boolean logic and parentheses, with SQL three-valued semantics
    ("i = 2 AND s = 'a_b\\c'", {5}),
    ("i = 2 OR i IS NULL", {1, 2, 5}),
    ("NOT (i = 2)", {0, 3, 4}),
    ("NOT (i = 2 OR f > 0)", {3}),
    ("(i = 1 OR i = 3) AND (f > 0 OR b)", {0, 3}),
    ("i > 0 AND (NOT b OR f IS NULL)", {1, 5}),
    ("i > 10 OR b", {0, 3}),
    # NULL handling (Metaxy: `= NULL` is IS NULL)
    ("i IS NULL", {2}),
    ("i IS NOT NULL", ALL_IDS - {2}),
    ("f = NULL", {2, 5}),
    ("NULL = f", {2, 5}),
    ("f != NULL", {0, 1, 3, 4}),
    ("f <> NULL", {0, 1, 3, 4}),
    ("NOT (f IS NULL)", {0, 1, 3, 4}),
    # IN / NOT IN
    ("i IN (1, 3)", {0, 3}),
    ("i IN (2)", {1, 5}),
    ("i NOT IN (1, 3)", {1, 4, 5}),
    ("NOT i IN (1, 3)", {1, 4, 5}),
    ("s IN ('apple', 'a'' OR ''1''=''1')", {0, 1}),
    ("f IN (1.5, -2)", {0, 1}),
    ("b IN (TRUE)", {0, 3}),
    # BETWEEN
    ("i BETWEEN 1 AND 2", {0, 1, 5}),
    ("i NOT BETWEEN 1 AND 2", {3, 4}),
    ("f BETWEEN -2 AND 1.5", {0, 1, 3}),
    ("s BETWEEN 'a' AND 'b'", {0, 1, 5}),
    ('2 BETWEEN i AND "my col"', {0, 1, 4, 5}),
    # LIKE / ILIKE
    ("s LIKE 'a%'", {0, 1, 5}),
    ("s LIKE 'A%'", {3}),
    ("s ILIKE 'a%'", {0, 1, 3, 5}),
    ("s NOT LIKE 'a%'", {3, 4}),
    ("s NOT ILIKE 'A%'", {4}),
    ("s LIKE '%pie'", {3}),
    ("s LIKE 'appl_'", {0}),
    ("s LIKE '_____'", {0, 5}),
    ("s LIKE '50\\% off'", {4}),
    ("s LIKE '50\\%'", set()),
    ("s LIKE 'a\\_b%'", {5}),
    ("s LIKE '%\\\\c'", {5}),
    ("s LIKE '%(%'", set()),
    ("s LIKE '%''%'", {1}),
    # DATE / TIMESTAMP literals against date, UTC timestamp and naive timestamp columns
    ("d = DATE '2026-01-01'", {1, 4}),
    ("d > DATE '2026-01-01'", {3}),
    ("d IN (DATE '2024-02-29', DATE '2026-01-02')", {3, 5}),
    ("d BETWEEN DATE '2025-12-31' AND DATE '2026-01-01'", {0, 1, 4}),
    ("ts >= TIMESTAMP '2026-01-01 10:00:00'", {1, 3, 5}),
    ("ts > TIMESTAMP '2026-01-01T10:00:00'", {3, 5}),
    ("ts = TIMESTAMP '2026-01-01 10:00:00.000001'", {3}),
    ("ts >= TIMESTAMP '2026-01-01 12:00:00+02:00'", {1, 3, 5}),
    ("ts < TIMESTAMP '2026-01-01T00:00:00Z'", {4}),
    ("ts >= DATE '2026-01-01'", {0, 1, 3, 5}),
    ("ts IN (TIMESTAMP '2026-01-01 00:00:00', TIMESTAMP '2026-06-01 00:00:00')", {0, 5}),
    ("ts BETWEEN TIMESTAMP '2026-01-01 00:00:00' AND TIMESTAMP '2026-01-01 10:00:00'", {0, 1}),
    ("ntz >= TIMESTAMP '2026-01-01 10:00:00'", {1, 3, 5}),
    ("ntz < TIMESTAMP '2026-01-01'", {4}),
    ("ntz < DATE '2026-01-01'", {4}),
    ("TIMESTAMP '2026-01-01 10:00:00' < ntz", {3, 5}),
]


def _keep(sql: str) -> set[int]:
    frame = nw.from_native(FRAME)
    return set(frame.filter(parse_filter_string(sql))["id"].to_list())


@pytest.mark.parametrize(("sql", "expected"), ACCEPTED, ids=[c[0] for c in ACCEPTED])
def test_accepted_filter_keeps_expected_rows(sql: str, expected: set[int]) -> None:
    assert _keep(sql) == expected


@pytest.fixture(scope="module")
def delta_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("filters_source")
    write_deltalake(str(path), FRAME.to_arrow())
    return path


@pytest.mark.parametrize(("sql", "expected"), ACCEPTED, ids=[c[0] for c in ACCEPTED])
def test_delta_delete_removes_exactly_the_kept_rows(
    sql: str, expected: set[int], delta_source: Path, tmp_path: Path
) -> None:
    write_deltalake(str(tmp_path), DeltaTable(str(delta_source)).to_pyarrow_table())
    table = DeltaTable(str(tmp_path))
    table.delete(to_delta_predicate(sql))
    remaining = set(DeltaTable(str(tmp_path)).to_pyarrow_table().column("id").to_pylist())
    assert remaining == ALL_IDS - expected


REJECTED: list[tuple[object, str]] = [
    ("status = 'x'; DROP TABLE t", '";" in filter "status = \'x\'; DROP TABLE t": ; DROP TABLE t'),
    ("1; 2", '";" in filter "1; 2": ; 2'),
    ("a = 1;", '";"'),
    ("x IN (SELECT 1)", 'Unsupported expression in filter "x IN (SELECT 1)": (SELECT 1)'),
    ("x = (SELECT max(y) FROM t)", "(SELECT MAX(y) FROM t)"),
    ("EXISTS (SELECT 1)", "EXISTS"),
    ("upper(x) = 'A'", ": UPPER(x)"),
    ("x + 1 > 2", ": x + 1"),
    ("x * 2 = 4", ": x * 2"),
    ("DELETE FROM t", ": DELETE FROM t"),
    ("DROP TABLE t", ": DROP TABLE t"),
    ("SELECT * FROM t", ": SELECT * FROM t"),
    ("UPDATE t SET a = 1", "UPDATE"),
    ("a = 1 -- comment", "Comments are not allowed in filter \"a = 1 -- comment\": 'comment'"),
    ("a = 1 /* hidden */", "Comments are not allowed"),
    ("/* x */ a = 1", "Comments are not allowed"),
    ("a = 1 --", "Comments are not allowed"),
    ("", "Filter string cannot be empty."),
    ("   \n\t", "Filter string cannot be empty."),
    (5, "Filter must be a str, got int: 5"),
    (None, "Filter must be a str, got NoneType"),
    (b"a = 1", "Filter must be a str, got bytes"),
    ("CASE WHEN x = 1 THEN TRUE ELSE FALSE END", "CASE WHEN"),
    ("CAST(x AS INT) = 1", ": CAST(x AS INT)"),
    ("x = CAST('2026-01-01' AS DATE)", ": CAST('2026-01-01' AS DATE)"),
    ("x = '2026-01-01'::DATE", ": CAST('2026-01-01' AS DATE)"),
    ("x = DATE('2026-01-01')", "Unsupported expression"),
    ("x = TIMESTAMPTZ '2026-01-01'", "Unsupported expression"),
    ("x = DATE '2026-13-01'", "Invalid DATE literal"),
    ("x = DATE '20260101'", "Invalid DATE literal"),
    ("x = TIMESTAMP 'yesterday'", "Invalid TIMESTAMP literal"),
    ("x = -y", "Unary minus applies only to numeric literals"),
    ("x = -'a'", "Unary minus applies only to numeric literals"),
    ("x IN (1, NULL)", "NULL is not allowed in an IN list"),
    ("x IN (1, 'a')", "IN list mixes literal types"),
    ("x IN ()", "Empty IN list"),
    ("x IN (y)", "IN list items must be literals"),
    ("1 IN (1)", "IN needs a column on its left"),
    ("x > NULL", "NULL can only be compared with =, !=, <> or IS"),
    ("x BETWEEN NULL AND 1", "NULL is not allowed in BETWEEN"),
    ("x BETWEEN SYMMETRIC 1 AND 2", "Unsupported expression"),
    ("x LIKE 'a' ESCAPE '!'", "Unsupported expression"),
    ("x LIKE y", 'LIKE pattern must be a string literal in filter "x LIKE y": y'),
    ("'a' LIKE 'a'", "LIKE needs a column on its left"),
    ("x LIKE ANY ('a', 'b')", ": ANY ('a', 'b')"),
    ("x IS DISTINCT FROM 1", "Unsupported expression"),
    ("TRUE", "Condition references no column"),
    ("1 = 1", "Condition references no column"),
    ("x = 1 OR 1 = 1", 'Condition references no column in filter "x = 1 OR 1 = 1": 1 = 1'),
    ("NULL IS NULL", "Condition references no column"),
    ("1", "Expected a boolean condition"),
    ("'a'", "Expected a boolean condition"),
    ("x = 1 = 2", "Unsupported operand"),
    ("x = 1 y", "Unsupported expression"),
    ("x = ?", "Unsupported expression"),
    ("x = :param", "Unsupported expression"),
    ("x.* = 1", "Unsupported column reference"),
    ('"" = 1', "Empty column name"),
    ("x = 1e999", "Invalid numeric literal (numeric literal out of range)"),
    ("x = N'a'", "Unsupported expression"),
    ("x = 1 AND", 'Failed to parse filter "x = 1 AND"'),
    ("x = (1", "Failed to parse filter"),
    ("x = 'abc", "Failed to tokenize filter"),
    ("x = 1 LIMIT 1", "Failed to parse filter"),
    ("x = INTERVAL '1' DAY", "Unsupported expression"),
    ("x = ARRAY[1]", "Unsupported expression"),
]


@pytest.mark.parametrize(("sql", "message"), REJECTED, ids=[repr(c[0]) for c in REJECTED])
def test_rejected_filter_raises_with_fragment(sql: object, message: str) -> None:
    with pytest.raises(FilterParseError) as info:
        parse_filter(sql)  # type: ignore[arg-type]
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)
    if isinstance(sql, str):
        assert info.value.source == sql
    with pytest.raises(FilterParseError):
        to_delta_predicate(sql)  # type: ignore[arg-type]


def test_injection_literal_is_one_string() -> None:
    parsed = parse_filter("name = 'a'' OR ''1''=''1'")
    assert parsed.columns == {"name"}
    assert parsed.to_delta_predicate() == "\"name\" = 'a'' OR ''1''=''1'"
    frame = nw.from_native(pl.DataFrame({"name": ["a", INJECTION, "1"]}))
    assert frame.filter(parsed.to_expr())["name"].to_list() == [INJECTION]


def test_parsed_filter_api() -> None:
    parsed = parse_filter("\"Part Col\" = 'x' AND (n > 1 OR a.b IS NULL)")
    assert isinstance(parsed, ParsedFilter)
    assert str(parsed) == parsed.source == "\"Part Col\" = 'x' AND (n > 1 OR a.b IS NULL)"
    assert parsed.columns == frozenset({"Part Col", "n", "a.b"})
    assert parsed.supports_file_pruning
    assert parsed.ast.find(type(parsed.ast)) is not None
    assert parsed == parse_filter(parsed.source)
    assert hash(parsed) == hash(parse_filter(parsed.source))
    assert parsed.to_delta_predicate() == (
        '("Part Col" = \'x\') AND (("n" > 1) OR ("a.b" IS NULL))'
    )
    assert not parse_filter("s ILIKE 'x%' OR n = 1").supports_file_pruning
    with pytest.raises(AttributeError):
        parsed.source = "x"  # type: ignore[misc]


def test_delta_rendering_details() -> None:
    assert to_delta_predicate("x = NULL") == '"x" IS NULL'
    assert to_delta_predicate("NULL != x") == 'NOT ("x" IS NULL)'
    assert to_delta_predicate("x IS NOT NULL") == 'NOT ("x" IS NULL)'
    assert to_delta_predicate("x IS 1.0") == '"x" = 1.0'
    assert to_delta_predicate("x NOT BETWEEN -1 AND 2") == 'NOT ("x" BETWEEN -1 AND 2)'
    assert to_delta_predicate("x NOT ILIKE 'a\\%'") == "NOT (\"x\" ILIKE 'a\\%')"
    assert to_delta_predicate("flag AND NOT other") == '("flag") AND (NOT ("other"))'
    assert to_delta_predicate("d < DATE '2026-01-01'") == "\"d\" < '2026-01-01'"
    assert to_delta_predicate("t < TIMESTAMP '2026-01-01 10:00:00.5+01:00'") == (
        "CAST(\"t\" AS TIMESTAMP) < '2026-01-01T09:00:00.500000'"
    )
    assert to_delta_predicate("\"we\"\"ird\" = 'it''s'") == "\"we\"\"ird\" = 'it''s'"
    assert to_delta_predicate(["a = 1", parse_filter("b = 2 OR c = 3")]) == (
        '("a" = 1) AND (("b" = 2) OR ("c" = 3))'
    )
    assert to_delta_predicate(["a = 1"]) == '"a" = 1'
    with pytest.raises(FilterParseError, match="empty sequence"):
        to_delta_predicate([])


def test_wide_filters_are_flat_and_fast() -> None:
    frame = nw.from_native(pl.DataFrame({"x": [1, 500, 5000]}))
    wide_or = parse_filter(" OR ".join(f"x = {i}" for i in range(1000)))
    assert len(wide_or.predicate.operands) == 1000  # type: ignore[union-attr]
    assert frame.filter(wide_or.to_expr())["x"].to_list() == [1, 500]
    wide_in = parse_filter(f"x NOT IN ({', '.join(map(str, range(1000)))})")
    assert frame.filter(wide_in.to_expr())["x"].to_list() == [5000]
    wide_and = parse_filter(" AND ".join(["x > 0"] * 3000))
    assert frame.filter(wide_and.to_expr())["x"].to_list() == [1, 500, 5000]


@pytest.mark.parametrize("sql", ["(" * 300 + "x = 1" + ")" * 300, "NOT " * 2000 + "x"])
def test_deeply_nested_filter_is_rejected(sql: str) -> None:
    with pytest.raises(FilterParseError, match="nested too deeply"):
        parse_filter(sql)


def test_parse_filter_strings_and_combine() -> None:
    frame = nw.from_native(pl.DataFrame({"x": [1, 2, 3, None]}))
    assert parse_filter_strings([]) is None
    combined = parse_filter_strings(["x > 1", "x != 3"])
    assert combined is not None
    assert frame.filter(combined)["x"].to_list() == [2]
    single = parse_filter_strings("x >= 3")
    assert single is not None
    assert frame.filter(single)["x"].to_list() == [3]
    assert combine_filters([]) is None
    expr = combine_filters([nw.col("x") > 1, nw.col("x") < 3])
    assert expr is not None
    assert frame.filter(expr)["x"].to_list() == [2]
    with pytest.raises(FilterParseError, match="x >"):
        parse_filter_strings(["x > 1", "x >"])


@pytest.mark.parametrize(
    ("pattern", "text", "matches"),
    [
        ("a%", "abc", True),
        ("a%", "ba", False),
        ("a_c", "a\nc", True),
        ("%", "", True),
        ("_", "", False),
        ("a.c", "abc", False),
        ("a\\%", "a%", True),
        ("a\\%", "ab", False),
        ("a\\", "a\\", True),
        ("a\\\\", "a\\", True),
        ("a\\b", "ab", True),
        ("(x)[y]{1}^$|+*?#&-~", "(x)[y]{1}^$|+*?#&-~", True),
        ("line", "line\n", False),
    ],
)
def test_like_to_regex(pattern: str, text: str, matches: bool) -> None:
    series = pl.Series([text])
    assert series.str.contains(like_to_regex(pattern)).item() is matches


def test_ilike_is_case_insensitive() -> None:
    regex = like_to_regex("ab%", case_insensitive=True)
    assert pl.Series(["ABc", "aB", "xab"]).str.contains(regex).to_list() == [True, True, False]


@pytest.mark.parametrize("module", ["__init__", "_api", "_delta", "_ir", "_narwhals", "_parse"])
def test_docstring_examples(module: str) -> None:
    name = "metaxy_delta.filters" + ("" if module == "__init__" else f".{module}")
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
