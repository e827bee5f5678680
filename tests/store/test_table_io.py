"""DeltaTableRef against real Delta tables (local paths; round trips also on moto S3)."""

from __future__ import annotations

import multiprocessing as mp
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pytest

from metaxy_delta.errors import (
    CommitConflictError,
    MetadataSchemaError,
    MetadataStoreError,
    TableNotFoundError,
)
from metaxy_delta.store._table import TXN_ID_KEY, DeltaTableRef


def _rows(ref: DeltaTableRef, *, version: int | None = None) -> list[dict[str, Any]]:
    frame = ref.scan(version)
    assert frame is not None
    return frame.collect().sort(pl.all()).to_dicts()


def _dated(ids: list[int], date: str) -> pl.DataFrame:
    return pl.DataFrame({"id": ids, "date": [date] * len(ids)})


@pytest.fixture
def ref(tmp_path: Path) -> DeltaTableRef:
    return DeltaTableRef(str(tmp_path / "t.delta"))


# --------------------------------------------------------------------------- reads / writes


def test_missing_table_reads_as_absent(ref: DeltaTableRef) -> None:
    assert not ref.exists()
    assert ref.version() is None
    assert ref.load() is None
    assert ref.scan() is None
    assert ref.partition_columns() is None
    with pytest.raises(TableNotFoundError, match="t.delta"):
        ref.history()
    with pytest.raises(TableNotFoundError, match="t.delta"):
        ref.delete("id = 1")


def test_append_creates_then_appends_one_commit_each(
    root_and_options: tuple[str, dict[str, str] | None],
) -> None:
    root, options = root_and_options
    ref = DeltaTableRef(f"{root}/a/b.delta", options)

    assert (
        ref.append(
            _dated([1, 2], "2024-01-01"), commit_metadata={"metaxy.materialization_id": "m1"}
        )
        == 0
    )
    assert ref.exists()
    assert ref.append(pa.table({"id": [3], "date": ["2024-01-02"]})) == 1
    assert ref.version() == 1

    assert _rows(ref) == [
        {"id": 1, "date": "2024-01-01"},
        {"id": 2, "date": "2024-01-01"},
        {"id": 3, "date": "2024-01-02"},
    ]
    history = ref.history()
    assert [h["version"] for h in history] == [1, 0]
    assert [h["operation"] for h in history] == ["WRITE", "CREATE TABLE"]
    assert history[1]["metaxy.materialization_id"] == "m1"
    assert history[0][TXN_ID_KEY] != history[1][TXN_ID_KEY]


def test_scan_selects_columns_and_is_lazy(ref: DeltaTableRef) -> None:
    ref.append(_dated([1, 2], "d"))
    frame = ref.scan(columns=["id"])
    assert isinstance(frame, pl.LazyFrame)
    assert frame.collect_schema().names() == ["id"]
    assert sorted(frame.collect()["id"]) == [1, 2]


def test_partition_filter_prunes_files(ref: DeltaTableRef) -> None:
    dates = ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"]
    ref.append(
        pl.concat([_dated([i * 10, i * 10 + 1], d) for i, d in enumerate(dates)]),
        partition_by=["date"],
    )
    ref.append(
        _dated([99], "2024-01-02")
    )  # later appends keep the partitioning without repeating it

    assert ref.partition_columns() == ["date"]
    files = ref.file_uris("date = '2024-01-02'")
    assert len(files) == 2
    assert all("/date=2024-01-02/" in f for f in files)
    assert len(ref.file_uris()) == 5

    frame = ref.scan()
    assert frame is not None
    filtered = frame.filter(pl.col("date") == "2024-01-02")
    plan = filtered.explain()
    scanned = [f for f in ref.file_uris() if f.rsplit("/", 1)[-1] in plan]
    assert sorted(scanned) == files
    assert sorted(filtered.collect()["id"]) == [10, 11, 99]


def test_partition_by_mismatch_raises(ref: DeltaTableRef) -> None:
    ref.append(_dated([1], "d"), partition_by="date")
    ref.append(_dated([2], "d"), partition_by=["date"])  # same partitioning: fine
    with pytest.raises(MetadataStoreError, match=r"partitioned by \['date'\], not \['id'\]"):
        ref.append(_dated([3], "d"), partition_by=["id"])
    assert ref.version() == 1


def test_write_options_cannot_override_managed_keywords(ref: DeltaTableRef) -> None:
    with pytest.raises(ValueError, match="mode"):
        ref.append(_dated([1], "d"), write_options={"mode": "overwrite"})
    # partition_by / schema_mode in write_options act like the arguments
    ref.append(
        _dated([1], "d"), write_options={"partition_by": ["date"], "target_file_size": 1 << 20}
    )
    assert ref.partition_columns() == ["date"]


def test_schema_merge_adds_column_and_struct_subfield(ref: DeltaTableRef) -> None:
    ref.append(pl.DataFrame({"id": [1], "pbf": [{"a": "h1"}]}))
    ref.append(pl.DataFrame({"id": [2], "pbf": [{"a": "h2", "b": "h3"}], "extra": ["x"]}))

    frame = ref.scan()
    assert frame is not None
    schema = frame.collect_schema()
    assert schema["pbf"] == pl.Struct({"a": pl.String, "b": pl.String})
    assert schema["extra"] == pl.String
    assert _rows(ref) == [
        {"id": 1, "pbf": {"a": "h1", "b": None}, "extra": None},
        {"id": 2, "pbf": {"a": "h2", "b": "h3"}, "extra": "x"},
    ]


def test_incompatible_type_raises_schema_error(ref: DeltaTableRef) -> None:
    ref.append(pl.DataFrame({"id": [1]}))
    with pytest.raises(MetadataSchemaError, match="t.delta"):
        ref.append(pl.DataFrame({"id": ["not-an-int"]}))
    assert ref.version() == 0


def test_time_travel_by_version_and_datetime(
    root_and_options: tuple[str, dict[str, str] | None],
) -> None:
    root, options = root_and_options
    ref = DeltaTableRef(f"{root}/tt.delta", options)
    before_creation = datetime.now(UTC)
    time.sleep(1.1)  # S3 LastModified has 1 s resolution: keep instants well inside the gaps
    ref.append(pl.DataFrame({"id": [1]}))
    time.sleep(1.1)
    between = datetime.now(UTC)
    time.sleep(1.1)
    ref.append(pl.DataFrame({"id": [2]}))

    assert [r["id"] for r in _rows(ref, version=0)] == [1]
    assert [r["id"] for r in _rows(ref)] == [1, 2]
    at_between = ref.load(as_of=between)
    assert at_between is not None and at_between.version() == 0
    naive_between = between.replace(tzinfo=None)  # naive = UTC
    frame = ref.scan(as_of=naive_between)
    assert frame is not None and frame.collect()["id"].to_list() == [1]
    assert ref.load(as_of=datetime.now(UTC)).version() == 1  # type: ignore[union-attr]
    assert ref.load(as_of=before_creation) is None

    with pytest.raises(
        MetadataStoreError, match=r"tt\.delta has no version 7; the latest version is 1"
    ):
        ref.load(7)
    with pytest.raises(ValueError, match="either"):
        ref.load(0, as_of=between)


def test_delete_removes_only_matching_rows(
    root_and_options: tuple[str, dict[str, str] | None],
) -> None:
    root, options = root_and_options
    ref = DeltaTableRef(f"{root}/del.delta", options)
    ref.append(pl.concat([_dated([1, 2, 3], "a"), _dated([4, 5], "b")]), partition_by=["date"])

    version, metrics = ref.delete("id = 2 OR id = 5")
    assert version == 1
    assert metrics["num_deleted_rows"] == 2
    assert sorted(r["id"] for r in _rows(ref)) == [1, 3, 4]

    version, metrics = ref.delete("date = 'b'")  # partition-only: metadata-only remove
    assert (version, metrics["num_deleted_rows"], metrics["num_added_files"]) == (2, 1, 0)

    version, metrics = ref.delete("id = 999")  # nothing matches: no commit
    assert (version, metrics["num_deleted_rows"]) == (2, 0)
    assert ref.version() == 2

    version, metrics = ref.delete()  # everything
    assert (version, metrics["num_deleted_rows"]) == (3, 2)
    assert _rows(ref) == []
    assert ref.exists()


@pytest.mark.parametrize("arrow", [False, True], ids=["polars", "arrow"])
def test_append_on_a_snapshot_older_than_a_delete_is_recommitted(
    ref: DeltaTableRef, arrow: bool
) -> None:
    """delta-rs 1.6 fails an append whose snapshot had a file a later delete removed
    (``ConcurrentDeleteRead``, although an append reads nothing); it is re-committed on a
    fresh snapshot, and fails only when no attempt is left."""
    ref.append(_dated([1, 2], "a"))
    ref.append(_dated([3], "b"))
    new = _dated([4], "c")
    data = new.to_arrow() if arrow else new

    stale = ref.load()
    assert ref.delete("id = 2")[0] == 2  # rewrites the first file
    with pytest.raises(CommitConflictError, match="in all 1 attempts"):
        ref.append(data, snapshot=stale, max_attempts=1)
    assert ref.version() == 2

    stale = ref.load()
    ref.delete("id = 3")  # removes the second file
    assert ref.append(data, snapshot=stale) == 4
    assert sorted(r["id"] for r in _rows(ref)) == [1, 4]
    assert [h["operation"] for h in ref.history()][:2] == ["WRITE", "DELETE"]


def test_delete_with_invalid_predicate_names_table(ref: DeltaTableRef) -> None:
    ref.append(pl.DataFrame({"id": [1]}))
    with pytest.raises(MetadataStoreError, match=r"t\.delta.*No field named nope"):
        ref.delete("nope = 1")


# --------------------------------------------------------------------------- maintenance


def _three_small_files_then_compact(ref: DeltaTableRef) -> None:
    for i in range(3):
        ref.append(pl.DataFrame({"id": [i], "x": [i * 1.5]}))
    metrics = ref.optimize()
    assert (metrics["numFilesRemoved"], metrics["numFilesAdded"], metrics["version"]) == (3, 1, 3)


def test_optimize_compacts_without_changing_rows(ref: DeltaTableRef) -> None:
    for i in range(5):
        ref.append(pl.DataFrame({"id": [i], "x": [float(i)]}))
    before = _rows(ref)
    assert len(ref.file_uris()) == 5

    metrics = ref.optimize()
    assert metrics["numFilesRemoved"] == 5 and metrics["numFilesAdded"] == 1
    assert metrics["version"] == ref.version() == 5
    assert len(ref.file_uris()) == 1
    assert _rows(ref) == before

    again = ref.optimize()  # nothing left to do: no commit
    assert again["numFilesAdded"] == 0 and again["version"] == 5


def test_optimize_z_order(ref: DeltaTableRef) -> None:
    for i in range(4):
        ref.append(pl.DataFrame({"id": [i, i + 10], "x": [float(-i), float(i)]}))
    before = _rows(ref)
    metrics = ref.optimize(z_order=["id", "x"])
    assert metrics["plannerStrategy"] == "zOrder"
    assert metrics["numFilesRemoved"] == 4
    assert _rows(ref) == before


def test_vacuum_dry_run_lists_files_and_respects_retention(
    ref: DeltaTableRef, tmp_path: Path
) -> None:
    _three_small_files_then_compact(ref)
    on_disk = lambda: sorted(p.name for p in (tmp_path / "t.delta").glob("*.parquet"))  # noqa: E731
    assert len(on_disk()) == 4

    with pytest.raises(MetadataStoreError, match="retention"):
        ref.vacuum(retention_hours=0)  # below the 7-day minimum while enforced

    kept = ref.vacuum(retention_hours=1, dry_run=False, enforce_retention_duration=False)
    assert kept["num_files"] == 0 and len(on_disk()) == 4  # removed < 1 h ago: still needed
    assert len(_rows(ref, version=0)) == 1  # old versions inside the window stay readable

    dry = ref.vacuum(retention_hours=0, enforce_retention_duration=False)
    assert dry["dry_run"] and dry["num_files"] == 3
    assert all("/" not in f and f.endswith(".parquet") for f in dry["files"])
    assert len(on_disk()) == 4

    done = ref.vacuum(retention_hours=0, dry_run=False, enforce_retention_duration=False)
    assert done["files"] == dry["files"]
    assert on_disk() == [Path(ref.file_uris()[0]).name]
    assert len(_rows(ref)) == 3


@pytest.mark.parametrize("files", [4, 40])  # 40 > HEAD_LIMIT: found by one listing
def test_time_travel_to_vacuumed_files_fails_at_load_naming_the_version(
    root_and_options: tuple[str, dict[str, str] | None], files: int
) -> None:
    root, options = root_and_options
    ref = DeltaTableRef(f"{root}/vac.delta", options)
    for i in range(files):
        ref.append(_dated([i], "a b/c:d%" if i % 2 else "x"), partition_by=["date"])
        if i == 0:
            time.sleep(0.01)
            after_first = datetime.now(UTC)
            time.sleep(0.01)
    ref.optimize()
    assert len(_rows(ref, version=0)) == 1  # removed by optimize, not yet vacuumed: readable

    ref.vacuum(retention_hours=0, dry_run=False, enforce_retention_duration=False)
    expected = r"version 0 of Delta table .*vac\.delta cannot be read: 1 of its data files were"
    with pytest.raises(MetadataStoreError, match=expected):
        ref.scan(0)  # at load time, not Polars' FileNotFoundError at collect
    if options is None:  # local: the same check, from the load that resolved the instant
        # (on S3 delta-rs dates commits by the objects' last-modified times, whole seconds)
        with pytest.raises(MetadataStoreError, match=expected):
            ref.load(as_of=after_first)
    latest = files + 2  # + VACUUM START, VACUUM END
    with pytest.raises(MetadataStoreError, match=rf"{files} of its.*latest version is {latest}"):
        ref.load(files - 1)
    assert len(_rows(ref, version=files)) == files  # the compacted version reads
    ref.append(_dated([99], "x"))
    assert len(_rows(ref, version=files)) == files  # appends since: nothing to look up


@pytest.mark.parametrize("repeat", [1, 7])  # 6 or 42 removed files: looked up or listed
def test_time_travel_across_removes_without_vacuum_finds_every_file(
    root_and_options: tuple[str, dict[str, str] | None], repeat: int
) -> None:
    root, options = root_and_options
    ref = DeltaTableRef(f"{root}/kept.delta", options)
    values = [f"{v}{n}" for n in range(repeat) for v in ["a b", "c:d", "e%f", "g=h", "ü/ß", "x"]]
    ref.append(pl.concat([_dated([i], v) for i, v in enumerate(values)]), partition_by=["date"])
    ref.delete("id >= 0")
    assert len(_rows(ref, version=0)) == len(values)  # every partition path found as it is


def test_checkpoint_and_history(ref: DeltaTableRef, tmp_path: Path) -> None:
    for i in range(3):
        ref.append(pl.DataFrame({"id": [i]}))
    ref.delete("id = 0")
    assert ref.checkpoint() == 3
    log = tmp_path / "t.delta" / "_delta_log"
    assert (log / "00000000000000000003.checkpoint.parquet").exists()
    assert (log / "_last_checkpoint").exists()

    history = ref.history()
    assert [h["operation"] for h in history] == ["DELETE", "WRITE", "WRITE", "CREATE TABLE"]
    assert [h["version"] for h in ref.history(limit=2)] == [3, 2]
    assert history[0]["operationMetrics"]["num_deleted_rows"] == 1
    assert ref.exists() and len(_rows(ref)) == 2


def test_exists_after_log_cleanup_removed_commit_zero(tmp_path: Path) -> None:
    ref = DeltaTableRef(str(tmp_path / "c.delta"))
    ref.append(
        pl.DataFrame({"id": [0]}),
        write_options={"configuration": {"delta.logRetentionDuration": "interval 0 seconds"}},
    )
    for i in range(1, 4):
        ref.append(pl.DataFrame({"id": [i]}))
    ref.checkpoint()
    table = ref.load()
    assert table is not None
    table.cleanup_metadata()
    assert not (tmp_path / "c.delta" / "_delta_log" / "00000000000000000000.json").exists()

    assert ref.exists()
    with pytest.raises(MetadataStoreError, match="no longer in the log"):
        ref.load(0)


# --------------------------------------------------------------------------- concurrency


def _append_worker(
    uri: str, writer: int, n: int, barrier: Any, retries: int, attempts: int, out: Any,
    polars: bool = False,
) -> None:
    ref = DeltaTableRef(uri)
    barrier.wait()
    for seq in range(n):
        rows = {"writer": [writer], "seq": [seq]}
        try:
            version = ref.append(
                pl.DataFrame(rows) if polars else pa.table(rows),
                commit_metadata={"test.writer": writer, "test.seq": seq},
                max_commit_retries=retries,
                max_attempts=attempts,
            )
            out.put((writer, seq, version, None))
        except CommitConflictError as err:
            out.put((writer, seq, None, str(err)))


def _run_appenders(
    uri: str, writers: int, n: int, retries: int = 100, attempts: int = 5, polars: bool = False
) -> list[tuple]:
    ctx = mp.get_context("spawn")  # never fork a process that runs the tokio runtime
    barrier, out = ctx.Barrier(writers), ctx.Queue()
    procs = [
        ctx.Process(
            target=_append_worker, args=(uri, w, n, barrier, retries, attempts, out, polars)
        )
        for w in range(writers)
    ]
    for proc in procs:
        proc.start()
    results = [out.get(timeout=120) for _ in range(writers * n)]
    for proc in procs:
        proc.join(timeout=60)
        assert proc.exitcode == 0
    return results


def _assert_versions_match_commits(ref: DeltaTableRef, results: list[tuple]) -> None:
    """Every returned version is the commit that carries the writer's own metadata."""
    by_version = {h["version"]: h for h in ref.history()}
    for writer, seq, version, _ in results:
        assert (by_version[version]["test.writer"], by_version[version]["test.seq"]) == (
            writer,
            seq,
        )


@pytest.mark.parametrize("polars", [False, True], ids=["arrow", "polars"])
def test_concurrent_creation_of_the_same_table(tmp_path: Path, polars: bool) -> None:
    uri = str(tmp_path / "race.delta")
    results = _run_appenders(uri, writers=4, n=1, polars=polars)
    ref = DeltaTableRef(uri)
    assert sorted(r[2] for r in results) == [0, 1, 2, 3]
    _assert_versions_match_commits(ref, results)
    assert len(_rows(ref)) == 4
    if polars:  # one writer creates the table, the others append (never a second CREATE TABLE)
        assert [h["operation"] for h in ref.history()] == ["WRITE"] * 3 + ["CREATE TABLE"]


@pytest.mark.slow
def test_concurrent_appends_four_processes(tmp_path: Path) -> None:
    uri = str(tmp_path / "conc.delta")
    ref = DeltaTableRef(uri)
    ref.append(pa.table({"writer": pa.array([], pa.int64()), "seq": pa.array([], pa.int64())}))

    results = _run_appenders(uri, writers=4, n=50)

    assert all(err is None for *_, err in results)
    assert ref.version() == 200
    assert sorted(r[2] for r in results) == list(range(1, 201))  # one commit per append
    _assert_versions_match_commits(ref, results)
    frame = ref.scan()
    assert frame is not None
    rows = frame.collect()
    assert rows.height == 200
    assert rows.select("writer", "seq").n_unique() == 200
    assert sum(h["operationMetrics"].get("num_retries", 0) for h in ref.history()) > 0


@pytest.mark.slow
def test_exhausted_retries_raise_commit_conflict_error(tmp_path: Path) -> None:
    uri = str(tmp_path / "conflict.delta")
    ref = DeltaTableRef(uri)
    ref.append(pa.table({"writer": pa.array([], pa.int64()), "seq": pa.array([], pa.int64())}))

    results = _run_appenders(uri, writers=4, n=10, retries=0, attempts=2)

    failures = [err for *_, err in results if err is not None]
    assert failures, "expected lost races with max_commit_retries=0"
    assert all(uri in err and "2 attempts" in err for err in failures)
    successes = [r for r in results if r[3] is None]
    assert ref.version() == len(successes)
    assert len(_rows(ref)) == len(successes)
    _assert_versions_match_commits(ref, successes)


def _keep_appender(uri: str, writer: int, n: int, barrier: Any) -> None:
    ref = DeltaTableRef(uri)
    barrier.wait()
    for seq in range(n):
        ref.append(pa.table({"kind": ["keep"], "writer": [writer], "seq": [seq]}))


@pytest.mark.slow
def test_delete_racing_appends_never_removes_unmatched_rows(tmp_path: Path) -> None:
    uri = str(tmp_path / "delrace.delta")
    ref = DeltaTableRef(uri)
    drop = pa.table({"kind": ["drop"] * 3, "writer": [-1] * 3, "seq": [0, 1, 2]})
    ref.append(drop)
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(3)
    procs = [ctx.Process(target=_keep_appender, args=(uri, w, 20, barrier)) for w in range(2)]
    for proc in procs:
        proc.start()
    barrier.wait()
    deleted, drop_writes = 0, 1
    # Delete and append while the appenders run. A delete commits about every 50 ms, and each
    # one fails the appends in flight (delta-rs 1.6 counts their snapshot as read), so the job
    # stops after 25 rounds: a delete loop that never pauses could starve an append's 10 tries.
    while any(proc.is_alive() for proc in procs) and drop_writes <= 25:
        deleted += ref.delete("kind = 'drop'")[1]["num_deleted_rows"]
        ref.append(drop)
        drop_writes += 1
    for proc in procs:
        proc.join(timeout=120)
        assert proc.exitcode == 0
    deleted += ref.delete("kind = 'drop'")[1]["num_deleted_rows"]

    rows = _rows(ref)
    assert drop_writes > 2
    assert deleted == 3 * drop_writes
    assert all(r["kind"] == "keep" for r in rows)
    assert sorted((r["writer"], r["seq"]) for r in rows) == [
        (w, s) for w in range(2) for s in range(20)
    ]
