"""``feature_to_dagster_type``: a DagsterType for outputs of Metaxy assets."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg
import narwhals as nw

from metaxy_delta.dagster._constants import (
    DAGSTER_COLUMN_LINEAGE_METADATA_KEY,
    DAGSTER_COLUMN_SCHEMA_METADATA_KEY,
    DAGSTER_METAXY_INFO_METADATA_KEY,
)
from metaxy_delta.dagster._features import build_feature_info_metadata, feature_definition
from metaxy_delta.dagster._io_manager import MetaxyOutput
from metaxy_delta.dagster._table_metadata import build_column_lineage, build_column_schema


def feature_to_dagster_type(
    feature: Any,
    *,
    name: str | None = None,
    description: str | None = None,
    inject_column_schema: bool = True,
    inject_column_lineage: bool = True,
    metadata: Mapping[str, Any] | None = None,
) -> dg.DagsterType:
    """A ``DagsterType`` accepting ``None`` or any narwhals-compatible frame for ``feature``.

    Named after the feature's table name; described by its docstring; carries ``metaxy/info``,
    the column schema and (for non-root features) the column lineage.

    Example:
        >>> import dagster as dg
        >>> import metaxy_delta as mx
        >>> import metaxy_delta.dagster as mxd
        >>> with mx.FeatureGraph().use():
        ...     class T(mx.BaseFeature, spec=mx.FeatureSpec(key="dt/simple", id_columns=["id"])):
        ...         id: str
        ...     dagster_type = mxd.feature_to_dagster_type(T)
        >>> dagster_type.display_name
        'dt__simple'
    """
    definition = feature_definition(feature)
    key = definition.key
    source = feature if isinstance(feature, type) else definition
    type_metadata: dict[str, Any] = {
        **(metadata or {}),
        DAGSTER_METAXY_INFO_METADATA_KEY: build_feature_info_metadata(key),
    }
    if inject_column_schema and not definition.is_external:
        type_metadata[DAGSTER_COLUMN_SCHEMA_METADATA_KEY] = build_column_schema(source)
    if inject_column_lineage and not definition.is_external:
        lineage = build_column_lineage(source)
        if lineage is not None:
            type_metadata[DAGSTER_COLUMN_LINEAGE_METADATA_KEY] = lineage
    docstring = definition.feature_schema.get("description") or definition.spec.description

    def type_check(_context: Any, value: Any) -> dg.TypeCheck:
        if value is None:
            return dg.TypeCheck(success=True)
        try:
            nw.from_native(value)
        except TypeError as err:
            return dg.TypeCheck(
                success=False,
                description=(
                    "Expected a narwhals-compatible dataframe or None for Metaxy feature "
                    f"'{key.to_string()}', but got {type(value).__name__}:\n{err}"
                ),
            )
        return dg.TypeCheck(success=True)

    return dg.DagsterType(
        type_check_fn=type_check,
        name=name or key.table_name,
        description=description or docstring or f"Metaxy feature '{key.to_string()}'.",
        typing_type=MetaxyOutput,
        metadata=type_metadata,
    )
