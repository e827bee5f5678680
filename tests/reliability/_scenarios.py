"""Multi-process scenarios shared by the reliability tests and ``benchmarks/soak.py``.

Each scenario runs the workers of :mod:`tests.reliability._workers` in ``spawn`` processes
started together (a barrier), checks every guarantee it is about with plain ``assert`` and
returns the figures it reached (commits, rows, conflicts retried, seconds).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import polars as pl

from tests.reliability._workers import KEY, append_many, define_events, delete_rounds, events, open_store

JOIN_TIMEOUT_S = 3600


def _run(targets: list[tuple[Any, tuple[Any, ...]]], timeout: float) -> list[dict[str, Any]]:
    """Start ``target(*args, result_path, barrier)`` processes together; results in order."""
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(len(targets))
    with tempfile.TemporaryDirectory(prefix="reliability-") as tmp:
        paths = [str(Path(tmp) / f"result-{i}.json") for i in range(len(targets))]
        procs = [
            ctx.Process(target=target, args=(*args, path, barrier))
            for (target, args), path in zip(targets, paths)
        ]
        for proc in procs:
            proc.start()
        deadline = time.monotonic() + timeout
        for proc in procs:
            proc.join(max(1.0, deadline - time.monotonic()))
        alive = [p for p in procs if p.is_alive()]
        for proc in alive:
            proc.kill()
            proc.join()
        results = [json.loads(Path(p).read_text()) if Path(p).exists() else {} for p in paths]
    errors = [r.get("error") for r in results if r.get("error")]
    assert not alive, f"{len(alive)} worker(s) still running after {timeout} s"
    assert not errors, "worker failed:\n" + "\n".join(errors)
    assert [p.exitcode for p in procs] == [0] * len(procs)
    return results


def _raw(store: Any) -> pl.DataFrame:
    return (
        store.read(KEY, with_sample_history=True, include_soft_deleted=True)
        .collect()
        .to_native()
    )


def concurrent_appends(
    root: str,
    options: dict[str, str] | None,
    *,
    writers: int,
    each: int,
    rows_per_commit: int = 1,
    timeout: float = JOIN_TIMEOUT_S,
) -> dict[str, Any]:
    """``writers`` processes × ``each`` appends into one (not yet existing) table.

    The processes also race to create the table. Checks: every sample present exactly once
    (default read and full history), one Delta version per write, versions returned by
    ``write`` unique and equal to the commits, no commit lost.
    """
    start = time.perf_counter()
    targets = [(append_many, (root, options, w, each, rows_per_commit)) for w in range(writers)]
    results = _run(targets, timeout)
    seconds = time.perf_counter() - start
    commits = writers * each
    expected = {(w, s) for w in range(writers) for s in range(each * rows_per_commit)}
    with define_events().use():
        store = open_store(root, options)
        with store.open("r"):
            version = store.version(KEY)
            assert version == commits - 1, f"version {version}, expected {commits - 1}"
            returned = sorted(v for r in results for v in r["versions"])
            assert returned == list(range(commits)), (
                "write() versions are not one per commit: repeated "
                f"{sorted(v for v, n in Counter(returned).items() if n > 1)}, "
                f"never returned {sorted(set(range(commits)) - set(returned))}, "
                f"out of range {sorted(set(returned) - set(range(commits)))}"
            )
            history = store.history(KEY)
            operations = Counter(h["operation"] for h in history)
            assert operations == Counter({"WRITE": commits - 1, "CREATE TABLE": 1}), operations
            latest = store.read(KEY).collect().to_native()
            pairs = list(zip(latest["writer"].to_list(), latest["seq"].to_list()))
            assert len(pairs) == len(set(pairs)) == len(expected)
            assert set(pairs) == expected
            raw = _raw(store)
            assert raw.height == len(expected), "full history holds duplicated rows"
            assert raw["metaxy_deleted_at"].null_count() == raw.height
            by_part = raw.group_by("part").len().sort("part")
            assert by_part["part"].to_list() == sorted({f"p{w % 4}" for w in range(writers)})
    return {
        "processes": writers,
        "commits": commits,
        "rows": len(expected),
        "final_version": version,
        "conflicts_retried": sum(r.get("conflicts", 0) for r in results),
        "seconds": round(seconds, 1),
        "commits_per_second": round(commits / seconds, 2),
        "writer_seconds": [round(r.get("seconds", 0.0), 1) for r in results],
    }


SEEDS = 100


def appends_with_deletes(
    root: str,
    options: dict[str, str] | None,
    *,
    writers: int,
    each: int,
    rounds: int,
    timeout: float = JOIN_TIMEOUT_S,
) -> dict[str, Any]:
    """Appenders racing a delete job (soft and hard deletes): only matched rows go.

    Seed: writer -1, seqs 0..99. The delete job soft-deletes ``seq < 50``, hard-deletes
    ``seq >= 80`` and, ``rounds`` times, writes then soft/hard-deletes doomed rows.
    """
    with define_events().use():
        store = open_store(root, options)
        with store.open("w"):
            store.write(KEY, events(-1, list(range(SEEDS)), "seed"))
    start = time.perf_counter()
    targets: list[tuple[Any, tuple[Any, ...]]] = [
        (append_many, (root, options, w, each, 1)) for w in range(writers)
    ]
    targets.append((delete_rounds, (root, options, rounds)))
    results = _run(targets, timeout)
    seconds = time.perf_counter() - start
    deleter = results[-1]
    counts = Counter()
    for kind, rows, _ in deleter["deletes"]:
        counts[kind] += rows
    # every delete matched exactly the rows it was meant to (the doomed rows of its round)
    assert counts["soft-seed"] == 50 and counts["hard-seed"] == 20, counts
    assert counts["soft"] == 5 * rounds and counts["hard"] == 5 * rounds, counts
    with define_events().use():
        store = open_store(root, options)
        with store.open("r"):
            live = store.read(KEY).collect().to_native()
            pairs = list(zip(live["writer"].to_list(), live["seq"].to_list()))
            expected = {(w, s) for w in range(writers) for s in range(each)}
            expected |= {(-1, s) for s in range(50, 80)}
            assert len(pairs) == len(set(pairs)), "duplicated samples in the default read"
            assert set(pairs) == expected, (
                f"missing {sorted(expected - set(pairs))[:10]}, unexpected {sorted(set(pairs) - expected)[:10]}"
            )
            raw = _raw(store)
            # hard-deleted rows are gone with their whole history
            assert raw.filter(pl.col("kind") == "hard").height == 0
            assert raw.filter((pl.col("writer") == -1) & (pl.col("seq") >= 80)).height == 0
            # soft-deleted samples: exactly one live row and one tombstone each
            soft = raw.filter((pl.col("kind") == "soft") | ((pl.col("writer") == -1) & (pl.col("seq") < 50)))
            per_sample = soft.group_by("writer", "seq").agg(
                pl.len().alias("rows"), pl.col("metaxy_deleted_at").is_not_null().sum().alias("tombstones")
            )
            assert per_sample.height == 50 + 5 * rounds
            assert per_sample["rows"].to_list() == [2] * per_sample.height
            assert per_sample["tombstones"].to_list() == [1] * per_sample.height
            # appended and surviving seed rows: one row each, never tombstoned
            kept = raw.filter(
                (pl.col("kind") == "keep") | ((pl.col("writer") == -1) & pl.col("seq").is_between(50, 79))
            )
            assert kept.height == len(expected)
            assert kept["metaxy_deleted_at"].null_count() == kept.height
            history = store.history(KEY)
            operations = Counter(h["operation"] for h in history)
            version = store.version(KEY)
            appends = writers * each
            deleter_writes = 2 * rounds + 1 + rounds  # doomed rows, seed tombstones, round tombstones
            assert operations["WRITE"] + operations["CREATE TABLE"] == 1 + appends + deleter_writes
            assert operations["CREATE TABLE"] == 1, operations
            assert operations["DELETE"] == 1 + rounds, operations
            assert version == len(history) - 1
    return {
        "processes": writers + 1,
        "appends": appends,
        "soft_deletes": 1 + rounds,
        "hard_deletes": 1 + rounds,
        "rows_soft_deleted": 50 + 5 * rounds,
        "rows_hard_deleted": 20 + 5 * rounds,
        "live_rows": len(expected),
        "final_version": version,
        "conflicts_retried": sum(r.get("conflicts", 0) for r in results),
        "seconds": round(seconds, 1),
    }
