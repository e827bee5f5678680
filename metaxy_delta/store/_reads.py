"""Reading features: default read semantics, filter push-down, time travel, fallbacks."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import narwhals as nw
import polars as pl

from metaxy_delta.errors import FeatureNotFoundError, FilterParseError
from metaxy_delta.filters import ParsedFilter, parse_filter
from metaxy_delta.filters._ir import And, Column, Not, Or
from metaxy_delta.models.constants import (
    ALL_SYSTEM_COLUMNS,
    METAXY_DATA_VERSION_BY_FIELD,
    METAXY_DELETED_AT,
    METAXY_FEATURE_VERSION,
    METAXY_PROVENANCE_BY_FIELD,
)
from metaxy_delta.store._base import StoreBase, log
from metaxy_delta.store._commits import UNIQUE_IDS_KEY
from metaxy_delta.store._frames import latest_rows, rows_after_first_write
from metaxy_delta.store._snapshots import Snapshot
from metaxy_delta.store._table import DeltaTableRef
from metaxy_delta.versioning._provenance import field_names

FilterLike = nw.Expr | str | ParsedFilter


def _as_expr(item: FilterLike) -> nw.Expr:
    if isinstance(item, str):
        item = parse_filter(item)
    return item.to_expr() if isinstance(item, ParsedFilter) else item


def filter_columns(item: FilterLike) -> frozenset[str] | None:
    """Columns a filter reads, or ``None`` when they cannot be determined."""
    if isinstance(item, str):
        item = parse_filter(item)
    if isinstance(item, ParsedFilter):
        return frozenset(item.columns)
    try:  # narwhals keeps the Polars expression behind a private hook; fall back safely
        namespace = nw.from_native(pl.LazyFrame())._compliant_frame.__narwhals_namespace__()
        compliant = item._to_compliant_expr(namespace)  # type: ignore[attr-defined]
        return frozenset(compliant.native.meta.root_names())
    except Exception:  # noqa: BLE001 - unknown shape: do not push the filter down
        return None


def check_filters(key: Any, items: Sequence[FilterLike], schema: pl.Schema) -> None:
    """Raise :class:`FilterParseError` for a SQL filter that cannot apply to the table.

    Catches, before any data is read or anything is deleted: unknown columns, literals whose
    type cannot be compared with the column (``seq = 'a'`` on an integer column) and
    conditions that are not boolean (a bare integer column). Narwhals expressions are the
    caller's own code and are not checked. The type check runs on an empty frame of only the
    columns the filter references, once per filter and column types (:func:`_filter_dtype`).
    """
    for item in items:
        if not isinstance(item, (str, ParsedFilter)):
            continue
        parsed = parse_filter(item) if isinstance(item, str) else item
        unknown = sorted(parsed.columns - set(schema))
        if unknown:
            raise FilterParseError(
                f"filter {parsed.source!r} on {key} references unknown column {unknown[0]!r} "
                f"(columns: {list(schema)})",
                source=parsed.source,
            )
        for column in sorted(_bare_columns(parsed.predicate)):
            if schema[column] not in (pl.Boolean, pl.Null):
                raise FilterParseError(
                    f"filter {parsed.source!r} on {key} uses column {column!r} as a condition, "
                    f"but it is {schema[column]}, not boolean; compare it with a value",
                    source=parsed.source,
                )
        # Polars dtypes and filter literals are hashable: the memo key always works
        dtype = _filter_dtype(parsed, tuple((c, schema[c]) for c in sorted(parsed.columns)))
        if isinstance(dtype, str):
            raise FilterParseError(
                f"filter {parsed.source!r} does not fit the columns of {key} "
                f"({dtype}); check the literal types",
                source=parsed.source,
            )
        if dtype not in (pl.Boolean, pl.Null):
            raise FilterParseError(
                f"filter {parsed.source!r} on {key} is not a boolean condition (it is {dtype})",
                source=parsed.source,
            )


@functools.lru_cache(maxsize=1024)
def _filter_dtype(
    parsed: ParsedFilter, dtypes: tuple[tuple[str, pl.DataType], ...]
) -> pl.DataType | str:
    """Result dtype of ``parsed`` on columns of ``dtypes``, or Polars' error as text.

    A pure function of its arguments, memoised: a resolve applies the same global filter to
    every table it reads, and pipelines repeat their filters (the check costs ~2 ms).
    """
    empty = pl.LazyFrame(schema=dict(dtypes))
    try:
        result = nw.from_native(empty).select(parsed.to_expr().alias("match"))
        return result.to_native().collect().schema["match"]
    except Exception as err:  # noqa: BLE001 - Polars type errors, reported by the caller
        return str(err).strip().splitlines()[0]


def _bare_columns(node: Any) -> set[str]:
    """Columns used directly as conditions (``flag``, ``NOT flag``, ``a = 1 OR flag``)."""
    if isinstance(node, Column):
        return {node.name}
    if isinstance(node, Not):
        return _bare_columns(node.operand)
    if isinstance(node, (And, Or)):
        return set().union(*(_bare_columns(child) for child in node.operands))
    return set()


def normalise_filters(filters: FilterLike | Sequence[FilterLike] | None) -> list[FilterLike]:
    """``None``, one filter or a sequence of filters (expressions or SQL strings) as a list."""
    if filters is None:
        return []
    if isinstance(filters, (str, ParsedFilter, nw.Expr)):
        return [filters]
    return list(filters)


def parse_filters(
    filters: FilterLike | Sequence[FilterLike] | None,
) -> list[ParsedFilter | nw.Expr]:
    """:func:`normalise_filters` with SQL strings parsed (once, for every later use)."""
    return [parse_filter(i) if isinstance(i, str) else i for i in normalise_filters(filters)]


SMALL_SCAN_ROWS = 100_000
"""Reads of at most this many stored rows pick the latest row per sample with the window alone:
the pre-pass of :func:`~metaxy_delta.store._frames.rows_after_first_write` is a second scan,
which pays only on larger reads (1M rows over 100 partitions, 10 % re-written: one partition
reads in ~16 ms instead of ~21 ms, ten partitions take the same time either way, the whole
table ~330 ms with the pre-pass and ~470 ms without)."""


def rows_in_files(snapshot: Snapshot, filters: Sequence[nw.Expr]) -> int | None:
    """Rows of the files a scan of ``snapshot`` with partition ``filters`` reads, from the Delta
    log (the ``numRecords`` statistics); ``None`` when a file has none or the filters cannot be
    applied to the partition values."""
    actions = snapshot.file_rows
    if actions is None:
        return None
    if actions.height == 0:
        return 0
    if filters:
        try:
            values = actions.select(
                "num_records",
                *[pl.col(f"partition.{c}").cast(snapshot.schema[c]).alias(c)
                  for c in snapshot.partitions if f"partition.{c}" in actions.columns],
            )  # fmt: skip
            actions = nw.from_native(values).filter(*filters).to_native()
        except Exception:  # noqa: BLE001 - unusual partition values: no estimate
            return None
    return int(actions["num_records"].sum())


class ReadMixin(StoreBase):
    """``read``, ``has_feature`` and table inspection."""

    def has_feature(self, feature: Any, *, check_fallback: bool = False) -> bool:
        """Whether the feature's table exists here (or, optionally, in a fallback store)."""
        return self.find_store_for_feature(feature, check_fallback=check_fallback) is not None

    def find_store_for_feature(self, feature: Any, *, check_fallback: bool = True) -> Any:
        """The store holding the feature's table: this one, else the first fallback store
        that has it (chains recurse); ``None`` if none has it."""
        self._require_open()
        if self._table(feature).exists():
            return self
        if not check_fallback:
            return None
        for store in self.fallback_stores:
            with store.open("r"):
                found = store.find_store_for_feature(feature, check_fallback=True)
            if found is not None:
                return found
        return None

    def _scan(
        self, table: DeltaTableRef, *, version: int | None = None, as_of: datetime | None = None
    ) -> Snapshot | None:
        """The table loaded (one replay; none while the store's cached latest snapshot is
        current, see ``_snapshots``) with its lazy scan, or ``None`` if it does not exist.

        A table whose only commit is a write of this store that validated its IDs unique (no
        ``with_sample_history``) holds one row per sample: reads skip the latest-row selection.
        """
        latest = version is None and as_of is None
        if latest and (hit := self._snapshots.get(table.uri)) is not None:
            return hit
        loaded = table.load(version, as_of=as_of)
        if loaded is None:
            return None
        # history()[-1] is version 0 (the newest entries may be commits made after the load)
        single = loaded.version() == 0 and loaded.history()[-1].get(UNIQUE_IDS_KEY) is True
        snapshot = Snapshot(
            loaded,
            pl.scan_delta(loaded),
            pl.Schema(loaded.schema()),
            list(loaded.metadata().partition_columns),
            single,
        )
        if latest:
            self._snapshots.put(table.uri, snapshot)
        return snapshot

    def read(
        self,
        feature: Any,
        *,
        feature_version: str | None = None,
        filters: FilterLike | Sequence[FilterLike] | None = None,
        columns: Sequence[str] | None = None,
        allow_fallback: bool = True,
        with_feature_history: bool = False,
        with_sample_history: bool = False,
        include_soft_deleted: bool = False,
        with_store_info: bool = False,
        version: int | None = None,
        as_of: datetime | None = None,
    ) -> Any:
        """Lazily read a feature: by default the latest live row per sample, current version.

        Filters (narwhals expressions or SQL strings) see only the latest row per sample, with
        one deliberate exception: filters on partition columns are pushed into the Delta scan,
        so a read restricted to one partition opens only that partition's files and picks the
        latest row per sample *within* them. That is the same rows as long as each sample's
        rows stay in one partition (always, when the partition columns are ID columns); a
        sample re-written into another partition keeps its older row visible in reads of the
        first one (Metaxy, which does not partition, filters after the latest-row selection of
        the whole table). Filters on ``metaxy_feature_version`` are pushed down too when the
        read is of one feature version. ``version`` / ``as_of`` read the table as it was at a
        past Delta version or time.

        Example:
            >>> with store.open("r"):  # doctest: +SKIP
            ...     df = store.read("video/raw", filters=["date = '2026-01-01'"]).collect()
        """
        self._require_open()
        key = self._key(feature)
        if feature_version is not None and not with_feature_history:
            with_feature_history = True
            scoped_version: str | None = feature_version
        elif not with_feature_history:
            scoped_version = self._graph().get_feature_version(key)
        else:
            scoped_version = feature_version
        table = self._table(key)
        snapshot = self._scan(table, version=version, as_of=as_of)
        if snapshot is None:
            return self._read_fallback(
                key, allow_fallback, with_store_info,
                dict(feature_version=feature_version, filters=filters, columns=columns,
                     with_feature_history=with_feature_history,
                     with_sample_history=with_sample_history,
                     include_soft_deleted=include_soft_deleted, version=version, as_of=as_of),
            )
        lf, partitions, schema = snapshot.scan, snapshot.partitions, snapshot.schema
        pushed, after, on_partitions = [], [], []
        # metaxy_feature_version is constant within a single-version read, so a filter on it
        # may run before the latest-row selection; across versions it must run after (spec §4.4)
        pushable = set(partitions) | ({METAXY_FEATURE_VERSION} if scoped_version else set())
        items = parse_filters(filters)
        check_filters(key, items, schema)
        for item in items:
            cols = filter_columns(item)
            (pushed if cols is not None and cols <= pushable else after).append(_as_expr(item))
            if cols is not None and cols <= set(partitions):
                on_partitions.append(pushed[-1])
        if scoped_version is not None:
            lf = lf.filter(pl.col(METAXY_FEATURE_VERSION) == scoped_version)
        frame = nw.from_native(lf)
        if pushed:
            frame = frame.filter(*pushed)
        if not with_sample_history and not snapshot.one_row_per_sample:
            graph = self._graph()
            ids = graph.get_feature_definition(key).spec.id_columns if key in graph else ()
            if ids:
                native = frame.to_native()
                rows = rows_in_files(snapshot, on_partitions)
                small = rows is not None and rows <= SMALL_SCAN_ROWS
                first = None if small else rows_after_first_write(native, ids)
                frame = nw.from_native(latest_rows(native, ids, first))
        if not include_soft_deleted:
            frame = frame.filter(nw.col(METAXY_DELETED_AT).is_null())
        if not with_feature_history and key in self._graph():
            frame = nw.from_native(self._current_fields(frame.to_native(), key, schema))
        if after:
            frame = frame.filter(*after)
        if columns is not None:
            frame = frame.select(list(columns))
        log.debug("read %s from %s (version=%s)", key, table.uri, version)
        return (frame, self) if with_store_info else frame

    def _current_fields(self, lf: pl.LazyFrame, key: Any, schema: pl.Schema) -> pl.LazyFrame:
        """Rows of the current feature version with only its fields in the two by-field
        structs: Delta keeps the union of every version's struct fields, so a field removed
        from the feature would come back as an all-null member, which ``write`` rejects (spec
        §7.9). A no-op (nothing in the plan) when the stored structs have exactly the fields."""
        names = field_names(self._graph().get_feature_plan(key))
        columns = []
        for column in (METAXY_PROVENANCE_BY_FIELD, METAXY_DATA_VERSION_BY_FIELD):
            dtype = schema.get(column)
            if isinstance(dtype, pl.Struct) and [f.name for f in dtype.fields] != names:
                stored = {f.name for f in dtype.fields}
                members = [
                    pl.col(column).struct.field(n) if n in stored
                    else pl.lit(None, dtype=pl.String).alias(n)
                    for n in names
                ]  # fmt: skip
                columns.append(pl.struct(members).alias(column))
        return lf.with_columns(columns) if columns else lf

    def _read_fallback(
        self, key: Any, allow_fallback: bool, with_store_info: bool, kwargs: dict[str, Any]
    ) -> Any:
        if allow_fallback and kwargs.get("version") is None and kwargs.get("as_of") is None:
            for store in self.fallback_stores:
                with store.open("r"):
                    if store.has_feature(key, check_fallback=True):  # chains recurse
                        log.info("reading %s from fallback store %r", key, store)
                        return store.read(key, with_store_info=with_store_info, **kwargs)
        raise FeatureNotFoundError(
            f"no metadata for feature {key} in {self!r}: table {self.table_uri(key)} does not "
            "exist" + (" (nor in any fallback store)" if self._fallback_entries else ""),
            keys=[key],
        )

    def read_feature_schema_from_store(self, feature: Any) -> nw.Schema:
        """Schema of the stored table (user and system columns)."""
        self._require_open()
        snapshot = self._scan(self._table(feature))
        if snapshot is None:
            raise FeatureNotFoundError(
                f"no metadata for feature {self._key(feature)}: table "
                f"{self.table_uri(feature)} does not exist",
                keys=[self._key(feature)],
            )
        return nw.from_native(snapshot.scan).collect_schema()

    @staticmethod
    def user_columns(columns: Sequence[str]) -> list[str]:
        """The non-system columns of a list of column names."""
        return [c for c in columns if c not in ALL_SYSTEM_COLUMNS]
