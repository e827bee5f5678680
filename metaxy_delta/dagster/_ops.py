"""Ops for deleting metadata and maintaining the Delta tables (vacuum, optimize).

All ops use the resource key ``"metaxy_store"`` (a store resource such as
:class:`MetaxyStoreFromConfigResource`) and return a summary dict as output, with the same
facts attached as output metadata (visible in the Dagster UI).

Example:
    >>> import dagster as dg
    >>> import metaxy_delta.dagster as mxd
    >>> maintenance = mxd.build_maintenance_job(retention_hours=168)
    >>> schedule = dg.ScheduleDefinition(job=maintenance, cron_schedule="0 3 * * 0")
"""


from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg
from pydantic import Field

from metaxy_delta.filters import parse_filter
from metaxy_delta.models import FeatureKey, current_graph
from metaxy_delta.models.keys import coerce_to_feature_key
from metaxy_delta.store import DeltaMetadataStore


class DeleteMetadataConfig(dg.Config):
    """Run config of :data:`delete_metadata`."""

    feature_key: list[str] = Field(
        description=(
            "Feature key as list of strings (e.g., ['user', 'profile']). Validates using "
            "FeatureKey rules."
        )
    )
    filters: list[str] = Field(
        description=(
            "List of SQL WHERE clause filter expressions (AND-combined), e.g. "
            "[\"status = 'inactive'\", \"age > 18\"]."
        )
    )
    soft: bool = Field(default=True, description="Whether to use soft deletes or hard deletes.")
    allow_all: bool = Field(
        default=False,
        description="Allow an empty `filters` list, i.e. deleting every row of the feature.",
    )
    with_feature_history: bool = Field(
        default=False,
        description="Also delete matching rows of past feature versions (default: current only).",
    )

    def key(self) -> FeatureKey:
        """The feature key (a single ``"a/b"`` element is accepted and split).

        Raises:
            ValueError: A part breaks the ``FeatureKey`` rules.
        """
        parts = self.feature_key
        if len(parts) == 1 and "/" in parts[0]:
            return coerce_to_feature_key(parts[0])
        return FeatureKey(parts)


def _delete(
    context: dg.OpExecutionContext,
    config: DeleteMetadataConfig,
    metaxy_store: dg.ResourceParam[DeltaMetadataStore],
) -> dg.Output[dict[str, Any]]:
    key = config.key()
    if not config.filters and not config.allow_all:
        msg = (
            f"Refusing to delete every row of {key.to_string()}: `filters` is empty. "
            "Pass SQL filters, or set `allow_all: true` to delete everything."
        )
        raise dg.Failure(description=msg)
    for text in config.filters:
        parse_filter(text)  # FilterParseError before anything is written
    if key not in current_graph():
        msg = f"Feature {key.to_string()} is not registered in the active feature graph"
        raise dg.Failure(description=msg)
    mode = "soft" if config.soft else "hard"
    context.log.info(f"Executing {mode} delete for {key.to_string()} where {' AND '.join(config.filters) or 'TRUE'}")
    with metaxy_store.open("w"):
        result = metaxy_store.delete(
            key,
            filters=list(config.filters),
            soft=config.soft,
            with_feature_history=config.with_feature_history,
        )
    context.log.info(
        f"Successfully completed {mode} delete for {key.to_string()}: {result.rows} rows affected, "
        f"Delta version {result.version} ({result.table_uri})"
    )
    summary = {
        "feature": key.to_string(),
        "soft": config.soft,
        "rows": result.rows,
        "delta_version": result.version,
        "table_uri": result.table_uri,
        "filters": list(config.filters),
    }
    metadata = {**summary, "table_uri": dg.MetadataValue.path(result.table_uri)}
    if result.metrics:
        metadata["delta_metrics"] = dg.MetadataValue.json(_jsonable(result.metrics))
    return dg.Output(summary, metadata=metadata)


_DELETE_DESCRIPTION = (
    "Delete (soft by default) the rows of one Metaxy feature matching SQL filters. Invalid "
    "filters and unknown features fail the op before anything is written."
)

delete_metadata = dg.op(
    name="delete_metadata", description=_DELETE_DESCRIPTION, out=dg.Out(dict, is_required=False)
)(_delete)
"""Op ``delete_metadata``: config :class:`DeleteMetadataConfig`, resource ``metaxy_store``.

Example:
    >>> import dagster as dg
    >>> import metaxy_delta.dagster as mxd
    >>> @dg.job(resource_defs={"metaxy_store": mxd.MetaxyStoreFromConfigResource(name="default")})
    ... def cleanup_job():
    ...     mxd.delete_metadata()
"""

delete = dg.op(name="delete", description=_DELETE_DESCRIPTION, out=dg.Out(dict, is_required=False))(_delete)
"""The same op under Metaxy 0.1.11's name (configured under ``"ops": {"delete": ...}``)."""


# --------------------------------------------------------------------------- maintenance


class VacuumMetadataConfig(dg.Config):
    """Run config of :data:`vacuum_metadata`."""

    features: list[str] = Field(
        default_factory=list,
        description="Feature keys ('a/b'); empty = every registered feature with a table.",
    )
    retention_hours: float | None = Field(
        default=None,
        description="Keep files needed by versions younger than this (default: the table's 7 days).",
    )
    dry_run: bool = Field(default=False, description="Only list the files that would be deleted.")
    enforce_retention_duration: bool = Field(
        default=True,
        description="Refuse retention windows shorter than the table's configured minimum.",
    )


class OptimizeMetadataConfig(dg.Config):
    """Run config of :data:`optimize_metadata`."""

    features: list[str] = Field(
        default_factory=list,
        description="Feature keys ('a/b'); empty = every registered feature with a table.",
    )
    z_order: list[str] = Field(
        default_factory=list,
        description="Z-order by these columns (default: compact small files only).",
    )


@dg.op(
    name="optimize_metadata",
    ins={"after": dg.In(dg.Nothing)},
    out=dg.Out(dict, is_required=False),
    description="Compact (or z-order) the Delta tables of Metaxy features.",
)
def optimize_metadata(
    context: dg.OpExecutionContext,
    config: OptimizeMetadataConfig,
    metaxy_store: dg.ResourceParam[DeltaMetadataStore],
) -> dg.Output[dict[str, Any]]:
    """Run ``store.optimize`` and log the metrics Delta returns per feature."""
    with metaxy_store.open("w"):
        features = _features(metaxy_store, config.features)
        metrics = metaxy_store.optimize(features, z_order=config.z_order or None)
    for feature, values in metrics.items():
        context.log.info(
            f"Optimized {feature}: {values.get('numFilesRemoved', 0)} files compacted into "
            f"{values.get('numFilesAdded', 0)} (Delta version {values.get('version')})"
        )
    return _maintenance_output(metrics)


@dg.op(
    name="vacuum_metadata",
    ins={"after": dg.In(dg.Nothing)},
    out=dg.Out(dict, is_required=False),
    description="Delete data files no longer referenced by the retained Delta versions.",
)
def vacuum_metadata(
    context: dg.OpExecutionContext,
    config: VacuumMetadataConfig,
    metaxy_store: dg.ResourceParam[DeltaMetadataStore],
) -> dg.Output[dict[str, Any]]:
    """Run ``store.vacuum`` and log the files removed (or, for a dry run, removable)."""
    with metaxy_store.open("w"):
        metrics = metaxy_store.vacuum(
            _features(metaxy_store, config.features),
            retention_hours=config.retention_hours,
            dry_run=config.dry_run,
            enforce_retention_duration=config.enforce_retention_duration,
        )
    verb = "would remove" if config.dry_run else "removed"
    for feature, values in metrics.items():
        context.log.info(f"Vacuum of {feature} {verb} {values.get('num_files', 0)} files")
    return _maintenance_output(metrics)


def build_maintenance_job(
    name: str = "metaxy_maintenance",
    *,
    features: Sequence[Any] | None = None,
    optimize: bool = True,
    vacuum: bool = True,
    z_order: Sequence[str] | None = None,
    retention_hours: float | None = None,
    dry_run: bool = False,
    enforce_retention_duration: bool = True,
    resource_defs: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
) -> dg.JobDefinition:
    """A job running ``optimize_metadata`` then ``vacuum_metadata`` (either can be disabled).

    The arguments become the job's default run config (editable in the launchpad). Schedule it,
    e.g. ``dg.ScheduleDefinition(job=build_maintenance_job(), cron_schedule="0 3 * * 0")``. The
    job needs the resource ``metaxy_store`` (from ``resource_defs`` or your ``Definitions``).

    Raises:
        ValueError: Both steps disabled.
    """
    if not (optimize or vacuum):
        msg = "build_maintenance_job needs optimize=True or vacuum=True"
        raise ValueError(msg)
    keys = [coerce_to_feature_key(f).to_string() for f in features or ()]
    ops_config: dict[str, Any] = {}
    if optimize:
        ops_config["optimize_metadata"] = {"config": {"features": keys, "z_order": list(z_order or ())}}
    if vacuum:
        ops_config["vacuum_metadata"] = {
            "config": {
                "features": keys,
                "retention_hours": retention_hours,
                "dry_run": dry_run,
                "enforce_retention_duration": enforce_retention_duration,
            }
        }

    @dg.job(
        name=name,
        config={"ops": ops_config},
        resource_defs=dict(resource_defs) if resource_defs else None,
        tags=dict(tags or {}),
        description="Optimize and vacuum the Delta tables of Metaxy features.",
    )
    def _job() -> None:
        if optimize and vacuum:
            vacuum_metadata(after=optimize_metadata())
        elif optimize:
            optimize_metadata()
        else:
            vacuum_metadata()

    return _job


def _features(store: DeltaMetadataStore, features: Sequence[str]) -> list[FeatureKey] | None:
    """The configured feature keys (``None`` = every stored feature), all checked up front.

    Every key must be valid and have a table in ``store`` (which must be open) *before* the
    first table is touched: the store methods process features one by one, so an unknown
    feature listed after a valid one used to fail the op only after the valid table had
    already been optimized/vacuumed.

    Raises:
        dagster.Failure: Invalid keys or features without a table (all listed).
    """
    keys: list[FeatureKey] = []
    problems: list[str] = []
    for text in features:
        try:
            key = coerce_to_feature_key(text)
        except ValueError as err:
            problems.append(f"{text!r}: invalid feature key ({err})")
            continue
        if not store.has_feature(key):
            problems.append(f"{key.to_string()!r}: no table in {store.display()}")
            continue
        keys.append(key)
    if problems:
        msg = "Unknown features, nothing was changed: " + "; ".join(problems)
        raise dg.Failure(description=msg)
    return keys or None


def _maintenance_output(metrics: dict[str, dict[str, Any]]) -> dg.Output[dict[str, Any]]:
    clean = {feature: _jsonable(values) for feature, values in metrics.items()}
    metadata = {feature: dg.MetadataValue.json(values) for feature, values in clean.items()}
    return dg.Output(clean, metadata=metadata)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)
