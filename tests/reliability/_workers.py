"""Feature definitions and worker functions of the reliability suite.

Everything here is module-level so ``multiprocessing`` (``spawn``) can import it in the child
processes, and is shared with ``benchmarks/soak.py`` (the full-size runs).

The feature is ``reliability/events``: one sample per ``(writer, seq)``, partitioned by ``part``
(a backfill writes one partition per process), with a ``kind`` column the delete jobs filter on.
"""

from __future__ import annotations

import json
import logging
import os
import time
import traceback
from pathlib import Path
from typing import Any

import polars as pl

import metaxy_delta as mx

KEY = "reliability/events"
PARTS = 4


class Contention(logging.Handler):
    """Counts the store's debug records of appends that raced other writers (a commit delta-rs
    retried past a version taken meanwhile, or a whole write re-attempted after a conflict)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        self.count += "concurrent commits" in message or "commit conflict" in message

    @classmethod
    def install(cls) -> Contention:
        """A counter attached to the ``metaxy_delta.store`` logger (set to DEBUG)."""
        counter = cls()
        store_logger = logging.getLogger("metaxy_delta.store")
        store_logger.addHandler(counter)
        store_logger.setLevel(logging.DEBUG)
        return counter


def define_events() -> mx.FeatureGraph:
    graph = mx.FeatureGraph()
    with graph.use():

        class Event(
            mx.BaseFeature,
            spec=mx.FeatureSpec(
                key=KEY,
                id_columns=["writer", "seq"],
                fields=["payload"],
                metadata={"partition_by": ["part"]},
            ),
        ):
            writer: int
            seq: int
            part: str
            kind: str

    return graph


def part_of(writer: int) -> str:
    return f"p{writer % PARTS}"


def events(writer: int, seqs: list[int], kind: str = "keep", *, payload: str = "v1") -> pl.DataFrame:
    """Rows ``(writer, seq)`` for ``seqs`` (partition ``part_of(writer)``)."""
    return pl.DataFrame(
        {
            "writer": pl.Series(seqs, dtype=pl.Int64) * 0 + writer,
            "seq": pl.Series(seqs, dtype=pl.Int64),
            "part": [part_of(writer)] * len(seqs),
            "kind": [kind] * len(seqs),
            "metaxy_provenance_by_field": [{"payload": f"{payload}-{writer}-{s}"} for s in seqs],
        }
    )


def big_events(writer: int, n: int) -> pl.DataFrame:
    """``n`` rows for one writer, built vectorised (for large writes)."""
    seq = pl.int_range(0, n, eager=True, dtype=pl.Int64)
    return pl.DataFrame({"seq": seq}).select(
        pl.lit(writer, pl.Int64).alias("writer"),
        "seq",
        pl.lit(part_of(writer)).alias("part"),
        pl.lit("big").alias("kind"),
        pl.struct(
            pl.format("payload-{}-{}-0123456789abcdef0123456789abcdef", pl.lit(writer), pl.col("seq")).alias("payload")
        ).alias("metaxy_provenance_by_field"),
    )


def open_store(root: str, options: dict[str, str] | None, **kwargs: Any) -> mx.DeltaMetadataStore:
    return mx.DeltaMetadataStore(root, storage_options=options, **kwargs)


def _dump(path: str | None, record: dict[str, Any]) -> None:
    if path is None:
        return
    tmp = f"{path}.tmp"
    Path(tmp).write_text(json.dumps(record))
    os.replace(tmp, path)


def _wait(barrier: Any) -> None:
    if barrier is not None:
        barrier.wait(timeout=300)


def append_many(
    root: str,
    options: dict[str, str] | None,
    writer: int,
    count: int,
    rows_per_commit: int = 1,
    result_path: str | None = None,
    barrier: Any = None,
) -> None:
    """``count`` writes (one Delta commit each) of ``rows_per_commit`` new samples.

    Writes ``{"versions": [...], "seconds": ..., "conflicts": ..., "error": ...}`` to
    ``result_path`` (``conflicts``: commits that raced other writers, see :class:`Contention`).
    """
    record: dict[str, Any] = {"writer": writer, "versions": [], "error": None}
    contention = Contention.install()
    try:
        with define_events().use():
            store = open_store(root, options)
            with store.open("w"):
                _wait(barrier)
                start = time.perf_counter()
                for i in range(count):
                    seqs = list(range(i * rows_per_commit, (i + 1) * rows_per_commit))
                    result = store.write(KEY, events(writer, seqs))
                    record["versions"].append(result.version)
                record["seconds"] = time.perf_counter() - start
                record["conflicts"] = contention.count
    except BaseException as err:  # reported to the parent through the result file
        record["error"] = f"{type(err).__module__}.{type(err).__qualname__}: {err}\n{traceback.format_exc()}"
        _dump(result_path, record)
        raise
    _dump(result_path, record)


def delete_rounds(
    root: str,
    options: dict[str, str] | None,
    rounds: int,
    result_path: str | None = None,
    barrier: Any = None,
) -> None:
    """Delete job racing the appenders.

    Once: soft-delete seeds ``seq < 50`` and hard-delete seeds ``seq >= 80`` (writer -1).
    Then ``rounds`` times: write doomed rows (writer -2 ``kind='soft'``, writer -3
    ``kind='hard'``), soft-delete ``kind = 'soft'`` and hard-delete ``kind = 'hard'``.
    """
    record: dict[str, Any] = {"deletes": [], "writes": [], "error": None}
    try:
        with define_events().use():
            store = open_store(root, options)
            with store.open("w"):
                _wait(barrier)
                start = time.perf_counter()
                soft = store.delete(KEY, ["writer = -1 AND seq < 50"], soft=True)
                hard = store.delete(KEY, ["writer = -1", "seq >= 80"], soft=False)
                record["deletes"] += [["soft-seed", soft.rows, soft.version], ["hard-seed", hard.rows, hard.version]]
                for r in range(rounds):
                    seqs = list(range(r * 5, r * 5 + 5))
                    w1 = store.write(KEY, events(-2, seqs, "soft"))
                    w2 = store.write(KEY, events(-3, seqs, "hard"))
                    record["writes"] += [w1.version, w2.version]
                    soft = store.delete(KEY, ["kind = 'soft'"], soft=True)
                    hard = store.delete(KEY, ["kind = 'hard'"], soft=False)
                    record["deletes"] += [["soft", soft.rows, soft.version], ["hard", hard.rows, hard.version]]
                record["seconds"] = time.perf_counter() - start
    except BaseException as err:
        record["error"] = f"{type(err).__module__}.{type(err).__qualname__}: {err}\n{traceback.format_exc()}"
        _dump(result_path, record)
        raise
    _dump(result_path, record)


def big_write(root: str, options: dict[str, str] | None, writer: int, n: int, target_file_size: int | None) -> None:
    """One large write (the crash test kills this process while it runs)."""
    frame = big_events(writer, n)
    print("frame ready", flush=True)
    with define_events().use():
        write_options = {"target_file_size": target_file_size} if target_file_size else None
        store = open_store(root, options, delta_write_options=write_options)
        with store.open("w"):
            store.write(KEY, frame)
