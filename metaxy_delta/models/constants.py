"""System column names, dtypes and hash algorithms (identical to Metaxy 0.1.11)."""

from __future__ import annotations

from enum import Enum

SYSTEM_COLUMN_PREFIX = "metaxy_"
METAXY_SYSTEM_KEY_PREFIX = "metaxy-system"

METAXY_PROVENANCE_BY_FIELD = "metaxy_provenance_by_field"
METAXY_PROVENANCE = "metaxy_provenance"
METAXY_DATA_VERSION_BY_FIELD = "metaxy_data_version_by_field"
METAXY_DATA_VERSION = "metaxy_data_version"
METAXY_FEATURE_VERSION = "metaxy_feature_version"
METAXY_PROJECT_VERSION = "metaxy_project_version"
METAXY_CREATED_AT = "metaxy_created_at"
METAXY_UPDATED_AT = "metaxy_updated_at"
METAXY_DELETED_AT = "metaxy_deleted_at"
METAXY_MATERIALIZATION_ID = "metaxy_materialization_id"
METAXY_DEFINITION_VERSION = "metaxy_definition_version"

#: The ten system columns, in the order a write stores them after the user columns.
ALL_SYSTEM_COLUMNS: tuple[str, ...] = (
    METAXY_PROVENANCE_BY_FIELD,
    METAXY_PROVENANCE,
    METAXY_DATA_VERSION_BY_FIELD,
    METAXY_DATA_VERSION,
    METAXY_FEATURE_VERSION,
    METAXY_PROJECT_VERSION,
    METAXY_CREATED_AT,
    METAXY_UPDATED_AT,
    METAXY_DELETED_AT,
    METAXY_MATERIALIZATION_ID,
)

#: Upstream system columns renamed with a per-dependency suffix before joins.
RENAMED_UPSTREAM_COLUMNS: tuple[str, ...] = (
    METAXY_PROVENANCE_BY_FIELD,
    METAXY_PROVENANCE,
    METAXY_DATA_VERSION_BY_FIELD,
    METAXY_DATA_VERSION,
)


class HashAlgorithm(Enum):
    """Sample-level hash algorithms (values are the strings used in config files)."""

    XXHASH64 = "xxhash64"
    XXHASH32 = "xxhash32"
    WYHASH = "wyhash"
    SHA256 = "sha256"
    MD5 = "md5"
    FARMHASH = "farmhash"
