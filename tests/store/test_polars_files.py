"""Appends whose files Polars encodes (``store._files``) give the same table as ``write_deltalake``.

Each test writes the same frame once through the Polars path (``DeltaTableRef.append`` with a
Polars frame) and once through delta-rs (``write_deltalake``), then compares what a reader sees:
the Delta schema, partitioning, rows, per-file statistics, and which files a filter skips.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable, write_deltalake

from metaxy_delta.store import _constants, _files
from metaxy_delta.store._codecs import DEFAULT_WRITER_PROPERTIES, polars_options
from metaxy_delta.store._files import polars_writable
from metaxy_delta.store._stats import file_stats, files_stats, partition_stats
from metaxy_delta.store._table import DeltaTableRef

T0 = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
FRAME = pl.DataFrame(
    {
        "id": ["b", "a", "c", None],
        "n": [3, None, 1, 7],
        "x": [0.5, 1.5, None, 2.0],
        "ok": [True, False, None, True],
        "day": [date(2024, 1, 2), date(2024, 1, 1), None, date(2024, 1, 3)],
        "at": [T0, None, T0.replace(microsecond=1), T0.replace(second=9)],
        "prov": [{"audio": "a1", "frames": "f1"}, {"audio": "a0", "frames": None}, None, {"audio": "a2", "frames": "f9"}],
        "tags": [["x"], [], None, ["y", "z"]],
        "long": ["q" * 40, "r" * 40, "q" * 41, None],
        "part": ["p1", "p0", "p1", "p0"],
    },
    schema_overrides={"at": pl.Datetime("us", "UTC")},
)


def _both(tmp_path: Path, frame: pl.DataFrame, **kwargs: object) -> tuple[DeltaTable, DeltaTable]:
    ours = DeltaTableRef(str(tmp_path / "polars.delta"))
    ours.append(frame, **kwargs)  # type: ignore[arg-type]
    theirs = tmp_path / "delta-rs.delta"
    partition_by = kwargs.get("partition_by")
    write_deltalake(str(theirs), frame.to_arrow(), partition_by=partition_by, writer_properties=DEFAULT_WRITER_PROPERTIES)  # type: ignore[arg-type]
    return DeltaTable(ours.uri), DeltaTable(str(theirs))


def _rows(table: DeltaTable) -> pl.DataFrame:
    return pl.read_delta(table).sort("id", "n", nulls_last=True)


def _stats(table: DeltaTable) -> list[dict[str, object]]:
    """The statistics of the files added by commit 0, from the log itself."""
    log = Path(table.table_uri.removeprefix("file://")) / "_delta_log" / f"{0:020d}.json"
    actions = [json.loads(line) for line in log.read_text().splitlines()]
    return [json.loads(a["add"]["stats"]) for a in actions if "add" in a]


def _written_by(table: DeltaTable) -> set[str]:
    return {pq.read_metadata(uri.removeprefix("file://")).created_by.split()[0] for uri in table.file_uris()}


def test_same_schema_rows_and_stats_as_delta_rs(tmp_path: Path) -> None:
    ours, theirs = _both(tmp_path, FRAME)
    assert _written_by(ours) == {"Polars"} and _written_by(theirs) != {"Polars"}
    assert ours.schema() == theirs.schema()
    assert _rows(ours).equals(_rows(theirs))
    assert ours.history(1)[0]["operation"] == "CREATE TABLE"

    [mine], [reference] = _stats(ours), _stats(theirs)
    assert mine["numRecords"] == reference["numRecords"] == 4
    assert mine["nullCount"] == {k: v for k, v in reference["nullCount"].items() if k != "tags"}
    for column in ("id", "n", "day", "prov"):
        assert mine["minValues"][column] == reference["minValues"][column], column
        assert mine["maxValues"][column] == reference["maxValues"][column], column
    # datetimes to the millisecond, rounded outwards: still bounds of the microsecond values
    assert mine["minValues"]["at"] == "2026-01-02T03:04:05.000Z"
    assert mine["maxValues"]["at"] == "2026-01-02T03:04:09.679Z"
    # a long minimum is cut to a prefix (still a lower bound), a long maximum left out
    assert mine["minValues"]["long"] == "q" * 32 and "long" not in mine["maxValues"]


def test_partitioned_append_matches_delta_rs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_files, "MIN_PARTITION_ROWS", 0)
    ours, theirs = _both(tmp_path, FRAME, partition_by=["part"])
    assert _written_by(ours) == {"Polars"}
    assert ours.schema() == theirs.schema()
    assert ours.metadata().partition_columns == theirs.metadata().partition_columns == ["part"]
    assert _rows(ours).equals(_rows(theirs))
    files = DeltaTableRef(str(tmp_path / "polars.delta")).file_uris("part = 'p1'")
    assert len(files) == 1 and "/part=p1/" in files[0]
    assert pl.read_delta(ours).filter(pl.col("part") == "p1")["id"].sort().to_list() == ["b", "c"]
    # the partition column is not stored in the files, as delta-rs does it
    assert "part" not in pq.read_schema(files[0].removeprefix("file://")).names


@pytest.mark.parametrize("by", [["part"], ["part", "n"]])
def test_partition_stats_equal_the_stats_of_each_partitions_rows(by: list[str]) -> None:
    """One group_by gives, per partition, exactly what files_stats gives for its split frame."""
    frame = pl.concat([FRAME, FRAME.with_columns(part=pl.lit("p2"), v=None)], how="diagonal_relaxed")
    frame = frame.with_columns(v=pl.lit("3d4e5cee"), run=pl.lit(None, dtype=pl.String))
    options = {"unbounded": {"long"}, "constant": {"v", "run"}}
    grouped = partition_stats(frame, by, **options)  # type: ignore[arg-type]
    splits = frame.partition_by(by, as_dict=True, maintain_order=True)
    assert len(grouped) == len(splits) >= 3
    expected = files_stats([rows.drop(by) for rows in splits.values()], **options)  # type: ignore[arg-type]
    assert [grouped[key] for key in splits] == expected


def test_partitioned_write_records_each_files_own_stats(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_files, "MIN_PARTITION_ROWS", 0)
    ours, _ = _both(tmp_path, FRAME, partition_by=["part"])
    log = Path(ours.table_uri.removeprefix("file://")) / "_delta_log" / f"{0:020d}.json"
    adds = [json.loads(line)["add"] for line in log.read_text().splitlines() if '"add"' in line]
    assert len(adds) == 2
    for add in adds:
        rows = FRAME.filter(pl.col("part") == add["partitionValues"]["part"]).drop("part")
        assert json.loads(add["stats"]) == json.loads(file_stats(rows))


def test_appends_keep_one_commit_each_and_stats_skip_files(tmp_path: Path) -> None:
    ref = DeltaTableRef(str(tmp_path / "t.delta"))
    versions = [ref.append(pl.DataFrame({"id": [f"{k}{i}" for i in range(3)], "k": [k] * 3})) for k in "abc"]
    assert versions == [0, 1, 2]
    table = ref.load()
    assert table is not None and _written_by(table) == {"Polars"}
    assert [h["operation"] for h in table.history()] == ["WRITE", "WRITE", "CREATE TABLE"]
    # the min/max statistics let delta-rs and Polars skip the two files that cannot hold k = 'b'
    [only] = table.file_uris(file_pruning_predicate="k = 'b'")
    plan = pl.scan_delta(table).filter(pl.col("k") == "b").explain()
    assert plan.count(".parquet") == 1 and only in plan
    assert pl.scan_delta(table).filter(pl.col("k") == "b").collect()["id"].to_list() == ["b0", "b1", "b2"]


@pytest.mark.parametrize(
    ("column", "values"),
    [
        ("unsigned", pl.Series([1, 2], dtype=pl.UInt32)),
        ("naive", pl.Series([datetime(2024, 1, 1), None], dtype=pl.Datetime("us"))),
        ("nanos", pl.Series([T0, None], dtype=pl.Datetime("ns", "UTC"))),
    ],
)
def test_unusual_dtypes_go_through_delta_rs(tmp_path: Path, column: str, values: pl.Series) -> None:
    frame = pl.DataFrame({"id": ["a", "b"], column: values})
    assert not polars_writable(frame.schema, ())
    ref = DeltaTableRef(str(tmp_path / "t.delta"))
    assert ref.append(frame) == 0
    table = ref.load()
    assert table is not None and _written_by(table) != {"Polars"}
    assert table.history(1)[0]["operation"] == "WRITE"


def test_unsafe_partition_values_and_schema_changes_go_through_delta_rs(tmp_path: Path) -> None:
    ref = DeltaTableRef(str(tmp_path / "t.delta"))
    ref.append(pl.DataFrame({"id": ["a"], "part": ["with space/slash"]}), partition_by=["part"])
    ref.append(pl.DataFrame({"id": ["b"], "part": [None]}, schema_overrides={"part": pl.String}))
    ref.append(pl.DataFrame({"id": ["c"], "part": ["ok"]}))  # fits: Polars writes it
    ref.append(pl.DataFrame({"id": ["d"], "part": ["ok"], "extra": [1]}))  # new column: merged
    table = ref.load()
    assert table is not None
    assert [h["operation"] for h in table.history()] == ["WRITE"] * 4
    rows = pl.read_delta(table).sort("id")
    assert rows["part"].to_list() == ["with space/slash", None, "ok", "ok"]
    assert rows["extra"].to_list() == [None, None, None, 1]
    assert len({uri.split("/")[-2] for uri in table.file_uris()}) == 3


def test_file_stats_of_an_empty_struct_free_frame() -> None:
    stats = json.loads(file_stats(pl.DataFrame({"f": [1.0, float("nan")], "b": [b"x", None]})))
    assert stats == {"numRecords": 2, "minValues": {}, "maxValues": {}, "nullCount": {"f": 0, "b": 1}}


def test_many_small_partitions_go_through_delta_rs(tmp_path: Path) -> None:
    ref = DeltaTableRef(str(tmp_path / "t.delta"))
    ref.append(FRAME.head(2), partition_by=["part"])  # 2 partitions of 1 row: delta-rs
    ref.append(FRAME.head(1))  # one partition: Polars
    table = ref.load()
    assert table is not None
    assert [h["operation"] for h in table.history()] == ["WRITE", "WRITE"]
    assert len(_written_by(table)) == 2 and "Polars" in _written_by(table)


@pytest.mark.parametrize(("rows", "groups"), [(1_000, 1), (300_000, 4), (5_000_000, 39)])
def test_row_groups_split_small_files_for_parallel_encoding(tmp_path: Path, rows: int, groups: int) -> None:
    frame = pl.select(id=pl.int_range(rows).cast(pl.String), n=pl.int_range(rows))
    ref = DeltaTableRef(str(tmp_path / "t.delta"))
    ref.append(frame)
    [uri] = DeltaTable(ref.uri).file_uris()
    metadata = pq.read_metadata(uri.removeprefix("file://"))
    assert metadata.num_rows == rows and metadata.num_row_groups == groups


def test_store_files_keep_bounds_of_ids_and_versions_not_of_hashes(pipeline: object, tmp_path: Path) -> None:
    """Delta statistics: min/max for IDs, user and version columns, null counts only for the hash
    columns; Parquet footers: null counts only. Files of another feature version are still
    skipped through the Delta log."""
    import metaxy_delta as mx
    from tests.store.conftest import video_samples

    store = mx.DeltaMetadataStore(tmp_path)
    with store.open("w"):
        store.write("video/raw", video_samples(5))
        store.write("video/raw", video_samples(5, start=5).with_columns(metaxy_feature_version=pl.lit("old"), metaxy_project_version=pl.lit("old")), preserve_feature_version=True)
    table = DeltaTable(store.table_uri("video/raw"))
    for stats in (_stats_of(table, v) for v in (0, 1)):
        hashes = {"metaxy_provenance_by_field", "metaxy_provenance", "metaxy_data_version_by_field", "metaxy_data_version"}
        assert hashes.isdisjoint(stats["minValues"]) and hashes.isdisjoint(stats["maxValues"])
        assert hashes <= set(stats["nullCount"]) and stats["nullCount"]["metaxy_provenance_by_field"] == {"audio": 0, "frames": 0}
        for column in ("video_id", "path", "metaxy_feature_version", "metaxy_updated_at"):
            assert column in stats["minValues"] and column in stats["maxValues"], column
    for uri in table.file_uris():
        footer = pq.read_metadata(uri.removeprefix("file://")).row_group(0)
        column_stats = [footer.column(i).statistics for i in range(footer.num_columns)]
        assert all(s is not None and s.null_count is not None and not s.has_min_max for s in column_stats)
    plan = pl.scan_delta(table).filter(pl.col("metaxy_feature_version") == "old").explain()
    assert plan.count(".parquet") == 1
    assert pl.scan_delta(table).filter(pl.col("metaxy_feature_version") == "old").collect()["video_id"].to_list() == [f"v{i:04d}" for i in range(5, 10)]


def _stats_of(table: DeltaTable, version: int) -> dict[str, Any]:
    log = Path(table.table_uri.removeprefix("file://")) / "_delta_log" / f"{version:020d}.json"
    [add] = [json.loads(line)["add"] for line in log.read_text().splitlines() if '"add"' in line]
    return json.loads(add["stats"])


def test_writes_over_partitions_take_the_cheaper_encoder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Several large partitions are encoded by Polars (files written two at a time, statistics
    per file); many small ones go to delta-rs's single pass (see ``MIN_PARTITION_ROWS``)."""
    monkeypatch.setattr(_files, "MIN_PARTITION_ROWS", 1_000)
    big = pl.DataFrame({"id": [f"s{i}" for i in range(3_000)], "part": [f"p{i % 3}" for i in range(3_000)]})
    small = big.with_columns(pl.format("q{}", pl.int_range(pl.len()) % 30).alias("part"))
    for name, frame, writer in (("big", big, {"Polars"}), ("small", small, {"delta-rs"})):
        ref = DeltaTableRef(str(tmp_path / name))
        assert ref.append(frame, partition_by=["part"]) == 0
        table = DeltaTable(ref.uri)
        assert _written_by(table) == writer, name
        assert pl.read_delta(table).sort("id").equals(frame.sort("id").select(table.schema().to_arrow().names))
    actions = pl.DataFrame(DeltaTable(str(tmp_path / "big")).get_add_actions(flatten=True))
    by_part = {r["partition.part"]: r for r in actions.iter_rows(named=True)}
    assert sorted(by_part) == ["p0", "p1", "p2"]
    for part, row in by_part.items():
        ids = big.filter(pl.col("part") == part)["id"]
        assert (row["num_records"], row["min.id"], row["max.id"]) == (1_000, ids.min(), ids.max())


def test_many_partitions_seen_in_a_sample_skip_the_split(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A sample proving too many partitions sends the frame to delta-rs unsplit; one that does
    not (partitions hidden between sampled rows) still ends there after the exact count."""
    monkeypatch.setattr(_files, "MIN_PARTITION_ROWS", 1_000)
    monkeypatch.setattr(_files, "PARTITION_SAMPLE_ROWS", 100)
    spread = pl.DataFrame({"id": [f"s{i}" for i in range(3_000)], "part": [f"q{i % 30}" for i in range(3_000)]})
    splits: list[int] = []
    split = _files._partition_groups
    monkeypatch.setattr(_files, "_partition_groups", lambda f, p: splits.append(f.height) or split(f, p))
    assert _files._sampled_partitions(spread, ["part"]) > 3  # proves > 3 partitions: < 1,000 rows each
    assert DeltaTableRef(str(tmp_path / "spread")).append(spread, partition_by=["part"]) == 0
    assert splits == [] and _written_by(DeltaTable(str(tmp_path / "spread"))) == {"delta-rs"}
    # one partition of 2,971 rows and 29 of one row each, 30 in all: a sample of 100 rows sees
    # too few of them, so the frame is split, counted exactly, and still goes to delta-rs
    hidden = spread.with_columns(pl.when(pl.int_range(pl.len()) < 29).then(pl.format("r{}", pl.int_range(pl.len()))).otherwise(pl.lit("p0")).alias("part"))
    assert _files._sampled_partitions(hidden, ["part"]) <= 3 and hidden["part"].n_unique() == 30
    assert DeltaTableRef(str(tmp_path / "hidden")).append(hidden, partition_by=["part"]) == 0
    assert splits == [3_000] and _written_by(DeltaTable(str(tmp_path / "hidden"))) == {"delta-rs"}
    assert pl.read_delta(str(tmp_path / "hidden")).sort("id").equals(hidden.sort("id"))


def test_constant_columns_are_written_as_shared_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stamped constants (scalar columns) come back with their values, in every partition."""
    monkeypatch.setattr(_files, "MIN_PARTITION_ROWS", 0)
    monkeypatch.setattr(_constants, "CONSTANT_CHUNK_ROWS", 7)  # several chunks per file
    monkeypatch.setattr(_constants, "SHARED_CONSTANTS_MIN_ROWS", 10)
    n = 50
    frame = pl.select(
        id=pl.format("s{}", pl.int_range(n)), part=pl.format("p{}", pl.int_range(n) % 3)
    ).with_columns(
        version=pl.lit("3d4e5cee"), at=pl.lit(T0, dtype=pl.Datetime("us", "UTC")),
        gone=pl.lit(None, dtype=pl.Datetime("us", "UTC")), run=pl.lit(None, dtype=pl.String),
    )  # fmt: skip
    constants = ["version", "at", "gone", "run"]
    for partition_by in (None, ["part"]):
        ref = DeltaTableRef(str(tmp_path / f"t-{partition_by}"))
        ref.append(frame, partition_by=partition_by, constant_columns=constants)
        table = DeltaTable(ref.uri)
        assert _written_by(table) == {"Polars"}
        back = pl.read_delta(table).select(frame.columns).sort("id")
        assert back.equals(frame.sort("id")), partition_by
    shared = _constants.constant_series("v", T0, pl.Datetime("us", "UTC"), 20)
    assert shared.n_chunks() == 3 and shared.to_list() == [T0] * 20


def _constant_frame(n: int) -> tuple[pl.DataFrame, list[str]]:
    """FRAME's dtypes repeated to ``n`` rows, plus stamped-like constants of every kind."""
    frame = pl.concat([FRAME] * (n // FRAME.height)).with_columns(
        version=pl.lit("3d4e5cee"), project=pl.lit("0d15ea5e"), run=pl.lit(None, dtype=pl.String),
        at=pl.lit(T0, dtype=pl.Datetime("us", "UTC")), gone=pl.lit(None, dtype=pl.Datetime("us", "UTC")),
    )  # fmt: skip
    return frame, ["version", "project", "run", "at", "gone"]


@pytest.mark.parametrize("codec", ["ZSTD", "LZ4_RAW"])
def test_string_constants_written_as_enums_give_byte_identical_files(tmp_path: Path, codec: str) -> None:
    """The Enum form of the String constants changes the writer's work, not one byte of the file."""
    from deltalake import WriterProperties

    options = polars_options(WriterProperties(compression=codec))
    assert options is not None
    assert _files._enums_encode_identically(options)  # the speed-up is active on the installed Polars
    frame, constants = _constant_frame(80_000)
    shared = _constants.share_constants(frame, constants)
    enums = _constants.as_enums(shared, constants)
    assert [enums.schema[c] for c in ("version", "run")] == [pl.Enum(["3d4e5cee"]), pl.Enum([])]
    metadata = _constants.footer_metadata(shared, options)
    _files._write_one(shared, "plain.parquet", str(tmp_path), None, options)
    _files._write_one(enums, "enums.parquet", str(tmp_path), None, options, metadata)
    plain, written = (tmp_path / "plain.parquet").read_bytes(), (tmp_path / "enums.parquet").read_bytes()
    assert written == plain
    assert "dictionary" not in str(pq.read_schema(tmp_path / "enums.parquet"))
    # without the String frame's footer, the file would declare Enum/dictionary columns
    _files._write_one(enums, "bare.parquet", str(tmp_path), None, options)
    assert "dictionary" in str(pq.read_schema(tmp_path / "bare.parquet"))


@pytest.mark.parametrize("enums", [True, False])
def test_tables_with_constant_columns_read_as_strings_everywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, enums: bool
) -> None:
    """Polars, delta-rs and pyarrow see String constants as strings, with their values; a
    Polars that cannot write them as Enums writes the same table the slower way."""
    monkeypatch.setattr(_files, "_enums_encode_identically", lambda *_: enums)
    monkeypatch.setattr(_constants, "SHARED_CONSTANTS_MIN_ROWS", 10)
    frame, constants = _constant_frame(400)
    ref = DeltaTableRef(str(tmp_path / "t.delta"))
    ref.append(frame, constant_columns=constants)
    table = DeltaTable(ref.uri)
    assert _written_by(table) == {"Polars"}
    assert pl.read_delta(table).sort("id", "n", nulls_last=True).equals(frame.sort("id", "n", nulls_last=True))
    arrow = table.to_pyarrow_table()
    assert str(arrow.schema.field("version").type) in {"string", "large_string", "string_view"}
    assert set(arrow.column("version").to_pylist()) == {"3d4e5cee"}
    assert arrow.column("run").null_count == 400
    files = list(Path(ref.uri.removeprefix("file://")).glob("*.parquet"))
    assert len(files) == 1 and "dictionary" not in str(pq.read_schema(files[0]))
    # statistics of the constants (taken from their first row) are those of a full pass
    [stats] = _stats(table)
    assert [stats["minValues"].get(c) for c in constants] == ["3d4e5cee", "0d15ea5e", None, "2026-01-02T03:04:05.678Z", None]
    assert [stats["maxValues"].get(c) for c in constants] == ["3d4e5cee", "0d15ea5e", None, "2026-01-02T03:04:05.679Z", None]
    assert [stats["nullCount"][c] for c in constants] == [0, 0, 400, 0, 400]
    assert stats == json.loads(file_stats(frame))


def test_large_frames_are_split_into_files_of_about_file_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    frame = pl.select(id=pl.format("s{}", pl.int_range(10_000)), n=pl.int_range(10_000))
    size = frame.estimated_size()
    monkeypatch.setattr(_files, "FILE_BYTES", size // 4 + 1)  # -> 4 files
    monkeypatch.setattr(_files, "SIZE_SAMPLE_ROWS", 500)  # the size is estimated from 500 rows
    ref = DeltaTableRef(str(tmp_path / "t.delta"))
    ref.append(frame.with_columns(v=pl.lit("3d4e5cee")), constant_columns=["v"])
    actions = pl.DataFrame(DeltaTable(ref.uri).get_add_actions(flatten=True)).sort("min.n")
    assert actions["num_records"].to_list() == [2_500] * 4
    assert actions["min.n"].to_list() == [0, 2_500, 5_000, 7_500]
    assert pl.read_delta(ref.uri).sort("n").equals(frame.with_columns(v=pl.lit("3d4e5cee")))
