"""Writing features: validated appends, soft deletes (tombstones) and hard deletes (Delta DELETE)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import narwhals as nw
import polars as pl
from deltalake import DeltaTable, WriterProperties

from metaxy_delta.errors import FeatureNotFoundError, MetadataSchemaError
from metaxy_delta.filters import ParsedFilter, parse_filter, to_delta_predicate
from metaxy_delta.models.constants import (
    METAXY_DELETED_AT,
    METAXY_FEATURE_VERSION,
    METAXY_MATERIALIZATION_ID,
)
from metaxy_delta.models.keys import FeatureKey
from metaxy_delta.store._base import log
from metaxy_delta.store._codecs import default_writer_properties
from metaxy_delta.store._commits import UNIQUE_IDS_KEY
from metaxy_delta.store._frames import (
    TIMESTAMP,
    check_stored_dtypes,
    latest_rows,
    stamp_system_columns,
    type_null_columns,
    validate_frame,
)
from metaxy_delta.store._reads import (
    FilterLike,
    ReadMixin,
    _as_expr,
    check_filters,
    parse_filters,
)
from metaxy_delta.store._snapshots import next_timestamp
from metaxy_delta.store._table import DeltaTableRef
from metaxy_delta.versioning import as_polars_lazy


@dataclass(frozen=True)
class WriteResult:
    """Outcome of one write: the Delta version it committed and the rows it appended."""

    feature: FeatureKey
    table_uri: str
    version: int | None
    rows: int


@dataclass(frozen=True)
class DeleteResult:
    """Outcome of a delete: the table version afterwards and the samples/rows affected."""

    feature: FeatureKey
    table_uri: str
    version: int | None
    rows: int
    soft: bool
    metrics: Mapping[str, Any]


class _Prepared(NamedTuple):
    """A validated, stamped frame and what its append needs."""

    key: FeatureKey
    table: DeltaTableRef
    frame: pl.DataFrame
    snapshot: DeltaTable | None
    constants: list[str]
    unique_ids: bool
    partition_by: Sequence[str] | None
    shared: bool


SOFT_DELETE_READS = 5
"""Reads of the live rows a soft delete makes while other writers keep moving the table."""


class WriteMixin(ReadMixin):
    """``write``, ``write_multi``, ``delete`` and ``drop_feature_metadata``."""

    def write(
        self,
        feature: Any,
        df: Any,
        materialization_id: str | None = None,
        preserve_feature_version: bool = False,
        *,
        with_sample_history: bool = False,
        partition_by: Sequence[str] | None = None,
    ) -> WriteResult:
        """Validate, stamp system columns and append ``df`` to the feature's table (one commit).

        Raises :class:`~metaxy_delta.errors.MetadataSchemaError`, naming the feature and the
        column, before anything is written if an ID column is missing or null, if
        ``metaxy_provenance_by_field`` is missing or does not have exactly the feature's fields,
        or if two rows share IDs (unless ``with_sample_history=True``). ``metaxy_provenance``
        is stored as the hash of ``metaxy_provenance_by_field``: kept when the frame already
        carries exactly that (as frames from ``resolve_update`` do), recomputed otherwise
        (Metaxy stores any given value unchecked, spec §7.13). ``partition_by`` names
        the Delta partition columns when this write creates the table (default: the feature's
        ``metadata["partition_by"]``, then the store's ``partition_by``).
        """
        self._require_write()
        prepared = self._prepare(
            feature, df, materialization_id, preserve_feature_version, with_sample_history,
            partition_by,
        )  # fmt: skip
        return self._append_prepared(prepared, materialization_id)

    def _prepare(
        self,
        feature: Any,
        df: Any,
        materialization_id: str | None,
        preserve_feature_version: bool,
        with_sample_history: bool,
        partition_by: Sequence[str] | None,
    ) -> _Prepared:
        """Validate ``df`` and stamp its system columns; nothing is written."""
        key = self._key(feature)
        graph = self._graph()
        plan = graph.get_feature_plan(key)
        frame = as_polars_lazy(df).collect()
        validate_frame(frame, plan, allow_duplicates=with_sample_history)
        table = self._table(key)
        snapshot = next_timestamp(table, self._snapshots)
        stamped, constants = stamp_system_columns(
            frame,
            plan,
            feature_version=graph.get_feature_version(key),
            project_version=graph.get_project_version(
                graph.get_feature_definition(key).project
            ),
            timestamp=snapshot.timestamp,
            materialization_id=materialization_id or self.materialization_id,
            hash_algorithm=self.hash_algorithm,
            hash_length=self.hash_truncation_length,
            preserve_feature_version=preserve_feature_version,
        )
        stamped = type_null_columns(stamped, snapshot.schema, key)
        if snapshot.schema is not None:
            check_stored_dtypes(stamped, snapshot.schema, key)
        self._partitions_for(key, stamped, snapshot.table, partition_by)
        return _Prepared(
            key, table, stamped, snapshot.table, constants, not with_sample_history, partition_by,
            snapshot.shared,
        )  # fmt: skip

    def _append_prepared(self, prepared: _Prepared, mid: str | None) -> WriteResult:
        return self._append(
            prepared.key, prepared.table, prepared.frame, mid, prepared.partition_by,
            snapshot=prepared.snapshot, shared=prepared.shared, unique_ids=prepared.unique_ids,
            constant_columns=prepared.constants,
        )  # fmt: skip

    def _append(
        self,
        key: FeatureKey,
        table: DeltaTableRef,
        frame: pl.DataFrame,
        mid: str | None,
        partition_by: Sequence[str] | None = None,
        *,
        snapshot: DeltaTable | None,
        shared: bool = False,
        unique_ids: bool = False,
        constant_columns: Sequence[str] = (),
    ) -> WriteResult:
        exists = snapshot is not None
        if frame.height == 0 and exists:
            return WriteResult(key, table.uri, table.version(), 0)
        partitions = self._partitions_for(key, frame, snapshot, partition_by)
        version = table.append(
            frame,  # through the Arrow C stream: ~30 % faster than frame.to_arrow() on 1M rows
            partition_by=partitions,
            max_commit_retries=self.max_commit_retries,
            commit_metadata={
                "metaxy.feature": key.to_string(),
                "metaxy.materialization_id": mid or self.materialization_id,
                UNIQUE_IDS_KEY: unique_ids,
            },
            write_options=self._write_options(exists),
            snapshot=snapshot,
            snapshot_shared=shared,
            constant_columns=constant_columns,
        )
        log.info("wrote %d rows of %s to %s (version %s)", frame.height, key, table.uri, version)
        return WriteResult(key, table.uri, version, frame.height)

    def _partitions_for(
        self,
        key: FeatureKey,
        frame: pl.DataFrame,
        snapshot: DeltaTable | None,
        partition_by: Sequence[str] | None,
    ) -> list[str] | None:
        """Partition columns for a new table (``None`` for an existing one, which keeps its
        own); raises :class:`MetadataSchemaError` if ``frame`` lacks one of them or of the
        existing table's (those rows would land in the null partition, outside every
        partition-filtered read)."""
        partitions = None
        if snapshot is not None:
            required = list(snapshot.metadata().partition_columns)
        else:
            partitions = list(partition_by or ()) or self.partition_columns_for(key, frame.columns)
            required = partitions or []
        for column in required:
            if column not in frame.columns:
                raise MetadataSchemaError(
                    f"cannot write {key}: partition column {column!r} is missing",
                    feature=key,
                    column=column,
                )
        return partitions

    @property
    def _writer_properties(self) -> WriterProperties:
        """Parquet settings of every file the store writes or rewrites (appends, hard deletes,
        ``optimize``): ``delta_write_options["writer_properties"]``, else the default of the
        store's storage (``_codecs.default_writer_properties``: LZ4_RAW on a local disk, zstd
        level 1 on object storage; no dictionaries). delta-rs would rewrite with its own
        defaults, ignoring the codec the store's appends use."""
        default = default_writer_properties(self.root_path)
        return self.delta_write_options.get("writer_properties", default)

    def _write_options(self, exists: bool) -> dict[str, Any]:
        """``delta_write_options``; a new table also gets ``delta.checkpointInterval``.

        delta-rs checkpoints every 100 commits by default, so every write to a young table
        replays up to 100 JSON commits (about 100 requests per write on S3, quadratic in the
        number of writes). A checkpoint every ``checkpoint_interval`` commits keeps log replay
        short; ``delta_write_options={"configuration": {...}}`` can set it otherwise. Parquet
        files are written with :attr:`_writer_properties` (one that only picks a codec keeps
        Polars' encoder, see ``_codecs``).
        """
        options = {**self.delta_write_options, "writer_properties": self._writer_properties}
        if not exists and self.checkpoint_interval:
            default = {"delta.checkpointInterval": str(self.checkpoint_interval)}
            options["configuration"] = {**default, **(options.get("configuration") or {})}
        return options

    def write_multi(
        self, metadata: Mapping[Any, Any], materialization_id: str | None = None
    ) -> dict[FeatureKey, WriteResult]:
        """Write several features, dependents first (one commit per feature), as Metaxy.

        Every frame is validated before the first commit: a malformed one raises
        :class:`~metaxy_delta.errors.MetadataSchemaError` with nothing written (Metaxy writes
        the frames before it, spec §4.5). The commits themselves are separate Delta tables, so
        a storage failure half-way leaves the earlier ones committed.
        """
        self._require_write()
        frames = {self._key(k): v for k, v in metadata.items()}
        order = self._graph().topological_sort_features(list(frames), descending=True)
        prepared = [
            self._prepare(key, frames[key], materialization_id, False, False, None)
            for key in order
        ]
        return {p.key: self._append_prepared(p, materialization_id) for p in prepared}

    def delete(
        self,
        feature: Any,
        filters: FilterLike | Sequence[FilterLike] | None = None,
        *,
        soft: bool = True,
        with_feature_history: bool = False,
        with_sample_history: bool = False,
    ) -> DeleteResult:
        """Delete samples matching ``filters`` (AND-combined): soft by default.

        Soft deletes append one tombstone per live sample in one commit; each tombstone keeps
        its row's own feature version and timestamps (Metaxy relabels them with the current
        version and may copy fallback rows, spec §7.11). Hard deletes run a Delta ``DELETE``
        whose predicate is rendered from SQL filter strings by :mod:`metaxy_delta.filters` and
        removes exactly the matching rows (of the current feature version unless
        ``with_feature_history``), of every time, as Metaxy does. The filters see each row, not
        only each sample's latest one: a filter on a value a sample changed (``status =
        'inactive'``) leaves its older rows, and the newest of those becomes its latest row.
        Filter on ID or partition columns to remove samples with all their history.
        """
        self._require_write()
        key = self._key(feature)
        parsed = parse_filters(filters)
        table = self._table(key)
        stored = table.scan()
        if stored is None:
            raise FeatureNotFoundError(
                f"cannot delete from {key}: table {table.uri} does not exist", keys=[key]
            )
        check_filters(key, parsed, stored.collect_schema())
        if soft:
            return self._soft_delete(key, table, parsed, with_feature_history)
        return self._hard_delete(key, table, parsed, with_feature_history)

    def _soft_delete(
        self, key: FeatureKey, table: DeltaTableRef, filters: list[Any], all_versions: bool
    ) -> DeleteResult:
        """Tombstone the live rows matching ``filters`` at one version of the table.

        If another writer commits between that read and the tombstones' snapshot, the rows
        are read again (up to :data:`SOFT_DELETE_READS` times): a sample re-written meanwhile,
        with values the filters may no longer match, is not hidden by a tombstone of its older
        row. (A write committed between that snapshot and the tombstones' commit, with an
        earlier timestamp, still loses to the tombstone: rows are ordered by timestamp.)
        """
        version = table.version()
        for attempt in range(1, SOFT_DELETE_READS + 1):
            rows = self._live_rows(key, filters, all_versions, version)
            if rows.height == 0:
                return DeleteResult(key, table.uri, version, 0, True, {})
            snapshot = next_timestamp(table, self._snapshots)
            latest = None if snapshot.table is None else snapshot.table.version()
            if latest == version:
                break
            log.debug("soft delete of %s: the table moved past version %s, reading again (%d)",
                      key, version, attempt)  # fmt: skip
            version = latest  # the next read is at the snapshot just loaded
        tombstones = rows.with_columns(
            pl.lit(snapshot.timestamp, dtype=TIMESTAMP).alias(METAXY_DELETED_AT),
            pl.lit(self.materialization_id, dtype=pl.String).alias(METAXY_MATERIALIZATION_ID),
        )
        result = self._append(
            key, table, tombstones, self.materialization_id, snapshot=snapshot.table,
            shared=snapshot.shared,
        )  # fmt: skip
        return DeleteResult(key, table.uri, result.version, rows.height, True, {})

    def _live_rows(
        self, key: FeatureKey, filters: list[Any], all_versions: bool, version: int | None
    ) -> pl.DataFrame:
        """The latest live row per sample and feature version at ``version`` that match.

        In a table partitioned by columns that are not ID columns, per partition too: a sample
        re-written into another partition has an older row in the first, which reads of that
        partition pick (see ``read``); it gets a tombstone of its own, so the deleted sample
        stays hidden there as well.
        """
        raw = self.read(
            key, with_feature_history=True, with_sample_history=True,
            include_soft_deleted=True, allow_fallback=False, version=version,
        ).to_native()  # fmt: skip
        if not all_versions:
            raw = raw.filter(pl.col(METAXY_FEATURE_VERSION) == self._graph().get_feature_version(key))
        ids = list(self._graph().get_feature_definition(key).spec.id_columns)
        partitions = [c for c in self._table(key).partition_columns() or () if c not in ids]
        group = [*ids, METAXY_FEATURE_VERSION, *partitions]
        live = nw.from_native(latest_rows(raw, group)).filter(
            nw.col(METAXY_DELETED_AT).is_null()
        )
        if filters:
            live = live.filter(*[_as_expr(f) for f in filters])
        return live.to_native().collect()

    def _hard_delete(
        self, key: FeatureKey, table: DeltaTableRef, filters: list[Any], all_versions: bool
    ) -> DeleteResult:
        not_sql = [f for f in filters if not isinstance(f, ParsedFilter)]
        if not_sql:
            raise TypeError(
                f"hard delete of {key} needs SQL filter strings (e.g. \"status = 'x'\"), got "
                f"{not_sql[0]!r}; narwhals expressions are only supported for soft deletes"
            )
        if not all_versions:
            version = self._graph().get_feature_version(key)
            filters = [*filters, parse_filter(f"{METAXY_FEATURE_VERSION} = '{version}'")]
        predicate = to_delta_predicate(filters) if filters else None
        new_version, metrics = table.delete(
            predicate,
            max_commit_retries=self.max_commit_retries,
            writer_properties=self._writer_properties,
        )
        rows = int(metrics.get("num_deleted_rows", 0))
        log.info("hard-deleted %d rows of %s (predicate %s)", rows, key, predicate)
        return DeleteResult(key, table.uri, new_version, rows, False, metrics)

    def drop_feature_metadata(self, feature: Any) -> DeleteResult:
        """Remove every row of the feature (the emptied table remains, as in Metaxy)."""
        self._require_write()
        key = self._key(feature)
        table = self._table(key)
        if not table.exists():
            raise FeatureNotFoundError(f"no table for {key} at {table.uri}", keys=[key])
        version, metrics = table.delete(
            None,
            max_commit_retries=self.max_commit_retries,
            writer_properties=self._writer_properties,
        )
        return DeleteResult(
            key, table.uri, version, int(metrics.get("num_deleted_rows", 0)), False, metrics
        )
