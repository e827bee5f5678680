"""An open store reuses the latest snapshot it read while the table is unchanged (_snapshots)."""

from __future__ import annotations

import pickle

import polars as pl

import metaxy_delta as mx
from tests.store.conftest import ids, video_samples


def _cached_table(store: mx.DeltaMetadataStore, key: str) -> object:
    entry = store._snapshots.get(store.table_uri(key))
    assert entry is not None, f"no current cached snapshot of {key}"
    return entry.table


def _sorted(frame: object) -> pl.DataFrame:
    return frame.collect().to_native().sort("video_id")  # type: ignore[attr-defined]


def test_reads_reuse_the_snapshot_until_any_commit(
    root_and_options: tuple[str, dict[str, str] | None], pipeline: mx.FeatureGraph
) -> None:
    root, options = root_and_options
    store = mx.DeltaMetadataStore(root, storage_options=options)
    other = mx.DeltaMetadataStore(root, storage_options=options)  # another writer, same tables
    with store.open("w"), other.open("w"):
        store.write("video/raw", video_samples(10))
        assert len(ids(store.read("video/raw"))) == 10
        first = _cached_table(store, "video/raw")
        assert len(ids(store.read("video/raw", filters=["video_id < 'v0005'"]))) == 5
        assert _cached_table(store, "video/raw") is first  # no log replay for the second read

        other.write("video/raw", video_samples(5, start=10))  # a commit the cache did not see
        assert len(ids(store.read("video/raw"))) == 15
        assert _cached_table(store, "video/raw") is not first

        other.delete("video/raw", filters=["video_id >= 'v0010'"], soft=False)
        assert len(ids(store.read("video/raw"))) == 10
        assert len(ids(store.read("video/raw", version=1))) == 15  # past versions: no cache


def test_a_lazy_read_keeps_its_version_after_later_commits(
    root_and_options: tuple[str, dict[str, str] | None], pipeline: mx.FeatureGraph
) -> None:
    root, options = root_and_options
    store = mx.DeltaMetadataStore(root, storage_options=options)
    with store.open("w"):
        store.write("video/raw", video_samples(10))
        before = store.read("video/raw")  # lazy, built on the cached snapshot
        store.write("video/raw", video_samples(5, start=10))
        after = store.read("video/raw")
        assert len(ids(before)) == 10  # collected after the commit: still version 0
        assert len(ids(after)) == 15
        assert len(ids(before)) == 10  # and the newer snapshot did not change it


def test_the_reused_scan_answers_other_filters_columns_and_resolves(tmp_path, pipeline) -> None:
    """Polars keeps the file listing of the first collect inside the cached scan frame: later
    frames derived from it with other partition filters and projections must get exactly what a
    fresh store (no cache) gets."""
    store = mx.DeltaMetadataStore(tmp_path / "s", partition_by=["part"])
    samples = video_samples(40).with_columns(part=pl.Series([f"p{i % 4}" for i in range(40)]))
    queries = [
        dict(filters=["part = 'p1'"], columns=["video_id"]),
        dict(filters=["part = 'p2'"]),
        dict(filters=["part IN ('p0', 'p3')", "video_id > 'v0010'"], columns=["video_id", "part"]),
        dict(),
    ]
    with store.open("w"):
        store.write("video/raw", samples)
        store.write("video/transcript", store.resolve_update("video/transcript").new.to_native())
        store.write("video/raw", samples.head(8).with_columns(
            metaxy_provenance_by_field=pl.struct(audio=pl.lit("changed"), frames=pl.lit("f"))
        ))
        cached = [_sorted(store.read("video/raw", **q)) for q in [*queries, *queries]]
        stale = [
            len(store.resolve_update("video/transcript", filters={"video/raw": [part]}).stale)
            for part in ("part = 'p0'", "part = 'p1'", "part = 'p2'", "part = 'p3'")
        ]
        assert len(store._snapshots) == 2
    for q, got, again in zip(queries, cached[:4], cached[4:], strict=True):
        with mx.DeltaMetadataStore(tmp_path / "s").open("r") as fresh:
            expected = _sorted(fresh.read("video/raw", **q))
        assert got.equals(expected), q
        assert again.equals(expected), q
    assert stale == [2, 2, 2, 2]  # rows 0..7 changed audio, two per partition


def test_closing_the_store_empties_the_cache_and_pickles_start_empty(tmp_path, pipeline) -> None:
    store = mx.DeltaMetadataStore(tmp_path / "s")
    with store.open("w"):
        store.write("video/raw", video_samples(3))
        with store.open("r"):  # a nested open keeps the outer session's cache
            store.read("video/raw").collect()
        assert len(store._snapshots) == 1
        copy = pickle.loads(pickle.dumps(store))
        assert len(copy._snapshots) == 0
    assert len(store._snapshots) == 0


def test_threads_reading_one_open_store_while_another_store_writes(tmp_path, pipeline) -> None:
    """Reader threads share one open store (and its cache) while a writer commits: every read
    sees a whole number of commits, never fewer rows than an earlier read of the same thread,
    and the last reads see every row."""
    from concurrent.futures import ThreadPoolExecutor

    reader = mx.DeltaMetadataStore(tmp_path / "s")
    writer = mx.DeltaMetadataStore(tmp_path / "s")
    commits, rows_per_commit = 12, 5
    with writer.open("w"):
        writer.write("video/raw", video_samples(rows_per_commit))

    def count() -> int:
        with pipeline.use():  # the active graph is per context: threads start without it
            return len(ids(reader.read("video/raw")))

    def read_many() -> list[int]:
        return [count() for _ in range(25)]

    with reader.open("r"), ThreadPoolExecutor(4) as pool:
        readers = [pool.submit(read_many) for _ in range(3)]
        with writer.open("w"):
            for i in range(1, commits):
                writer.write("video/raw", video_samples(rows_per_commit, start=i * rows_per_commit))
        seen = [f.result() for f in readers]
        final = [pool.submit(count) for _ in range(4)]
        assert [f.result() for f in final] == [commits * rows_per_commit] * 4
    for counts in seen:
        assert counts == sorted(counts)
        assert all(c % rows_per_commit == 0 and c >= rows_per_commit for c in counts)


def test_a_write_after_a_read_reuses_the_snapshot_and_leaves_it_unchanged(
    root_and_options: tuple[str, dict[str, str] | None], pipeline: mx.FeatureGraph, monkeypatch
) -> None:
    """Resolve-then-write (a Dagster step) replays the log once, not twice; the snapshot a lazy
    read was built on still reads its version after the write, on the Polars path and on the
    delta-rs path (a new column: schema evolution)."""
    from metaxy_delta.store._table import DeltaTableRef

    root, options = root_and_options
    store = mx.DeltaMetadataStore(root, storage_options=options)
    opened: list[int | None] = []
    real_open = DeltaTableRef._open

    def counting_open(self: DeltaTableRef, version: int | None = None) -> object:
        opened.append(version)
        return real_open(self, version)

    with store.open("w"):
        store.write("video/raw", video_samples(4))
        before = store.read("video/raw")  # loads and caches the snapshot at version 0
        cached = _cached_table(store, "video/raw")
        monkeypatch.setattr(DeltaTableRef, "_open", counting_open)
        store.write("video/raw", video_samples(2, start=4))  # Polars path, commits on the cache
        assert opened == []  # no replay: the cached snapshot was current
        assert cached.version() == 0 and ids(before) == ids(video_samples(4))  # type: ignore[attr-defined]
        assert len(ids(store.read("video/raw"))) == 6
        middle = store.read("video/raw")
        cached = _cached_table(store, "video/raw")
        opened.clear()
        wider = video_samples(1, start=6).with_columns(note=pl.lit("new column"))
        store.write("video/raw", wider)  # delta-rs path: must not move the cached snapshot
        assert opened  # it loaded a table of its own
        assert cached.version() == 1 and len(ids(middle)) == 6  # type: ignore[attr-defined]
        assert len(ids(store.read("video/raw"))) == 7


def test_on_s3_a_write_after_a_read_skips_the_log_replay(
    s3_root: str, s3_storage_options: dict[str, str], moto_requests: object, pipeline: mx.FeatureGraph
) -> None:
    """The commit files a write GETs: fewer when the store's snapshot is current (read first)
    than when another writer moved the table since (the write replays the log)."""
    store = mx.DeltaMetadataStore(s3_root, storage_options=s3_storage_options)
    other = mx.DeltaMetadataStore(s3_root, storage_options=s3_storage_options)
    with store.open("w"), other.open("w"):
        for i in range(6):  # no checkpoint yet (every 10 commits): a replay GETs each commit
            store.write("video/raw", video_samples(1, start=i))

        def commit_gets_of_a_write(start: int) -> int:
            moto_requests.clear()  # type: ignore[attr-defined]
            store.write("video/raw", video_samples(1, start=start))
            return len(moto_requests.object_paths("GET", ".json"))  # type: ignore[attr-defined]

        assert len(ids(store.read("video/raw"))) == 6  # caches the snapshot
        cached = commit_gets_of_a_write(6)
        other.write("video/raw", video_samples(1, start=7))  # the cached snapshot is now stale
        stale = commit_gets_of_a_write(8)
        assert cached < stale, (cached, stale)
        assert len(ids(store.read("video/raw"))) == 9
