"""Latest-row selection: skipped when the table is one validated write, exact otherwise."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import narwhals as nw
import polars as pl
import pytest

import metaxy_delta as mx
from metaxy_delta.store import _reads
from metaxy_delta.store._frames import _latest_by_window, latest_rows, rows_after_first_write
from metaxy_delta.store._snapshots import Snapshot
from metaxy_delta.store._table import DeltaTableRef
from tests.store.conftest import ids, video_samples


@pytest.fixture
def large_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Treat every read as large: the first-write pre-pass runs however few rows are stored."""
    monkeypatch.setattr(_reads, "SMALL_SCAN_ROWS", 0)


def _plan(store: mx.DeltaMetadataStore) -> str:
    return store.read("video/raw").to_native().explain()


def _audio(store: mx.DeltaMetadataStore) -> list[str]:
    """The latest ``audio`` provenance of every sample, by ID."""
    latest = store.read("video/raw").collect().to_native().sort("video_id")
    return latest["metaxy_provenance_by_field"].struct.field("audio").to_list()


def test_single_validated_write_skips_dedup_until_the_next_write(
    tmp_path: Path, pipeline: mx.FeatureGraph, large_reads: None
) -> None:
    store = mx.DeltaMetadataStore(tmp_path)
    with store.open("w"):
        store.write("video/raw", video_samples(4))
        assert ".over(" not in _plan(store)
        assert ids(store.read("video/raw")) == [f"v{i:04d}" for i in range(4)]
        store.write("video/raw", video_samples(2, audio_suffix="-v2"))
        # later rows are one per sample: a hash-set lookup replaces the window
        assert ".over(" not in _plan(store) and "is_in" in _plan(store)
        assert _audio(store) == ["a-v0000-v2", "a-v0001-v2", "a-v0002", "a-v0003"]
        # time travel to the single-write version: no dedup needed, same rows as then
        assert ".over(" not in store.read("video/raw", version=0).to_native().explain()


def test_single_write_with_sample_history_is_still_deduplicated(
    tmp_path: Path, pipeline: mx.FeatureGraph
) -> None:
    store = mx.DeltaMetadataStore(tmp_path)
    rows = pl.concat([video_samples(2), video_samples(1, audio_suffix="-again")])
    with store.open("w"):
        store.write("video/raw", rows, with_sample_history=True)
        assert ".over(" in _plan(store)
        assert store.read("video/raw").collect().shape[0] == 2
        assert store.read("video/raw", with_sample_history=True).collect().shape[0] == 3


def test_window_when_later_writes_overlap_or_dominate(
    tmp_path: Path, pipeline: mx.FeatureGraph, large_reads: None
) -> None:
    store = mx.DeltaMetadataStore(tmp_path)
    with store.open("w"):
        store.write("video/raw", video_samples(10))
        store.write("video/raw", video_samples(2, audio_suffix="-v2"))
        store.write("video/raw", video_samples(1, audio_suffix="-v3"))  # v0000 written 3 times
        assert ".over(" in _plan(store)
        assert _audio(store)[:3] == ["a-v0000-v3", "a-v0001-v2", "a-v0002"]

    other = mx.DeltaMetadataStore(tmp_path / "other")
    with other.open("w"):
        other.write("video/raw", video_samples(2))
        other.write("video/raw", video_samples(4, audio_suffix="-v2"))  # 4 of 6 rows are later
        assert ".over(" in other.read("video/raw").to_native().explain()
        assert other.read("video/raw").collect().shape[0] == 4


@pytest.mark.parametrize("seed", range(6))
def test_first_write_shortcut_equals_the_window(
    tmp_path: Path, pipeline: mx.FeatureGraph, seed: int, large_reads: None
) -> None:
    """Random writes, re-writes and soft deletes: the read equals a window over all rows."""
    rng = random.Random(seed)
    store = mx.DeltaMetadataStore(tmp_path)
    with store.open("w"):
        store.write("video/raw", video_samples(40))
        for step in range(rng.randint(1, 3)):
            chosen = sorted(rng.sample(range(40), rng.randint(1, 12)))
            rows = video_samples(40, audio_suffix=f"-s{step}").filter(
                pl.int_range(pl.len()).is_in(chosen)
            )
            if rng.random() < 0.3:
                store.delete("video/raw", [f"video_id = 'v{chosen[0]:04d}'"])
            store.write("video/raw", rows)
        every = store.read("video/raw", with_sample_history=True, include_soft_deleted=True)
        expected = (
            _latest_by_window(every.to_native(), ["video_id"])
            .filter(pl.col("metaxy_deleted_at").is_null())
            .collect()
            .sort("video_id")
        )
        got = store.read("video/raw").collect().to_native().sort("video_id")
        assert got.equals(expected)
        # the lookup by 64-bit hashes and the one by ID values keep the same rows
        first = rows_after_first_write(every.to_native(), ["video_id"])
        if first is not None:
            assert first.later_hashes is not None  # no collision in 40 IDs
            for lookup in (first, dataclasses.replace(first, later_hashes=None)):
                kept = latest_rows(every.to_native(), ["video_id"], lookup)
                live = kept.filter(pl.col("metaxy_deleted_at").is_null()).collect().sort("video_id")
                assert live.equals(expected)


def test_first_write_shortcut_with_two_id_columns() -> None:
    from datetime import UTC, datetime, timedelta


    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    rows = pl.DataFrame({
        "a": [1, 1, 2, 2, 1],
        "b": ["x", "y", "x", "y", "y"],
        "value": ["old", "old", "old", "old", "new"],
        "metaxy_updated_at": [t0] * 4 + [t0 + timedelta(seconds=1)],
        "metaxy_deleted_at": pl.Series([None] * 5, dtype=pl.Datetime("us", "UTC")),
    })
    first = rows_after_first_write(rows.lazy(), ["a", "b"])
    assert first is not None and first.later_ids.rows() == [(1, "y")]
    assert first.later_hashes is not None
    expected = _latest_by_window(rows.lazy(), ["a", "b"]).collect().sort("a", "b")
    for lookup in (first, dataclasses.replace(first, later_hashes=None)):
        got = latest_rows(rows.lazy(), ["a", "b"], lookup).collect().sort("a", "b")
        assert got.equals(expected) and got["value"].to_list() == ["old", "new", "old", "old"]


def test_small_reads_use_the_window_without_a_pre_pass(
    tmp_path: Path, pipeline: mx.FeatureGraph, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At most ``SMALL_SCAN_ROWS`` stored rows (from the Delta log): no second scan."""
    store = mx.DeltaMetadataStore(tmp_path)
    with store.open("w"):
        store.write("video/raw", video_samples(4))
        store.write("video/raw", video_samples(2, audio_suffix="-v2"))  # 6 rows stored
        assert ".over(" in _plan(store)
        monkeypatch.setattr(_reads, "SMALL_SCAN_ROWS", 5)
        assert ".over(" not in _plan(store) and "is_in" in _plan(store)
        assert _audio(store) == ["a-v0000-v2", "a-v0001-v2", "a-v0002", "a-v0003"]


def test_rows_in_files_counts_the_partitions_a_filter_keeps(tmp_path: Path) -> None:
    ref = DeltaTableRef(str(tmp_path / "t.delta"))
    frame = pl.DataFrame({"id": [f"s{i}" for i in range(10)], "day": [i % 3 for i in range(10)]})
    ref.append(frame, partition_by=["day"])
    ref.append(frame.head(4), partition_by=["day"])
    table = ref.load()
    snapshot = Snapshot(table, pl.scan_delta(table), frame.schema, ["day"], False)
    assert _reads.rows_in_files(snapshot, []) == 14
    assert _reads.rows_in_files(snapshot, [nw.col("day") == 1]) == 3 + 1
    assert _reads.rows_in_files(snapshot, [nw.col("day") >= 1, nw.col("day") < 2]) == 4
    # a filter that cannot be applied to the partition values gives no estimate
    assert _reads.rows_in_files(snapshot, [nw.col("day").str.starts_with("1")]) is None
    # the add actions are read from the log once per snapshot, not once per read
    assert snapshot.file_rows is snapshot.file_rows
    ref.append(frame.head(1), partition_by=["day"])  # a later commit leaves the snapshot as is
    assert _reads.rows_in_files(snapshot, []) == 14
