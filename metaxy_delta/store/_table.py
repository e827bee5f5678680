"""A thin, typed layer over one Delta table: existence, time travel, lazy scans and commits.

:class:`DeltaTableRef` names a table (URI + storage options) and has one method per job:
``exists``, ``version``, ``load``, ``scan``, ``file_uris``, ``partition_columns``, ``history``,
``append``, ``delete``, ``vacuum``, ``optimize``, ``checkpoint``. Failures leave it as
metaxy_delta errors naming the table URI, chained with ``from``: ``StoreConnectionError`` (an
``OSError``) for unreachable, unauthorised or misconfigured storage, ``TableNotFoundError``,
``CommitConflictError``, ``MetadataSchemaError``, else ``MetadataStoreError``.

Concurrent writers on S3: metaxy_delta relies on deltalake >= 1.x, whose S3 log store commits
``_delta_log/<version>.json`` with an S3 *conditional put* (``PutObject`` with
``If-None-Match: *``). Two writers racing for the same version cannot both succeed: the loser gets
HTTP 412, re-reads the log, checks the winner's commit for logical conflicts and retries at the
next version. This is the default of delta-rs 1.x and needs no storage option, lock table or
DynamoDB (the DynamoDB log store was removed in 1.x; ``AWS_S3_ALLOW_UNSAFE_RENAME`` no longer
changes the commit protocol). It requires an S3 implementation that honours conditional writes:
AWS S3 (since 2024), MinIO and moto do. Local paths use an atomic create-if-absent of the commit
file. Every commit made here allows ``max_commit_retries=100`` internal retries by default; if
they are exhausted the whole operation is re-run a few times with exponential backoff and full
jitter before ``CommitConflictError`` is raised.

S3 defaults: for ``s3://`` URIs whose endpoint (``AWS_ENDPOINT_URL`` in the storage options or the
environment) is plain ``http://``, ``AWS_ALLOW_HTTP=true`` is added unless already set.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

import polars as pl
import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, WriterProperties, write_deltalake
from deltalake.exceptions import DeltaError
from deltalake.exceptions import TableNotFoundError as DeltaTableNotFoundError

from metaxy_delta.errors import MetadataStoreError, TableNotFoundError
from metaxy_delta.store._commits import (
    DEFAULT_APPEND_ATTEMPTS,
    DEFAULT_ATTEMPTS,
    DEFAULT_MAX_COMMIT_RETRIES,
    commit_properties,
    log_append,
)
from metaxy_delta.store._files import PolarsAppendMixin
from metaxy_delta.store._maintenance import MaintenanceMixin
from metaxy_delta.store._s3 import retry_commits, translate_errors, with_s3_defaults
from metaxy_delta.store._snapshots import latest_version
from metaxy_delta.store._vacuumed import TableFiles, check_files_present

TXN_ID_KEY = "metaxy_delta.txn_id"
"""Commit-info key holding the unique id :meth:`DeltaTableRef.append` gives each write."""
_MANAGED_WRITE_KEYS = frozenset(
    {"table_or_uri", "data", "mode", "storage_options", "commit_properties", "predicate"}
)
_T = TypeVar("_T")

FrameLike = pa.Table | pa.RecordBatch | pa.RecordBatchReader | pl.DataFrame


@dataclass(frozen=True)
class DeltaTableRef(MaintenanceMixin, PolarsAppendMixin):
    """One Delta table, addressed by URI; stateless, hashable by URI and pickleable.

    Args:
        uri: Table URI (local path, ``file://``, ``s3://``, ...).
        storage_options: object_store options (``AWS_ENDPOINT_URL``, ...). Copied, S3 defaults
            applied (see the module docstring); hidden from ``repr`` because it holds secrets.

    Example:
        >>> ref = DeltaTableRef("/tmp/does-not-exist/t.delta")
        >>> ref.exists(), ref.scan()
        (False, None)
    """

    uri: str
    storage_options: dict[str, str] | None = field(default=None, repr=False, hash=False)

    def __post_init__(self) -> None:
        options = with_s3_defaults(self.uri, self.storage_options)
        object.__setattr__(self, "storage_options", options)

    # ------------------------------------------------------------------ reading

    def exists(self) -> bool:
        """Whether a Delta table exists at :attr:`uri` (reads only commit 0 when it is kept)."""
        with self._errors("check existence of"):
            try:
                DeltaTable(self.uri, version=0, storage_options=self.storage_options)
                return True
            except DeltaTableNotFoundError:
                pass  # absent, or commit 0 was removed by log cleanup: check the latest state
            return self._open() is not None

    def version(self) -> int | None:
        """Latest committed version, or ``None`` if the table does not exist."""
        table = self.load()
        return None if table is None else table.version()

    def load(
        self, version: int | None = None, *, as_of: datetime | None = None
    ) -> DeltaTable | None:
        """Open the table at its latest state, at ``version``, or as of a point in time.

        Args:
            version: Exact version to open.
            as_of: Open the last version committed at or before this instant (naive = UTC).

        Returns:
            The table, or ``None`` if it does not exist (for ``as_of``: did not exist yet).

        Raises:
            MetadataStoreError: ``version`` is past the latest one, was removed by log
                cleanup, or needs data files a vacuum deleted (``_vacuumed``); the message
                names the URI and the latest version.
        """
        if version is not None and as_of is not None:
            msg = "pass either `version` or `as_of`, not both"
            raise ValueError(msg)
        if version is not None and version < 0:
            msg = f"`version` must be >= 0, got {version}"
            raise ValueError(msg)
        with self._errors("load"):
            if version is None and as_of is None:
                return self._open()
            if as_of is not None:
                table, latest = self._open_as_of(as_of)
            else:
                try:
                    table = self._open(version)
                except DeltaError as err:  # "LogSegment end version 4 not the same as ... 99"
                    self._raise_missing_version(version, err)
                    raise
                if table is None:  # commit `version` removed by log cleanup, or no table at all
                    self._raise_missing_version(version, None)
                latest = None
                if table is not None and latest_version(table) != table.version():
                    opened = self._open()
                    latest = TableFiles.of(opened) if opened is not None else None
            if table is not None and latest is not None:
                check_files_present(table, latest, self.uri, self.storage_options)
            return table

    def scan(
        self,
        version: int | None = None,
        *,
        as_of: datetime | None = None,
        columns: Sequence[str] | None = None,
    ) -> pl.LazyFrame | None:
        """Lazy Polars scan of the table (see :meth:`load`), or ``None`` if it does not exist.

        The log is replayed once: the loaded :class:`DeltaTable` is handed to ``pl.scan_delta``.
        Filters on partition columns prune files at plan time (visible in ``explain()``), and
        min/max statistics skip files for other columns. Errors raised later by ``collect()``
        come from Polars and are not translated.
        """
        table = self.load(version, as_of=as_of)
        if table is None:
            return None
        with self._errors("scan"):
            frame = pl.scan_delta(table)
        return frame if columns is None else frame.select(list(columns))

    def file_uris(self, predicate: str | None = None, *, version: int | None = None) -> list[str]:
        """Sorted data-file URIs, pruned by a SQL predicate on partition columns.

        Args:
            predicate: e.g. ``"date = '2024-01-06'"``; ``None`` lists every file.
            version: Version to list (default latest).
        """
        table = self._require(version)
        with self._errors("list files of"):
            return sorted(table.file_uris(file_pruning_predicate=predicate))

    def partition_columns(self) -> list[str] | None:
        """Partition columns of the table, or ``None`` if it does not exist."""
        table = self.load()
        return None if table is None else list(table.metadata().partition_columns)

    def history(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Commit infos, newest first: ``version``, ``operation``, metrics and custom keys."""
        table = self._require()
        with self._errors("read the history of"):
            return table.history(limit)

    # ------------------------------------------------------------------ writing

    def append(
        self,
        data: FrameLike,
        *,
        partition_by: Sequence[str] | str | None = None,
        schema_mode: Literal["merge"] | None = "merge",
        max_commit_retries: int = DEFAULT_MAX_COMMIT_RETRIES,
        commit_metadata: Mapping[str, Any] | None = None,
        write_options: Mapping[str, Any] | None = None,
        max_attempts: int = DEFAULT_APPEND_ATTEMPTS,
        snapshot: DeltaTable | None = None,
        constant_columns: Collection[str] = (),
        snapshot_shared: bool = False,
    ) -> int:
        """Append ``data`` in exactly one commit, creating the table on the first write.

        A :class:`polars.DataFrame` of plain dtypes is encoded by Polars' multi-threaded Parquet
        writer (about twice as fast as delta-rs's) and committed as ``add`` actions with file
        statistics through deltalake's transaction API, see ``_files``; other data,
        ``writer_properties`` that set more than a codec, ``target_file_size``, and schema
        changes go through ``write_deltalake``. The first write of a table commits as
        ``CREATE TABLE`` on the Polars path (``WRITE`` otherwise).

        Args:
            data: Rows (any Arrow C stream). A ``RecordBatchReader`` can be read only once, so it
                gets a single attempt.
            partition_by: Partition columns of a new table. For an existing table it may be
                omitted; if given it must equal the table's partitioning.
            schema_mode: ``"merge"`` (default) adds new columns and struct subfields.
            max_commit_retries: delta-rs internal retries on concurrent commits.
            commit_metadata: Extra commit-info keys (e.g. ``"metaxy.materialization_id"``);
                :data:`TXN_ID_KEY` is always added.
            write_options: More ``write_deltalake`` keywords (``writer_properties``,
                ``target_file_size``, ``configuration``, ...); ``partition_by`` and
                ``schema_mode`` given here override the arguments.
            max_attempts: Whole-write attempts when the internal retries are exhausted or a
                concurrent delete removed a file of the snapshot (see
                :data:`~metaxy_delta.store._commits.DEFAULT_APPEND_ATTEMPTS`).
            snapshot: This table as the caller loaded it (saves one log replay); the first attempt
                commits on it, later attempts reload.
            snapshot_shared: ``snapshot`` is also read elsewhere (a store's cached snapshot):
                ``write_deltalake`` would move it to the new version, so only the Polars path
                (transaction API) commits on it.
            constant_columns: Columns of a Polars frame that hold one value in every row, as
                the caller guarantees (the store's stamped system columns); the Polars path
                writes them as shared chunks, String ones as Enums (see ``_constants``).

        Returns:
            The version of this write's commit (exact under concurrent writers).

        Raises:
            MetadataStoreError: ``partition_by`` differs from the table's partitioning.
            MetadataSchemaError: The data does not fit the table schema.
            CommitConflictError: Every attempt lost to concurrent commits.
        """
        options = dict(write_options or {})
        if managed := sorted(_MANAGED_WRITE_KEYS & options.keys()):
            msg = f"write_options may not set {', '.join(managed)}; DeltaTableRef.append does"
            raise ValueError(msg)
        partition_by = options.pop("partition_by", partition_by)
        schema_mode = options.pop("schema_mode", schema_mode)
        partitions = [partition_by] if isinstance(partition_by, str) else partition_by
        txn_id = uuid.uuid4().hex
        commit = CommitProperties(
            custom_metadata={**(commit_metadata or {}), TXN_ID_KEY: txn_id},
            max_commit_retries=max_commit_retries,
        )

        if isinstance(data, pl.DataFrame) and (
            version := self._append_with_polars(
                data, partitions, commit, txn_id, options, max_attempts, snapshot,
                constant_columns,
            )
        ) is not None:
            return version

        first = [snapshot] if snapshot is not None and not snapshot_shared else []

        def write_once() -> int:
            table = first.pop() if first else self._open()
            if table is None:  # create; racing creators may push our commit past version 0
                write_deltalake(
                    self.uri, data, mode="append", partition_by=partitions,
                    schema_mode=schema_mode, storage_options=self.storage_options,
                    commit_properties=commit, **options,
                )  # fmt: skip
                return self._version_of_txn(txn_id)
            self._check_partitions(table, partitions)
            before = table.version()
            write_deltalake(
                table, data, mode="append", schema_mode=schema_mode,
                commit_properties=commit, **options,
            )  # fmt: skip
            # write_deltalake returns None, but `table` now holds the snapshot of our commit.
            log_append(self.uri, before, table.version())
            return table.version()

        replayable = isinstance(data, pa.Table | pa.RecordBatch | pl.DataFrame)
        return self._retrying("append to", write_once, max_attempts if replayable else 1)

    def delete(
        self,
        predicate: str | None = None,
        *,
        max_commit_retries: int = DEFAULT_MAX_COMMIT_RETRIES,
        commit_metadata: Mapping[str, Any] | None = None,
        max_attempts: int = DEFAULT_ATTEMPTS,
        writer_properties: WriterProperties | None = None,
    ) -> tuple[int, dict[str, Any]]:
        """Delete the rows matching a SQL ``predicate`` (all rows if ``None``) in one commit.

        If a concurrent commit could change the result, delta-rs fails the commit and the delete
        is re-run on a fresh snapshot, so it never removes rows it did not match. Nothing is
        committed when no row matches. Files holding both kept and deleted rows are rewritten
        with ``writer_properties`` (delta-rs's defaults if ``None``).

        Returns:
            ``(version, metrics)``: the version after the delete (unchanged if nothing matched)
            and delta-rs metrics (``num_deleted_rows``, ``num_removed_files``, ...).

        Raises:
            TableNotFoundError: The table does not exist.
            CommitConflictError: Every attempt lost to concurrent commits.
        """
        commit = commit_properties(commit_metadata, max_commit_retries)

        def delete_once() -> tuple[int, dict[str, Any]]:
            table = self._require()
            metrics = table.delete(
                predicate, writer_properties=writer_properties, commit_properties=commit
            )
            return table.version(), dict(metrics)

        return self._retrying("delete from", delete_once, max_attempts)

    # -------------------------------------------- internals (maintenance is in _maintenance)

    def _errors(self, action: str) -> AbstractContextManager[None]:
        """Context manager translating deltalake / storage errors (``_s3.translate_errors``)."""
        return translate_errors(action, uri=self.uri, storage_options=self.storage_options)

    def _retrying(self, action: str, operation: Callable[[], _T], attempts: int) -> _T:
        """Run ``operation`` with whole-operation commit retries (``_s3.retry_commits``)."""
        return retry_commits(
            operation, attempts, action=action, uri=self.uri, storage_options=self.storage_options
        )

    def _open(self, version: int | None = None) -> DeltaTable | None:
        """Construct the :class:`DeltaTable` (one log replay); ``None`` if absent."""
        try:
            return DeltaTable(self.uri, version=version, storage_options=self.storage_options)
        except DeltaTableNotFoundError:
            return None

    def _open_as_of(self, as_of: datetime) -> tuple[DeltaTable | None, TableFiles | None]:
        """Open the last version committed at or before ``as_of`` (``None`` if created later),
        with the latest version's files, read from the same load before going back (two log
        replays, not three)."""
        instant = as_of if as_of.tzinfo is not None else as_of.replace(tzinfo=UTC)
        table = self._open()
        if table is None:
            return None, None
        latest = TableFiles.of(table)
        table.load_as_version(instant)
        # delta-rs resolves instants before the first commit to version 0
        created_ms = table.metadata().created_time
        if table.version() == 0 and created_ms and instant.timestamp() * 1000 < created_ms:
            return None, None
        return table, latest

    def _raise_missing_version(self, version: int, cause: BaseException | None) -> None:
        """Raise :class:`MetadataStoreError` if the table exists but ``version`` cannot be read.

        Returns (so the caller re-raises ``cause``) when the table is absent, or when ``cause``
        is an error about an existing version.
        """
        latest = self.version()
        if latest is None or (cause is not None and version <= latest):
            return
        if version > latest:
            msg = f"Delta table {self.uri} has no version {version}; the latest version is {latest}"
        else:
            msg = (
                f"version {version} of Delta table {self.uri} is no longer in the log "
                f"(removed by log cleanup); the latest version is {latest}"
            )
        raise MetadataStoreError(msg) from cause

    def _require(self, version: int | None = None) -> DeltaTable:
        """Like :meth:`load`, but a missing table raises :class:`TableNotFoundError`."""
        table = self.load(version)
        if table is None:
            msg = f"no Delta table at {self.uri}"
            raise TableNotFoundError(msg)
        return table

    def _version_of_txn(self, txn_id: str) -> int:
        """Version of the commit whose info carries ``txn_id`` (only for a table just created).

        The version is the commit's position in the full history, not its ``"version"`` field:
        delta-rs 1.6 lists every commit in the log, also those made by other writers after the
        snapshot was loaded, but labels them counting down from the snapshot's version (and
        ignores ``limit`` then), so under concurrent writers the labels can be off (even
        negative). A table created by this write still has its whole log from version 0.
        """
        table = self._require()
        entries = table.history()
        for position, entry in enumerate(entries):
            if entry.get(TXN_ID_KEY) == txn_id:
                return len(entries) - 1 - position
        msg = f"commit {txn_id} not found in the history of Delta table {self.uri}"
        raise MetadataStoreError(msg)
