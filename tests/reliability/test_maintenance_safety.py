"""Guarantee 5: maintenance never changes what a read returns.

* ``optimize`` (compaction and Z-order) leaves every read identical (full frames compared,
  sorted: default reads and the whole history with tombstones);
* time travel to the version before a soft delete shows the deleted samples again;
* after ``vacuum`` every version inside the retention window still reads as before; only
  versions whose files fell out of the window stop being readable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

from metaxy_delta.errors import MetadataStoreError
from tests.reliability._workers import KEY, define_events, events, open_store

ORDER = ["writer", "seq", "metaxy_updated_at", "metaxy_deleted_at"]


def _reads(store: Any, version: int | None = None) -> dict[str, pl.DataFrame]:
    """The default read and the full history (tombstones included) at ``version``, sorted."""
    default = store.read(KEY, version=version).collect().to_native()
    raw = store.read(KEY, version=version, with_sample_history=True, include_soft_deleted=True)
    return {
        "default": default.sort(ORDER, nulls_last=True),
        "raw": raw.collect().to_native().sort(ORDER, nulls_last=True),
    }


def _assert_same(actual: dict[str, pl.DataFrame], expected: dict[str, pl.DataFrame], what: str) -> None:
    for name in expected:
        assert actual[name].columns == expected[name].columns, f"{what}: {name} columns changed"
        assert actual[name].equals(expected[name]), f"{what}: {name} read changed"


def _build(store: Any) -> dict[str, int]:
    """Small files in 4 partitions, a re-written sample, a soft and a hard delete."""
    marks: dict[str, int] = {}
    for writer in range(4):
        for chunk in range(3):
            store.write(KEY, events(writer, list(range(chunk * 20, chunk * 20 + 20))))
    store.write(KEY, events(0, list(range(10)), payload="v2"))  # new rows for existing samples
    marks["before_soft"] = store.version(KEY)
    soft = store.delete(KEY, ["writer = 1 AND seq < 15"], soft=True)
    assert soft.rows == 15
    marks["soft"] = soft.version
    hard = store.delete(KEY, ["seq >= 55"], soft=False)
    assert hard.rows == 4 * 5
    marks["hard"] = hard.version
    store.write(KEY, events(2, list(range(100, 110))))
    return marks


@pytest.mark.slow
def test_optimize_time_travel_and_vacuum_keep_reads(tmp_path: Path) -> None:
    graph = define_events()
    store = open_store(str(tmp_path / "store"), None)
    with graph.use(), store.open("w"):
        marks = _build(store)
        latest = store.version(KEY)
        snapshots = {v: _reads(store, v) for v in range(latest + 1)}
        current = _reads(store)
        _assert_same(current, snapshots[latest], "latest vs read(version=latest)")
        assert current["default"].height == 4 * 55 - 15 + 10

        # time travel: the soft-deleted samples are back before the delete, gone after it
        gone = pl.col("writer").eq(1) & pl.col("seq").lt(15)
        assert snapshots[marks["before_soft"]]["default"].filter(gone).height == 15
        assert snapshots[marks["soft"]]["default"].filter(gone).height == 0
        assert current["default"].filter(gone).height == 0
        # ...and the re-written samples show their newest payload only
        rewritten = current["default"].filter(pl.col("writer").eq(0) & pl.col("seq").lt(10))
        assert rewritten["metaxy_provenance_by_field"].struct.field("payload").str.starts_with("v2").all()
        assert snapshots[marks["hard"]]["raw"].filter(pl.col("seq") >= 55).height == 0
        assert snapshots[marks["hard"] - 1]["raw"].filter(pl.col("seq") >= 55).height > 0

        # optimize: compaction, then Z-order, never change a read
        files_before = len(store._table(KEY).file_uris())
        compact = store.optimize(KEY)[KEY]
        assert compact["numFilesRemoved"] > compact["numFilesAdded"] > 0
        _assert_same(_reads(store), current, "after compaction")
        zorder = store.optimize(KEY, z_order=["writer", "seq"])[KEY]
        assert zorder["numFilesRemoved"] > 0
        _assert_same(_reads(store), current, "after z-order")
        assert len(store._table(KEY).file_uris()) < files_before
        optimized = store.version(KEY)
        assert optimized == latest + 2
        snapshots[optimized] = _reads(store)

        # vacuum inside the retention window: every version still reads, unchanged
        kept = store.vacuum(KEY, retention_hours=1, enforce_retention_duration=False)[KEY]
        assert kept["num_files"] == 0, kept
        for version, expected in snapshots.items():
            _assert_same(_reads(store, version), expected, f"version {version} after vacuum (1 h)")

        # a zero window removes the files of the old versions; the latest one is untouched
        removed = store.vacuum(KEY, retention_hours=0, enforce_retention_duration=False)[KEY]
        assert removed["num_files"] > 0
        _assert_same(_reads(store), current, "latest after vacuum (0 h)")
        _assert_same(_reads(store, optimized), current, "optimized version after vacuum (0 h)")
        with pytest.raises(MetadataStoreError, match=r"version 0 of Delta table .* deleted by a vacuum"):
            store.read(KEY, version=0)  # raised by read itself, before any collect()
    print(
        f"maintenance: {latest + 1} versions compared, compaction {compact['numFilesRemoved']}->"
        f"{compact['numFilesAdded']} files, z-order {zorder['numFilesRemoved']}->{zorder['numFilesAdded']}, "
        f"vacuum(0 h) removed {removed['num_files']} files"
    )
