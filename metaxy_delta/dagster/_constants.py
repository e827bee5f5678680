"""Metadata keys, tag keys and kinds shared by the Dagster integration.

The values are byte-for-byte those of ``metaxy.ext.dagster`` so that assets, selections and
run configs written for Metaxy keep working.

Example:
    >>> from metaxy_delta.dagster import DAGSTER_METAXY_FEATURE_METADATA_KEY
    >>> DAGSTER_METAXY_FEATURE_METADATA_KEY
    'metaxy/feature'
"""

from __future__ import annotations

DAGSTER_METAXY_FEATURE_METADATA_KEY = "metaxy/feature"
"""Asset metadata key naming the Metaxy feature an asset produces (also a tag key)."""

DAGSTER_METAXY_INFO_METADATA_KEY = "metaxy/info"
"""Asset/event metadata key holding :func:`build_feature_info_metadata`."""

DAGSTER_METAXY_KIND = "metaxy"
"""Kind added to metaxified assets."""

DAGSTER_METAXY_PARTITION_KEY = "partition_by"
"""Asset metadata key: the column holding the Dagster partition key.

A string names one column (for multi-partitions it holds the composite key ``"a|b"``); a dict
``{dimension: column}`` maps each dimension of a multi-partitions definition to its own column.
"""

DAGSTER_METAXY_PARTITION_METADATA_KEY = "metaxy/partition"
"""Asset metadata key: ``{column: value}`` (value may be a list) naming the slice of a shared
feature that one asset produces."""

DAGSTER_METAXY_PROJECT_TAG_KEY = "metaxy/project"
"""Asset tag key holding the feature's project."""

DAGSTER_COLUMN_SCHEMA_METADATA_KEY = "dagster/column_schema"
DAGSTER_COLUMN_LINEAGE_METADATA_KEY = "dagster/column_lineage"

DAGSTER_METAXY_FEATURE_VERSION_TAG_KEY = "metaxy/feature_version"
"""Event tag key holding the feature version."""

DAGSTER_METAXY_FEATURE_CODE_VERSION_TAG_KEY = "metaxy/feature_code_version"
"""Event tag key holding the feature code version."""

METAXY_DAGSTER_METADATA_KEY = "dagster/attributes"
"""Key inside a Metaxy ``FeatureSpec.metadata``: ``AssetSpec`` attribute overrides, plus the
special ``"asset_key"`` entry choosing the feature's asset key."""

DAGSTER_TAG_VALUE_MAX_LENGTH = 63
"""Dagster rejects longer tag values."""

# Runtime (materialization / observation / input) metadata keys added by metaxy_delta.
ROW_COUNT_KEY = "dagster/row_count"
PARTITION_ROW_COUNT_KEY = "dagster/partition_row_count"
URI_KEY = "dagster/uri"
TABLE_PREVIEW_KEY = "dagster/table"
STORE_KEY = "metaxy/store"
MATERIALIZED_IN_RUN_KEY = "metaxy/materialized_in_run"
ROWS_WRITTEN_KEY = "metaxy/rows_written"
DELTA_VERSION_KEY = "metaxy/delta_version"
FEATURE_VERSION_KEY = "metaxy/feature_version"
PARTITION_FILTER_KEY = "metaxy/partition_filter"
DATA_VERSION_KEY = "metaxy/data_version"
