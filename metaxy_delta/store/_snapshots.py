"""Latest-version snapshots an open store has read, reused while the table is unchanged.

Opening a :class:`~deltalake.DeltaTable` replays its log (~4 ms for a table of 200 files on
local disk, one LIST and several GETs on S3), and the first ``collect()`` of a
``pl.scan_delta`` frame lists the table's files and their statistics again (~5 ms). Polars keeps
that file listing inside the frame and reuses it for every frame derived from it. So an open
store keeps, per table URI, the snapshot it last read at the latest version and the scan built
on it; the next read asks the log for its latest version (one listing past the cached version,
~0.2 ms locally) and reuses both while nothing was committed since. Any commit (an append, a
delete, an optimize, by this process or another) moves the latest version and drops the entry.

Snapshots handed out are never changed afterwards (a cached :class:`DeltaTable` is not updated
in place), so a lazy frame returned by ``read`` keeps reading the version it was built on, as
without the cache. Reads of a past version (``version=`` / ``as_of=``) do not use the cache, and
the cache is emptied when the store's outermost ``open()`` exits.

The one change a version number cannot reveal is a table directory deleted outside the store
and re-created up to the same version while the store stays open; the store itself never
deletes table directories. Spark's snapshot cache (``DeltaLog``) has the same limit.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:
    from deltalake import DeltaTable

    from metaxy_delta.store._table import DeltaTableRef


@dataclass(frozen=True)
class Snapshot:
    """One loaded table version and what a read derives from it once."""

    table: DeltaTable
    scan: pl.LazyFrame
    schema: pl.Schema  # = scan.collect_schema(), taken from the Delta schema (~30× cheaper)
    partitions: list[str]
    one_row_per_sample: bool

    @cached_property
    def file_rows(self) -> pl.DataFrame | None:
        """The flattened ``add`` actions of the snapshot's data files (``num_records``,
        ``partition.<column>``, ...), read from the log once per snapshot (~0.3-0.8 ms for 200
        files); ``None`` when a file has no ``numRecords`` statistic."""
        actions = pl.DataFrame(self.table.get_add_actions(flatten=True))
        if actions.height and (
            "num_records" not in actions.columns or actions["num_records"].null_count()
        ):
            return None
        return actions


def latest_version(table: DeltaTable) -> int | None:
    """The newest version in the table's log, or ``None`` if it cannot be determined.

    Uses ``RawDeltaTable.get_latest_version`` (lists the log after the loaded version and
    leaves ``table`` unchanged; the public ``update_incremental`` would change it in place).
    """
    try:
        return int(table._table.get_latest_version())  # noqa: SLF001 - see the docstring
    except Exception:  # noqa: BLE001 - missing API, table removed, storage error: reload
        return None


class SnapshotCache:
    """Per-URI latest snapshots of one store; safe to share between threads.

    Example:
        >>> cache = SnapshotCache()
        >>> cache.get("/tmp/no-such-table.delta") is None
        True
    """

    def __init__(self) -> None:
        self._entries: dict[str, Snapshot] = {}
        self._lock = threading.Lock()

    def get(self, uri: str) -> Snapshot | None:
        """The cached snapshot of ``uri`` if the table has no commit after it, else ``None``."""
        with self._lock:
            entry = self._entries.get(uri)
        if entry is None:
            return None
        if latest_version(entry.table) != entry.table.version():
            self.discard(uri)
            return None
        return entry

    def put(self, uri: str, snapshot: Snapshot) -> None:
        """Remember ``snapshot`` as the latest one of ``uri``."""
        with self._lock:
            self._entries[uri] = snapshot

    def discard(self, uri: str) -> None:
        """Forget the snapshot of ``uri`` (if any)."""
        with self._lock:
            self._entries.pop(uri, None)

    def clear(self) -> None:
        """Forget every snapshot."""
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def __reduce__(self) -> tuple[type[SnapshotCache], tuple[()]]:
        """A pickled store (e.g. sent to a Dagster subprocess) starts with an empty cache."""
        return (SnapshotCache, ())


@dataclass(frozen=True)
class WriteSnapshot:
    """What a write needs to know about the table before appending."""

    timestamp: datetime
    """``now()``, but strictly after the table's latest commit (commit order beats clocks)."""
    schema: pl.Schema | None
    """The stored schema, ``None`` if the table does not exist."""
    table: DeltaTable | None
    shared: bool = False
    """``table`` is a cached snapshot that reads may still use: an append may commit on it
    through the transaction API (which leaves it as it is), not through ``write_deltalake``
    (which moves it to the new version)."""


def next_timestamp(table: DeltaTableRef, cache: SnapshotCache | None = None) -> WriteSnapshot:
    """The write timestamp, the stored schema and the table at its latest version.

    The snapshot ``cache`` holds for the table is reused while it is current (a resolve or read
    before the write loaded it; one listing checks it), else the table is loaded (one replay).
    """
    now = datetime.now(UTC)
    if cache is not None and (hit := cache.get(table.uri)) is not None:
        loaded, schema, shared = hit.table, hit.schema, True
    else:
        if (fresh := table.load()) is None:
            return WriteSnapshot(now, None, None)
        loaded, schema, shared = fresh, pl.Schema(fresh.schema()), False
    last = loaded.history(1)
    if not last:
        return WriteSnapshot(now, schema, loaded, shared)
    committed = datetime.fromtimestamp(last[0]["timestamp"] / 1000, tz=UTC)
    return WriteSnapshot(max(now, committed + timedelta(milliseconds=1)), schema, loaded, shared)
