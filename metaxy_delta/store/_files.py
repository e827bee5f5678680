"""Data files of an append, encoded by Polars, committed through deltalake's transaction API.

delta-rs encodes Parquet on one thread (~0.8 s per million metadata rows on the benchmark box);
Polars' writer uses every core and takes about half that for the same frame and settings. An
append therefore writes its files with :meth:`polars.DataFrame.write_parquet` and commits them
as ``add`` actions (with Delta file statistics computed by ``_stats``) via
:meth:`deltalake.DeltaTable.create_write_transaction` or, for a new table,
:func:`deltalake.transaction.create_table_with_add_actions`. Conflict detection, retries and the
commit protocol stay delta-rs's.

:func:`polars_writable` decides whether a frame can take this path: plain dtypes (strings,
signed integers, floats, booleans, dates, binaries, UTC microsecond datetimes, structs and lists
of those) and partition values that are safe as path segments. Anything else (``Null`` or
unsigned columns, naive or nanosecond datetimes, decimals, unusual partition values, a schema that
differs from the table's) goes through ``write_deltalake``, which casts and evolves schemas. So do
``writer_properties`` that set more than a codec (``_codecs``).
"""

from __future__ import annotations

import functools
import io
import math
import os
import re
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote, urlsplit

import polars as pl
from deltalake import CommitProperties, DeltaTable, Schema
from deltalake.exceptions import DeltaError
from deltalake.fs import DeltaStorageHandler
from deltalake.transaction import AddAction, create_table_with_add_actions

from metaxy_delta.errors import MetadataSchemaError, MetadataStoreError
from metaxy_delta.models.constants import RENAMED_UPSTREAM_COLUMNS
from metaxy_delta.store import _constants
from metaxy_delta.store._codecs import (
    PARQUET_OPTIONS,
    default_writer_properties,
    file_suffix,
    options_from_key,
    options_key,
    polars_options,
)
from metaxy_delta.store._commits import find_commit, log_append
from metaxy_delta.store._constants import (
    as_enums,
    enums_encode_identically,
    footer_metadata,
    share_constants,
)
from metaxy_delta.store._stats import SIGNED_INTEGERS, files_stats, partition_stats

_T = TypeVar("_T")

FILE_BYTES = 512 * 2**20
"""In-memory size of the rows per data file (~100-250 MB of Parquet for metadata rows)."""
SIZE_SAMPLE_ROWS = 64 * 1024
"""Rows whose in-memory size, scaled up, estimates a frame's (for :data:`FILE_BYTES`)."""
MIN_PARTITION_ROWS = 10_000
"""Writes spanning several partitions with fewer rows per partition than this (on average) go
through delta-rs.

Polars encodes each partition's file separately, at a fixed cost of ~1-2 ms per file, where
delta-rs writes all partitions in one pass but on one thread. Over 100 partitions Polars is
faster from ~10k rows per partition (1M rows: 0.58 s vs 0.66 s; 10M: 4.0 s vs 13.4 s, with
half the peak memory); 1M rows over 1,000 partitions take 2.3 s in Polars and 1.3 s in
delta-rs. A write of one partition, as a Dagster partition run does, always takes the Polars
path.
"""
WRITERS = 2
"""Files written at once by a multi-file write: small files leave Polars' thread pool idle
between the fixed costs of each file."""
ROW_GROUP_ROWS = 128 * 1024
"""Most rows per Parquet row group (Polars' own default is about as many). With polars 2.1
on 2 cores, 128Ki-row groups write 10M metadata rows ~10 % faster than delta-rs's default of
1Mi rows (benchmark leaf: 1.97-2.02 s against 2.23-2.25 s; roots 2.50-2.58 against 2.75 s), with
~25 % less peak memory on the write, and read them as fast (whole file, column subsets and
filters; 10M rows). An older Polars measured the opposite (5M rows, ~30 % slower writes)."""
ROW_GROUPS_PER_FILE = 4
"""Smaller files get row groups of ``ceil(rows / 4)`` (at least 64Ki rows): Polars encodes and
decodes the row groups of a file in parallel, and one 1M-row group kept a second core idle
(1M metadata rows: writes ~10 % and reads of the file ~30 % faster with 4 groups)."""
MIN_ROW_GROUP_ROWS = 64 * 1024
HASH_COLUMNS = frozenset(RENAMED_UPSTREAM_COLUMNS)
"""Columns of hash strings (provenance and data versions, with their struct fields): their Delta
file statistics keep null counts but no min/max. Hashes are uniform, so every file of more
than a few rows spans nearly the whole range and a bound never skips one; computing them took
~40 % of the statistics pass (10M rows of the benchmark's leaf)."""
def _enums_encode_identically(options: dict[str, Any] = PARQUET_OPTIONS) -> bool:
    """Whether constant String columns may be written as Enums (see ``_constants``) with
    ``options``; checked once per process and codec, as it depends only on the installed
    Polars."""
    return _enums_check(options_key(options))


@functools.cache
def _enums_check(key: tuple[str, int | None]) -> bool:
    return enums_encode_identically(options_from_key(key))


_SAFE_PARTITION_VALUE = re.compile(r"[A-Za-z0-9_.\-]+")
_PLAIN = (pl.String, pl.Boolean, pl.Date, pl.Binary, pl.Float32, pl.Float64)


def polars_writable(schema: pl.Schema, partitions: Sequence[str]) -> bool:
    """Whether frames of ``schema`` can be written by Polars (see the module docstring)."""
    partition_dtypes = (pl.String, *SIGNED_INTEGERS)
    return all(
        _plain(dtype) and (name not in partitions or isinstance(dtype, partition_dtypes))
        for name, dtype in schema.items()
    )


def delta_schema(frame: pl.DataFrame) -> Schema:
    """The Delta schema of ``frame`` (as delta-rs derives it from the Arrow schema)."""
    arrow = frame.head(0).to_arrow(compat_level=pl.CompatLevel.oldest())
    return Schema.from_arrow(arrow.schema)


def write_files(
    frame: pl.DataFrame,
    table_uri: str,
    storage_options: dict[str, str] | None,
    partitions: Sequence[str],
    constant_columns: Collection[str] = (),
    parquet: dict[str, Any] = PARQUET_OPTIONS,
) -> list[AddAction] | None:
    """Write ``frame`` as Parquet files under ``table_uri``; their ``add`` actions.

    One directory per partition (``col=value/``, partition columns left out of the files, as
    delta-rs does), files of about :data:`FILE_BYTES` in memory. Returns ``None``, having
    written nothing, if a partition value is null or not safe as a path segment, or if the
    frame spreads over several partitions with fewer than :data:`MIN_PARTITION_ROWS` rows each
    on average. File statistics are computed in one Polars call, and :data:`WRITERS` files are
    encoded at a time, with the ``write_parquet`` options ``parquet`` (``_codecs``).
    """
    seen = _sampled_partitions(frame, list(partitions)) if partitions else 1
    if seen > 1 and frame.height < MIN_PARTITION_ROWS * seen:
        return None  # too many partitions already in a sample: spare the split delta-rs redoes
    groups = _partition_groups(frame, list(partitions))
    if groups is None or (len(groups) > 1 and frame.height < MIN_PARTITION_ROWS * len(groups)):
        return None
    local = _local_path(table_uri)
    handler = None if local is not None else DeltaStorageHandler(table_uri, storage_options)
    files: list[tuple[str, dict[str, str | None], pl.DataFrame]] = []
    suffix = file_suffix(parquet)
    for values, rows in groups:
        folder = "".join(f"{c}={v}/" for c, v in values.items())
        for chunk in _chunks(rows, constant_columns):
            path = f"{folder}part-{len(files):05d}-{uuid.uuid4()}-c000{suffix}.parquet"
            files.append((path, values, share_constants(chunk, constant_columns)))
    if 1 < len(groups) == len(files):  # one file per partition: one group_by for all of them
        by_values = partition_stats(
            frame, partitions, unbounded=HASH_COLUMNS, constant=constant_columns
        )
        keyed = {tuple(str(v) for v in key): s for key, s in by_values.items()}
        stats = [keyed[tuple(values[c] for c in partitions)] for _, values, _ in files]
    else:
        stats = files_stats(
            [chunk for _, _, chunk in files], unbounded=HASH_COLUMNS, constant=constant_columns
        )
    large = any(f.height >= _constants.SHARED_CONSTANTS_MIN_ROWS for _, _, f in files)
    enums = large and bool(constant_columns) and _enums_encode_identically(parquet)
    metadata = footer_metadata(files[0][2], parquet) if enums else None

    def write(file: tuple[str, dict[str, str | None], pl.DataFrame]) -> int:
        frame = file[2]
        if metadata is None or frame.height < _constants.SHARED_CONSTANTS_MIN_ROWS:
            return _write_one(frame, file[0], local, handler, parquet)
        enum_frame = as_enums(frame, constant_columns)
        return _write_one(enum_frame, file[0], local, handler, parquet, metadata)

    if len(files) == 1:
        sizes = [write(files[0])]
    else:
        with ThreadPoolExecutor(WRITERS) as pool:
            sizes = list(pool.map(write, files))
    now = int(time.time() * 1000)
    return [
        AddAction(path, size, values, now, True, stat)
        for (path, values, _), size, stat in zip(files, sizes, stats)
    ]


class PolarsAppendMixin:
    """The Polars path of :meth:`~metaxy_delta.store._table.DeltaTableRef.append`."""

    uri: str
    storage_options: dict[str, str] | None

    if TYPE_CHECKING:

        def _open(self, version: int | None = None) -> DeltaTable | None: ...
        def _errors(self, action: str) -> AbstractContextManager[None]: ...
        def _retrying(self, action: str, operation: Callable[[], _T], attempts: int) -> _T: ...

    def _append_with_polars(
        self,
        frame: pl.DataFrame,
        partitions: Sequence[str] | None,
        commit: CommitProperties,
        txn_id: str,
        options: Mapping[str, Any],
        max_attempts: int,
        snapshot: DeltaTable | None,
        constant_columns: Collection[str] = (),
    ) -> int | None:
        """Append ``frame`` with files written by Polars (see ``_files``); ``None`` if the frame,
        the options or the table's schema need ``write_deltalake`` (nothing written then).

        The files are written once; a commit that loses to concurrent writers is retried with
        the same files. Files of a write whose commit finally fails stay unreferenced until a
        full ``vacuum`` past the retention window removes them, as with delta-rs's writer.
        """
        extra = set(options) - {"configuration", "name", "description", "writer_properties"}
        default = default_writer_properties(self.uri)
        parquet = polars_options(options.get("writer_properties", default))
        if frame.height == 0 or extra or parquet is None:
            return None
        with self._errors("append to"):
            table = snapshot if snapshot is not None else self._open()
            schema = delta_schema(frame) if polars_writable(frame.schema, partitions or ()) else None
            if schema is None or (table is not None and table.schema() != schema):
                return None
            if table is not None:
                self._check_partitions(table, partitions)
                partitions = list(table.metadata().partition_columns)
            actions = write_files(
                frame, self.uri, self.storage_options, partitions or (), constant_columns, parquet
            )
        if actions is None:
            return None

        first = [table]  # the first attempt commits on the snapshot checked above
        own: list[DeltaTable] = []  # the table later attempts bring up to date (a cheap replay)

        def reload() -> DeltaTable | None:
            if own:
                own[0].update_incremental()
            elif (loaded := self._open()) is not None:
                own.append(loaded)
            return own[0] if own else None

        def commit_once() -> int:
            checked = bool(first)
            table = first.pop() if first else reload()
            if table is None:
                # No internal retries: retrying a lost race for version 0 makes delta-rs commit
                # a second CREATE TABLE (new metadata) at version 1. A lost race appends instead.
                once = CommitProperties(custom_metadata=commit.custom_metadata, max_commit_retries=0)
                try:
                    create_table_with_add_actions(
                        self.uri, schema, actions, mode="error", partition_by=partitions,
                        name=options.get("name"), description=options.get("description"),
                        configuration=options.get("configuration"),
                        storage_options=self.storage_options, commit_properties=once,
                    )  # fmt: skip
                    return find_commit(self.uri, self.storage_options, txn_id, after=-1)
                except DeltaError:
                    if (table := reload()) is None:
                        raise
                    checked = False
            if not checked:  # a table reloaded after a lost race or a conflict
                if table.schema() != schema:  # a racing writer created it differently
                    msg = f"Delta table {self.uri} was created concurrently with another schema"
                    raise MetadataSchemaError(msg)
                self._check_partitions(table, partitions)
            before = table.version()
            table.create_write_transaction(
                actions, mode="append", schema=schema, partition_by=partitions,
                commit_properties=commit,
            )  # fmt: skip
            version = find_commit(self.uri, self.storage_options, txn_id, after=before)
            log_append(self.uri, before, version)
            return version

        return self._retrying("append to", commit_once, max_attempts)

    def _check_partitions(self, table: DeltaTable, partitions: Sequence[str] | None) -> None:
        existing = list(table.metadata().partition_columns)
        if partitions is not None and list(partitions) != existing:
            msg = (
                f"Delta table {self.uri} is partitioned by {existing}, not "
                f"{list(partitions)}; omit partition_by to use the table's partitioning"
            )
            raise MetadataStoreError(msg)


# ---------------------------------------------------------------------------------- helpers


def _plain(dtype: pl.DataType) -> bool:
    if isinstance(dtype, pl.Struct):
        return bool(dtype.fields) and all(_plain(f.dtype) for f in dtype.fields)
    if isinstance(dtype, pl.List):
        return _plain(dtype.inner)  # type: ignore[arg-type]
    if isinstance(dtype, pl.Datetime):
        return dtype.time_unit == "us" and dtype.time_zone == "UTC"
    return isinstance(dtype, (*_PLAIN, *SIGNED_INTEGERS))


PARTITION_SAMPLE_ROWS = 4096
"""Rows, drawn at random (fixed seed), whose partition values :func:`_sampled_partitions` counts."""


def _sampled_partitions(frame: pl.DataFrame, partitions: list[str]) -> int:
    """Distinct partition values among :data:`PARTITION_SAMPLE_ROWS` random rows: a lower bound
    of the frame's partition count, in ~0.2 ms. When it alone leaves fewer than
    :data:`MIN_PARTITION_ROWS` rows per partition, the frame goes to delta-rs without being split
    first (100k rows over 100 partitions: the split took ~10 % of the write). Random rather
    than evenly spaced rows: a stride would alias with periodic partition values."""
    rows = min(frame.height, PARTITION_SAMPLE_ROWS)
    values = frame[partitions[0]] if len(partitions) == 1 else frame.select(partitions)
    return values.sample(n=rows, seed=0).n_unique()


def _partition_groups(
    frame: pl.DataFrame, partitions: list[str]
) -> list[tuple[dict[str, str | None], pl.DataFrame]] | None:
    if not partitions:
        return [({}, frame)]
    groups = []
    split = frame.partition_by(partitions, as_dict=True, maintain_order=True, include_key=False)
    for key, rows in split.items():
        values = [str(v) if v is not None else None for v in key]
        if not all(v is not None and _SAFE_PARTITION_VALUE.fullmatch(v) for v in values):
            return None
        groups.append((dict(zip(partitions, values)), rows))
    return groups


def _chunks(frame: pl.DataFrame, constants: Collection[str]) -> Iterator[pl.DataFrame]:
    # sized from a sample, without the constants (a scalar column would count one value, after
    # materialising itself); the whole frame's estimate walks every chunk (~0.1 s per 10M rows)
    sample = frame.head(SIZE_SAMPLE_ROWS).select(c for c in frame.columns if c not in constants)
    size = sample.estimated_size() * frame.height / max(1, sample.height)
    count = max(1, math.ceil(size / FILE_BYTES))
    step = math.ceil(frame.height / count) if frame.height else 0
    if count == 1:
        yield frame
        return
    for offset in range(0, frame.height, step):
        yield frame.slice(offset, step)


def row_group_rows(height: int) -> int:
    """Rows per row group of a file of ``height`` rows (see :data:`ROW_GROUPS_PER_FILE`).

    Example:
        >>> row_group_rows(300_000), row_group_rows(10_000_000), row_group_rows(1_000)
        (75000, 131072, 65536)
    """
    return min(ROW_GROUP_ROWS, max(MIN_ROW_GROUP_ROWS, math.ceil(height / ROW_GROUPS_PER_FILE)))


def _local_path(table_uri: str) -> str | None:
    parts = urlsplit(table_uri)
    if parts.scheme == "file":
        return unquote(parts.path)
    return table_uri if "://" not in table_uri else None


def _write_one(
    frame: pl.DataFrame,
    path: str,
    local: str | None,
    handler: DeltaStorageHandler | None,
    parquet: dict[str, Any] = PARQUET_OPTIONS,
    metadata: dict[str, str] | None = None,
) -> int:
    options: dict[str, Any] = {**parquet, "row_group_size": row_group_rows(frame.height)}
    if metadata is not None:
        options["metadata"] = metadata
    if local is not None:
        target = os.path.join(local, path)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        frame.write_parquet(target, **options)
        return os.path.getsize(target)
    assert handler is not None
    buffer = io.BytesIO()
    frame.write_parquet(buffer, **options)
    data = buffer.getvalue()
    # deltalake 1.6's public ``open_output_stream`` wraps the stream in a ``pa.PythonFile`` whose
    # ``write`` passes a pyarrow Buffer the Rust stream rejects; its raw stream takes bytes.
    stream = handler._handler.open_output_stream(path, None)
    try:
        stream.write(data)
    finally:
        stream.close()
    return len(data)
