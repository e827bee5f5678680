"""`to_delta_predicate` against real Delta tables: deletes, awkward names/values, dates, UTC
timestamps, numeric coercion, and partition pruning with `file_uris(file_pruning_predicate=)`."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import narwhals as nw
import polars as pl
import pytest
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import DeltaError

from metaxy_delta.filters import parse_filter, to_delta_predicate

UTC = dt.UTC
INJECTION = "a' OR '1'='1"


def _ids(path: Path) -> set[int]:
    return set(DeltaTable(str(path)).to_pyarrow_table().column("id").to_pylist())


def _delete(frame: pl.DataFrame, path: Path, predicate: str) -> set[int]:
    """Write ``frame`` to a new table at ``path``, delete ``predicate``, return remaining ids."""
    write_deltalake(str(path), frame.to_arrow())
    DeltaTable(str(path)).delete(predicate)
    return _ids(path)


AWKWARD = pl.DataFrame(
    {
        "id": [0, 1, 2, 3, 4, 5],
        "Sample ID": ["it's", INJECTION, "back\\slash", "100%", "plain", None],
        "UPPER": [1, 2, 3, 4, 5, 6],
        'say "hi"': ["x'y", "x", "y", "z", "x'y", "w"],
        "a.b": [1, 1, 2, 2, 3, 3],
        "select": [True, False, True, False, True, None],
    }
)


@pytest.mark.parametrize(
    ("filters", "deleted"),
    [
        ("\"Sample ID\" = 'it''s'", {0}),
        ("\"Sample ID\" = 'a'' OR ''1''=''1'", {1}),
        ("\"Sample ID\" = 'back\\slash'", {2}),
        ("\"Sample ID\" LIKE '100\\%'", {3}),
        ("\"Sample ID\" LIKE '%''%'", {0, 1}),
        ('"Sample ID" = NULL', {5}),
        ('"Sample ID" != NULL AND "UPPER" >= 4', {3, 4}),
        ("UPPER < 2", {0}),
        ('"say ""hi""" IN (\'x\'\'y\')', {0, 4}),
        ("a.b = 2", {2, 3}),
        ('"select"', {0, 2, 4}),
        (["UPPER > 1", '"say ""hi""" = \'x\'\'y\''], {4}),
        (["a.b = 3", parse_filter('NOT "select"')], set()),
    ],
)
def test_delete_with_awkward_names_and_values(
    filters: str | list[object], deleted: set[int], tmp_path: Path
) -> None:
    remaining = _delete(AWKWARD, tmp_path, to_delta_predicate(filters))  # type: ignore[arg-type]
    assert remaining == set(AWKWARD["id"]) - deleted


def test_injection_value_deletes_only_its_own_row(tmp_path: Path) -> None:
    predicate = to_delta_predicate(f"\"Sample ID\" = '{INJECTION.replace(chr(39), chr(39) * 2)}'")
    assert _delete(AWKWARD, tmp_path, predicate) == {0, 2, 3, 4, 5}


NUMBERS = pl.DataFrame(
    {"id": [0, 1, 2, 3, 4], "n": [0, 1, 2, -1, None], "x": [0.0, 0.5, 1.5, -0.5, None]}
)


@pytest.mark.parametrize(
    ("sql", "deleted"),
    [
        # delta-rs would cast 0.5 to the int column's type (0) without the CAST(... AS DOUBLE)
        ("n = 0.5", set()),
        ("n != 0.5", {0, 1, 2, 3}),
        ("n < 0.5", {0, 3}),
        ("n >= -0.5", {0, 1, 2}),
        ("n IN (0.5, 1.5)", set()),
        ("n BETWEEN 0.5 AND 1.5", {1}),
        ("n = 2.0", {2}),
        ("n < 1e20", {0, 1, 2, 3}),
        ("n > -1e300", {0, 1, 2, 3}),
        ("x = 0", {0}),
        ("x IN (0, 1)", {0}),
        ("x > n", {3}),
        ("x = 0.5", {1}),
    ],
)
def test_numeric_literals_are_not_truncated(sql: str, deleted: set[int], tmp_path: Path) -> None:
    frame = nw.from_native(NUMBERS)
    assert set(frame.filter(parse_filter(sql).to_expr())["id"].to_list()) == deleted
    assert _delete(NUMBERS, tmp_path, to_delta_predicate(sql)) == set(NUMBERS["id"]) - deleted


TEMPORAL = pl.DataFrame(
    {
        "id": [0, 1, 2, 3, 4],
        "day": [
            dt.date(2025, 12, 31),
            dt.date(2026, 1, 1),
            dt.date(2026, 1, 2),
            None,
            dt.date(2026, 1, 1),
        ],
        "created_at": [
            dt.datetime(2025, 12, 31, 23, 0, tzinfo=UTC),
            dt.datetime(2026, 1, 1, 0, 0, tzinfo=UTC),
            dt.datetime(2026, 1, 1, 9, 30, 0, 250000, tzinfo=UTC),
            None,
            dt.datetime(2026, 1, 2, 12, 0, tzinfo=UTC),
        ],
    }
)


@pytest.mark.parametrize(
    ("sql", "deleted"),
    [
        ("day = DATE '2026-01-01'", {1, 4}),
        ("day < DATE '2026-01-01'", {0}),
        ("day != DATE '2026-01-01'", {0, 2}),
        ("day IN (DATE '2025-12-31', DATE '2026-01-02')", {0, 2}),
        ("day BETWEEN DATE '2026-01-01' AND DATE '2026-01-02'", {1, 2, 4}),
        ("day IS NULL", {3}),
        # a TIMESTAMP literal compares with a date column's midnight, not a truncated literal
        ("day = TIMESTAMP '2026-01-01 05:00:00'", set()),
        ("day >= TIMESTAMP '2026-01-01 05:00:00'", {2}),
        ("day < TIMESTAMP '2026-01-01 00:00:01'", {0, 1, 4}),
        ("created_at >= TIMESTAMP '2026-01-01 00:00:00'", {1, 2, 4}),
        ("created_at > TIMESTAMP '2026-01-01T09:30:00.25'", {4}),
        ("created_at = TIMESTAMP '2026-01-01 09:30:00.250000'", {2}),
        ("created_at < TIMESTAMP '2026-01-01 01:00:00+01:00'", {0}),
        ("created_at < TIMESTAMP '2026-01-01T00:00:00Z'", {0}),
        ("created_at >= DATE '2026-01-02'", {4}),
        (
            "created_at IN (TIMESTAMP '2026-01-01 00:00:00', TIMESTAMP '2026-01-02 12:00:00')",
            {1, 4},
        ),
        ("created_at BETWEEN DATE '2026-01-01' AND TIMESTAMP '2026-01-01 09:30:00.25'", {1, 2}),
        ("created_at IS NOT NULL AND day = DATE '2026-01-01'", {1, 4}),
    ],
)
def test_date_and_utc_timestamp_columns(sql: str, deleted: set[int], tmp_path: Path) -> None:
    remaining = _delete(TEMPORAL, tmp_path / "t", to_delta_predicate(sql))
    assert remaining == set(TEMPORAL["id"]) - deleted
    # the same filter on the frame read back from Delta (Datetime("us", "UTC"), Date) agrees
    source = tmp_path / "source"
    write_deltalake(str(source), TEMPORAL.to_arrow())
    read_back = pl.from_arrow(DeltaTable(str(source)).to_pyarrow_table())
    assert isinstance(read_back, pl.DataFrame)
    assert read_back.schema["created_at"] == pl.Datetime("us", "UTC")
    kept = nw.from_native(read_back).filter(parse_filter(sql).to_expr())["id"].to_list()
    assert set(kept) == deleted


PARTITIONED = pl.DataFrame(
    {
        "id": [0, 1, 2, 3, 4, 5, 6],
        "Part Col": ["it's", "a", "b", "a", None, "it's", "b"],
        "day": [
            dt.date(2026, 1, 1),
            dt.date(2026, 1, 2),
            dt.date(2026, 1, 1),
            dt.date(2026, 1, 3),
            dt.date(2026, 1, 2),
            dt.date(2026, 1, 3),
            None,
        ],
        "n": [1, 2, 3, 1, 2, None, 3],
        "at": [
            dt.datetime(2026, 1, 1, 10, tzinfo=UTC),
            dt.datetime(2026, 1, 1, 12, tzinfo=UTC),
            dt.datetime(2026, 1, 1, 10, tzinfo=UTC),
            None,
            dt.datetime(2026, 1, 2, tzinfo=UTC),
            dt.datetime(2026, 1, 1, 9, 59, 59, tzinfo=UTC),
            dt.datetime(2026, 1, 1, 12, tzinfo=UTC),
        ],
        "value": [10, 20, 30, 40, 50, 60, 70],
    }
)
PARTITION_COLUMNS = ["Part Col", "day", "n", "at"]


@pytest.fixture(scope="module")
def partitioned(tmp_path_factory: pytest.TempPathFactory) -> tuple[DeltaTable, dict[str, set[int]]]:
    path = tmp_path_factory.mktemp("partitioned")
    write_deltalake(str(path), PARTITIONED.to_arrow(), partition_by=PARTITION_COLUMNS)
    table = DeltaTable(str(path))
    rows = {uri: set(pl.read_parquet(uri)["id"].to_list()) for uri in table.file_uris()}
    assert all(len(ids) == 1 for ids in rows.values())  # one file per row: pruning is exact
    return table, rows


@pytest.mark.parametrize(
    "sql",
    [
        "\"Part Col\" = 'it''s'",
        "\"Part Col\" IN ('a', 'b')",
        "\"Part Col\" NOT IN ('a')",
        '"Part Col" IS NULL',
        "\"Part Col\" != 'a'",
        "day >= DATE '2026-01-02'",
        "day BETWEEN DATE '2026-01-01' AND DATE '2026-01-02'",
        "day = NULL",
        "n BETWEEN 2 AND 3",
        "n = 2.0",
        "NOT (n = 1)",
        "n IS NOT NULL AND (\"Part Col\" = 'a' OR day = DATE '2026-01-01')",
        "at >= TIMESTAMP '2026-01-01 10:00:00'",
        "at = TIMESTAMP '2026-01-01T12:00:00+02:00'",
        "at IN (TIMESTAMP '2026-01-01 10:00:00', TIMESTAMP '2026-01-02 00:00:00')",
        "at BETWEEN DATE '2026-01-01' AND TIMESTAMP '2026-01-01 10:00:00'",
        "NOT (at < DATE '2026-01-02')",
    ],
)
def test_partition_pruning_selects_exactly_matching_files(
    sql: str, partitioned: tuple[DeltaTable, dict[str, set[int]]]
) -> None:
    table, rows = partitioned
    parsed = parse_filter(sql)
    assert parsed.supports_file_pruning
    assert parsed.columns <= set(PARTITION_COLUMNS)
    uris = table.file_uris(file_pruning_predicate=parsed.to_delta_predicate())
    selected = set().union(*(rows[uri] for uri in uris))
    expected = nw.from_native(PARTITIONED).filter(parsed.to_expr())["id"].to_list()
    assert selected == set(expected)


@pytest.mark.parametrize("sql", ["\"Part Col\" LIKE 'a%'", "\"Part Col\" ILIKE 'A'", "n > 1.5"])
def test_unprunable_predicates_are_flagged(
    sql: str, partitioned: tuple[DeltaTable, dict[str, set[int]]]
) -> None:
    table, _ = partitioned
    parsed = parse_filter(sql)
    assert not parsed.supports_file_pruning
    with pytest.raises(DeltaError):
        table.file_uris(file_pruning_predicate=parsed.to_delta_predicate())


def test_delete_on_partitioned_table(tmp_path: Path) -> None:
    write_deltalake(str(tmp_path), PARTITIONED.to_arrow(), partition_by=["Part Col", "day"])
    DeltaTable(str(tmp_path)).delete(to_delta_predicate(["\"Part Col\" = 'it''s'", "value > 10"]))
    assert _ids(tmp_path) == {0, 1, 2, 3, 4, 6}


NULLABLE = pl.DataFrame({"id": [0, 1, 2, 3], "s": [None, "A", "b", ""], "n": [None, 1, 2, 3]})


@pytest.mark.parametrize(
    ("sql", "deleted"),
    [
        # DataFusion rewrites these to an empty IN list (FALSE/TRUE) and would delete the NULL row
        ("NOT (s IN ('') AND s IN ('A'))", {1, 2, 3}),
        ("NOT (s IN ('', 'x') AND s IN ('A', 'y'))", {1, 2, 3}),
        ("s NOT IN ('') OR s NOT IN ('A')", {1, 2, 3}),
        ("s NOT IN ('A', 'b') OR s NOT IN ('b', '')", {1, 3}),
        ("NOT (n IN (1) AND n IN (2))", {1, 2, 3}),
        ("NOT (s = '' OR s = 'x') OR NOT (s = 'A' OR s = 'y')", {1, 2, 3}),
        ("NOT (s IN ('A') AND s NOT IN ('A'))", {1, 2, 3}),
        ("NOT (NOT (s IN ('A')) OR NOT (s IN ('b')))", set()),
        ("NOT (s IN ('A', 'b') AND (n = 9 OR s IN ('', 'q')))", {1, 2, 3}),
    ],
)
def test_null_rows_survive_in_list_simplification(
    sql: str, deleted: set[int], tmp_path: Path
) -> None:
    kept = nw.from_native(NULLABLE).filter(parse_filter(sql).to_expr())["id"].to_list()
    assert set(kept) == deleted
    assert _delete(NULLABLE, tmp_path, to_delta_predicate(sql)) == set(NULLABLE["id"]) - deleted


@pytest.mark.parametrize(
    ("sql", "deleted"),
    [
        ("NOT ('' != s OR s LIKE '')", set()),  # found by test_filter_property
        ("s = 'ab' AND NOT (s LIKE 'ab')", set()),
        ("s = 'ab' AND s LIKE 'ab'", {0}),
        ("s = '' AND s LIKE ''", {1}),
        ("s LIKE 'a%' AND NOT (s LIKE 'ab')", {2}),
        ("s = 'a%' AND s LIKE 'a\\%'", {2}),
    ],
)
def test_like_without_wildcards_deletes_exactly_its_rows(
    sql: str, deleted: set[int], tmp_path: Path
) -> None:
    """delta-rs 1.6 (DataFusion) evaluates an equality and a wildcard-free LIKE on the same
    column wrongly together; such a LIKE is rendered as ``=`` instead."""
    frame = pl.DataFrame({"id": [0, 1, 2], "s": ["ab", "", "a%"]})
    expected = {0, 1, 2} - deleted
    assert _delete(frame, tmp_path / "t", parse_filter(sql).to_delta_predicate()) == expected
    assert set(nw.from_native(frame).filter(parse_filter(sql).to_expr())["id"].to_list()) == deleted
