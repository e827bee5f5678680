"""Guarantee 2: a writer killed mid-write leaves the table at its last committed version.

A ``spawn`` process starts one large write (millions of rows; through delta-rs with a small
target file size so it produces many parquet files, and through the default Polars writer) and is killed with ``SIGKILL`` as soon as its first data files
appear, before its commit. The table must read exactly as committed, accept the next write, and
keep the orphaned parquet files until ``vacuum`` runs with a retention window that has passed.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from tests.reliability._workers import KEY, big_write, define_events, events, open_store

BIG_ROWS = 3_000_000
TARGET_FILE_SIZE = 512 * 1024  # bytes: the big write produces dozens of files


def _parquet_files(table_dir: Path) -> set[str]:
    return {str(p.relative_to(table_dir)) for p in table_dir.rglob("*.parquet") if "_delta_log" not in p.parts}


def _commit_files(table_dir: Path) -> set[str]:
    return {p.name for p in (table_dir / "_delta_log").glob("*.json")}


def _sorted(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort("writer", "seq", "metaxy_updated_at")


def _history(store: Any, version: int) -> pl.DataFrame:
    """Every row of ``version`` (sample history), sorted."""
    return _sorted(store.read(KEY, version=version, with_sample_history=True).collect().to_native())


@pytest.mark.slow
@pytest.mark.parametrize(
    "target_file_size", [TARGET_FILE_SIZE, None], ids=["delta-rs-writer", "polars-writer"]
)
def test_sigkill_during_large_write_leaves_last_commit(
    tmp_path: Path, target_file_size: int | None
) -> None:
    """Both write paths: delta-rs (a target file size is a custom write option) and the default
    one, where Polars encodes the files and the store commits them afterwards."""
    root = str(tmp_path / "store")
    graph = define_events()
    store = open_store(root, None)
    with graph.use(), store.open("w"):
        store.write(KEY, events(1, list(range(100))))
        store.write(KEY, events(2, list(range(50))))
        committed = store.version(KEY)
        before = {v: _history(store, v) for v in range(committed + 1)}
    table_dir = Path(store.table_uri(KEY))
    known_files, known_commits = _parquet_files(table_dir), _commit_files(table_dir)

    ctx = mp.get_context("spawn")
    proc = ctx.Process(target=big_write, args=(root, None, 0, BIG_ROWS, target_file_size))
    proc.start()
    deadline = time.monotonic() + 120
    new_files: set[str] = set()
    while time.monotonic() < deadline and proc.is_alive():
        new_files = _parquet_files(table_dir) - known_files
        if new_files:
            break
        time.sleep(0.005)
    assert proc.is_alive(), f"the big write finished (exit {proc.exitcode}) before its data files were seen"
    assert new_files, "no data file appeared within 120 s"
    assert _commit_files(table_dir) == known_commits, "the big write committed before it was killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.join(30)
    assert proc.exitcode == -signal.SIGKILL
    orphans = _parquet_files(table_dir) - known_files
    assert orphans, "the killed write left no data file behind: the test did not kill it mid-write"
    assert _commit_files(table_dir) == known_commits

    with graph.use(), store.open("w"):
        # the table reads at the last committed version, with no row of the killed write
        assert store.version(KEY) == committed
        latest = _sorted(store.read(KEY, with_sample_history=True, include_soft_deleted=True).collect().to_native())
        assert latest.equals(before[committed])
        assert latest.filter(pl.col("writer") == 0).height == 0
        assert latest.height == 150

        # the next write succeeds and lands on the next version
        result = store.write(KEY, events(3, list(range(10))))
        assert result.version == committed + 1
        assert store.read(KEY).collect().to_native().height == 160

        # vacuum keeps the orphans inside the default retention window (7 days)...
        dry = store.vacuum(KEY, dry_run=True)[KEY]
        assert not set(dry["files"]) & orphans
        assert _parquet_files(table_dir) >= orphans
        # ...and removes exactly them once the window is zero
        done = store.vacuum(KEY, retention_hours=0, enforce_retention_duration=False)[KEY]
        assert orphans <= set(done["files"])
        remaining = _parquet_files(table_dir)
        assert not remaining & orphans
        assert known_files <= remaining  # files of committed versions stay

        # every committed version still reads, unchanged
        for version, frame in before.items():
            assert _history(store, version).equals(frame), f"version {version} changed after vacuum"
        final = store.read(KEY, with_sample_history=True).collect().to_native()
        assert final.height == 160 and final.filter(pl.col("writer") == 0).height == 0
    print(f"crash: {BIG_ROWS} rows killed after {len(new_files)} file(s) seen; {len(orphans)} orphan(s) vacuumed")
