"""Dagster integration of metaxy_delta (the API of ``metaxy.ext.dagster``, on Delta Lake).

* :class:`metaxify` - enrich assets naming a feature (``metadata={"metaxy/feature": ...}``)
  with deps, key, description, code version, column schema/lineage, kind and tags.
* :class:`MetaxyIOManager` - load upstream features as narwhals LazyFrames and write asset
  outputs, partition-aware, with row counts, Delta versions and data versions.
* :class:`MetaxyStoreFromConfigResource` / :class:`MetaxyStoreResource` - the store as a
  resource (from ``metaxy.toml`` or configured directly), stamped with the run id.
* :func:`generate_materialize_results` / :func:`generate_observe_results`,
  :func:`observable_metaxy_asset`, observation jobs, :func:`select_metaxy_assets`.
* Ops :data:`delete_metadata` (alias :data:`delete`), :data:`vacuum_metadata`,
  :data:`optimize_metadata` and :func:`build_maintenance_job`.

Example:
    >>> import dagster as dg
    >>> import metaxy_delta as mx
    >>> import metaxy_delta.dagster as mxd
    >>> with mx.FeatureGraph().use():
    ...     class Raw(mx.BaseFeature, spec=mx.FeatureSpec(key="my/metaxy/feature", id_columns=["id"])):
    ...         id: str
    ...     @mxd.metaxify()
    ...     @dg.asset(metadata={"metaxy/feature": "my/metaxy/feature"})
    ...     def my_asset(): ...
    >>> my_asset.key
    AssetKey(['my', 'metaxy', 'feature'])
"""

from metaxy_delta.dagster._constants import (
    DAGSTER_COLUMN_LINEAGE_METADATA_KEY,
    DAGSTER_COLUMN_SCHEMA_METADATA_KEY,
    DAGSTER_METAXY_FEATURE_CODE_VERSION_TAG_KEY,
    DAGSTER_METAXY_FEATURE_METADATA_KEY,
    DAGSTER_METAXY_FEATURE_VERSION_TAG_KEY,
    DAGSTER_METAXY_INFO_METADATA_KEY,
    DAGSTER_METAXY_KIND,
    DAGSTER_METAXY_PARTITION_KEY,
    DAGSTER_METAXY_PARTITION_METADATA_KEY,
    DAGSTER_METAXY_PROJECT_TAG_KEY,
    METAXY_DAGSTER_METADATA_KEY,
)
from metaxy_delta.dagster._dagster_type import feature_to_dagster_type
from metaxy_delta.dagster._features import (
    build_feature_event_tags,
    build_feature_info_metadata,
    feature_tag_value,
    get_asset_key_for_metaxy_feature_spec,
    select_metaxy_assets,
)
from metaxy_delta.dagster._io_manager import MetaxyIOManager, MetaxyOutput
from metaxy_delta.dagster._metaxify import metaxify
from metaxy_delta.dagster._observable import observable_metaxy_asset
from metaxy_delta.dagster._observation_jobs import (
    build_metaxy_multi_observation_job,
    build_metaxy_observation_job,
)
from metaxy_delta.dagster._ops import (
    DeleteMetadataConfig,
    OptimizeMetadataConfig,
    VacuumMetadataConfig,
    build_maintenance_job,
    delete,
    delete_metadata,
    optimize_metadata,
    vacuum_metadata,
)
from metaxy_delta.dagster._partitions import (
    PartitionMismatchError,
    build_metaxy_partition_filter,
    build_partition_filter,
    build_partition_filter_from_input_context,
    get_partition_filter,
)
from metaxy_delta.dagster._resources import MetaxyStoreFromConfigResource, MetaxyStoreResource
from metaxy_delta.dagster._results import generate_materialize_results, generate_observe_results
from metaxy_delta.dagster._stats import (
    FeatureStats,
    build_runtime_feature_metadata,
    compute_feature_stats,
    compute_row_count,
    compute_stats_from_lazy_frame,
)
from metaxy_delta.dagster._table_metadata import (
    build_column_lineage,
    build_column_schema,
    build_table_preview_metadata,
)


def _register_library() -> None:
    try:
        from dagster_shared.libraries import DagsterLibraryRegistry

        from metaxy_delta import __version__

        DagsterLibraryRegistry.register("metaxy_delta.dagster", __version__, is_dagster_package=False)
    except (ImportError, ModuleNotFoundError, TypeError):  # pragma: no cover - older Dagster
        pass


_register_library()

__all__ = [
    "DAGSTER_COLUMN_LINEAGE_METADATA_KEY",
    "DAGSTER_COLUMN_SCHEMA_METADATA_KEY",
    "DAGSTER_METAXY_FEATURE_CODE_VERSION_TAG_KEY",
    "DAGSTER_METAXY_FEATURE_METADATA_KEY",
    "DAGSTER_METAXY_FEATURE_VERSION_TAG_KEY",
    "DAGSTER_METAXY_INFO_METADATA_KEY",
    "DAGSTER_METAXY_KIND",
    "DAGSTER_METAXY_PARTITION_KEY",
    "DAGSTER_METAXY_PARTITION_METADATA_KEY",
    "DAGSTER_METAXY_PROJECT_TAG_KEY",
    "METAXY_DAGSTER_METADATA_KEY",
    "DeleteMetadataConfig",
    "FeatureStats",
    "MetaxyIOManager",
    "MetaxyOutput",
    "MetaxyStoreFromConfigResource",
    "MetaxyStoreResource",
    "OptimizeMetadataConfig",
    "PartitionMismatchError",
    "VacuumMetadataConfig",
    "build_column_lineage",
    "build_column_schema",
    "build_feature_event_tags",
    "build_feature_info_metadata",
    "build_maintenance_job",
    "build_metaxy_multi_observation_job",
    "build_metaxy_observation_job",
    "build_metaxy_partition_filter",
    "build_partition_filter",
    "build_partition_filter_from_input_context",
    "build_runtime_feature_metadata",
    "build_table_preview_metadata",
    "compute_feature_stats",
    "compute_row_count",
    "compute_stats_from_lazy_frame",
    "delete",
    "delete_metadata",
    "feature_tag_value",
    "feature_to_dagster_type",
    "generate_materialize_results",
    "generate_observe_results",
    "get_asset_key_for_metaxy_feature_spec",
    "get_partition_filter",
    "metaxify",
    "observable_metaxy_asset",
    "optimize_metadata",
    "select_metaxy_assets",
    "vacuum_metadata",
]
