"""``DeltaMetadataStore``: one Delta table per feature, on a local path or ``s3://``.

Example:
    >>> import metaxy_delta as mx
    >>> store = mx.DeltaMetadataStore("/tmp/metaxy-doc-store")
    >>> store.table_uri("video/raw")
    '/tmp/metaxy-doc-store/video/raw.delta'
    >>> mx.DeltaMetadataStore("/tmp/metaxy-doc-store", layout="flat").table_uri("video/raw-clips")
    '/tmp/metaxy-doc-store/video__raw_clips.delta'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from metaxy_delta.errors import DependencyError, FeatureNotFoundError
from metaxy_delta.models.keys import FeatureKey, coerce_to_feature_key
from metaxy_delta.store._reads import FilterLike, parse_filters
from metaxy_delta.store._writes import WriteMixin
from metaxy_delta.versioning import Increment, LazyIncrement, resolve


class DeltaMetadataStore(WriteMixin):
    """Metaxy metadata store over Delta Lake.

    Args:
        root_path: Local directory or ``s3://bucket/prefix``.
        storage_options: delta-rs storage options (S3 endpoint, region, credentials...); the
            usual ``AWS_*`` environment variables work too.
        layout: ``"nested"`` (``root/a/b.delta``, default) or ``"flat"`` (``root/a__b.delta``).
        hash_algorithm: Sample hash (default ``xxhash32``, like Metaxy's Delta store).
        fallback_stores: Stores (or config names) read when a feature's table is absent.
        partition_by: Delta partition columns for new tables: a list (used for every feature
            that has those columns) or ``{feature key: [columns]}``; a feature's
            ``FeatureSpec.metadata["partition_by"]`` takes precedence.
        delta_write_options: Extra ``write_deltalake`` keywords.
        materialization_id: Default ``metaxy_materialization_id`` of writes (e.g. a run id).
        name: Name of the store in ``metaxy.toml``.
        max_commit_retries: delta-rs commit retries for concurrent writers.
        checkpoint_interval: ``delta.checkpointInterval`` of the tables this store creates
            (default 10; delta-rs's own default of 100 makes log replay on S3 slow).

    While the store is open, reads of a table's latest version reuse the snapshot (and Polars
    scan) of the previous read as long as nothing has committed to the table since: one log
    listing instead of a log replay (see ``metaxy_delta.store._snapshots``).
    """

    def resolve_update(
        self,
        feature: Any,
        *,
        samples: Any = None,
        filters: Mapping[Any, Sequence[FilterLike]] | None = None,
        global_filters: Sequence[FilterLike] | None = None,
        target_filters: Sequence[FilterLike] | None = None,
        lazy: bool = False,
        skip_comparison: bool = False,
        staleness_predicates: Sequence[Any] | None = None,
        **_compat: Any,
    ) -> Increment | LazyIncrement:
        """Which samples of ``feature`` are new, stale or orphaned.

        Upstream features are read with ``filters[upstream] + global_filters`` (fallback
        stores allowed); the stored rows of ``feature`` with ``filters[feature] +
        global_filters + target_filters`` (this store only). Filters on partition columns
        prune Delta files, so resolving one partition reads only that partition.
        Root features need ``samples`` (with ``metaxy_provenance_by_field``).
        """
        self._require_open()
        key = self._key(feature)
        plan = self._graph().get_feature_plan(key)
        # SQL strings parsed once here, not once per table read below
        per_feature = {
            coerce_to_feature_key(k): parse_filters(v) for k, v in (filters or {}).items()
        }
        shared = parse_filters(global_filters)
        targeted = parse_filters(target_filters)
        target = [*per_feature.get(key, []), *shared, *targeted]
        try:  # one log replay: no separate exists() check
            current = self.read(key, filters=target, allow_fallback=False).to_native()
        except FeatureNotFoundError:
            current = None
        upstream = None
        if samples is None and plan.feature.deps:
            upstream = {
                dep.feature: self._read_upstream(key, dep.feature, [*per_feature.get(dep.feature, []), *shared])
                for dep in plan.feature.deps
            }
        elif samples is not None and target_filters:
            import narwhals as nw

            from metaxy_delta.store._reads import _as_expr

            samples = nw.from_native(samples).filter(*[_as_expr(f) for f in targeted])
        increment = resolve(
            plan,
            upstream=upstream,
            samples=samples,
            current=current,
            hash_algorithm=self.hash_algorithm,
            hash_length=self.hash_truncation_length,
            staleness_predicates=list(staleness_predicates or ()),
            skip_comparison=skip_comparison,
            current_unique=True,  # read() keeps the latest row per sample
        )
        return increment if lazy else increment.collect()

    def _read_upstream(self, key: FeatureKey, upstream: FeatureKey, filters: list[Any]) -> Any:
        try:
            return self.read(upstream, filters=filters).to_native()
        except FeatureNotFoundError as err:
            raise DependencyError(
                f"cannot resolve {key}: upstream feature {upstream} has no metadata "
                f"({err}); materialize it first"
            ) from err

    def list_features(self, *, only_current_project: bool = True) -> list[FeatureKey]:
        """Features of the active graph that have a table in this store."""
        self._require_open()
        keys = self._graph().list_features(only_current_project=only_current_project)
        return [k for k in keys if self._table(k).exists()]

    # -- maintenance -------------------------------------------------------------------------
    def _features(self, feature: Any | Sequence[Any] | None) -> list[FeatureKey]:
        """``None`` → every stored feature; a list → each item is one feature key."""
        if feature is None:
            return self.list_features(only_current_project=False)
        if isinstance(feature, list):
            return [self._key(f) for f in feature]
        return [self._key(feature)]

    def vacuum(
        self,
        feature: Any | Sequence[Any] | None = None,
        *,
        retention_hours: float | None = None,
        dry_run: bool = False,
        enforce_retention_duration: bool = True,
        full: bool = True,
    ) -> dict[str, dict[str, Any]]:
        """Remove data files that no version inside the retention window needs.

        ``retention_hours`` defaults to the table's ``delta.deletedFileRetentionDuration``
        (7 days); shorter windows need ``enforce_retention_duration=False``. ``full`` (default)
        also removes files no commit references, e.g. those of a writer killed before its
        commit. Returns metrics per feature (``files``, ``num_files``, ``dry_run``). Needs write
        mode (a dry run only read mode): it deletes files, and time travel to the versions
        that needed them (``read(..., version=N)`` of such a version then raises
        :class:`~metaxy_delta.errors.MetadataStoreError` naming it).
        """
        if dry_run:
            self._require_open()
        else:
            self._require_write()
        return {
            k.to_string(): self._table(k).vacuum(
                retention_hours=retention_hours,
                dry_run=dry_run,
                enforce_retention_duration=enforce_retention_duration,
                full=full,
            )
            for k in self._features(feature)
        }

    def optimize(
        self, feature: Any | Sequence[Any] | None = None, *, z_order: Sequence[str] | None = None
    ) -> dict[str, dict[str, Any]]:
        """Compact small files (or z-order by ``z_order`` columns); metrics per feature.

        Needs write mode: each table gets a new (``OPTIMIZE``) commit.
        """
        self._require_write()
        return {
            k.to_string(): self._table(k).optimize(
                z_order=list(z_order) if z_order else None,
                writer_properties=self._writer_properties,
            )
            for k in self._features(feature)
        }

    def checkpoint(self, feature: Any) -> dict[str, Any]:
        """Write a Delta checkpoint (speeds up log replay); returns ``{"version": N}``.

        Needs write mode: it writes to the table's log.
        """
        self._require_write()
        return {"version": self._table(feature).checkpoint()}

    def history(self, feature: Any, limit: int | None = None) -> list[dict[str, Any]]:
        """Delta commit history of the feature's table, newest first."""
        self._require_open()
        return self._table(feature).history(limit)

    def version(self, feature: Any) -> int | None:
        """Latest Delta version of the feature's table (``None`` if absent)."""
        self._require_open()
        return self._table(feature).version()
