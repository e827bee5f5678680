"""Dagster table metadata of features: column schema, column lineage and a table preview.

Example:
    >>> import metaxy_delta as mx
    >>> import metaxy_delta.dagster as mxd
    >>> with mx.FeatureGraph().use():
    ...     class Clips(mx.BaseFeature, spec=mx.FeatureSpec(key="doc/clips", id_columns=["clip_id"])):
    ...         clip_id: str
    ...     schema = mxd.build_column_schema(Clips)
    >>> [c.name for c in schema.columns][:2]
    ['clip_id', 'metaxy_created_at']
"""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg
import narwhals as nw
import polars as pl
import pydantic

from metaxy_delta.dagster._features import feature_definition, get_asset_key_for_metaxy_feature_spec
from metaxy_delta.models import FeatureDefinition, FeatureSpec
from metaxy_delta.models.constants import (
    ALL_SYSTEM_COLUMNS,
    METAXY_CREATED_AT,
    METAXY_UPDATED_AT,
    RENAMED_UPSTREAM_COLUMNS,
)
from metaxy_delta.models.lineage import LineageRelationshipType

SYSTEM_COLUMNS_WITH_LINEAGE: tuple[str, ...] = RENAMED_UPSTREAM_COLUMNS
"""System columns that always depend on the same column of every upstream feature (4 columns:
provenance by field, provenance, data version by field, data version)."""

_JSON_TYPES = {"string": "str", "integer": "int", "number": "float", "boolean": "bool", "null": "None"}


# --------------------------------------------------------------------------- column schema


def build_column_schema(feature: Any) -> dg.TableSchema:
    """``dg.TableSchema`` of a feature's pydantic fields (system fields included), by name.

    Uses the feature class when the definition has one, else the stored pydantic JSON schema
    (so definitions loaded from a snapshot work without importing their module, unlike Metaxy).

    Raises:
        ImportError: ``feature`` is an external feature (it has no schema of its own).
    """
    definition, cls = _definition_and_class(feature)
    if cls is not None:
        columns = [
            dg.TableColumn(name=name, type=_type_string(info.annotation), description=info.description)
            for name, info in cls.model_fields.items()
        ]
    elif definition.is_external or not definition.feature_schema.get("properties"):
        msg = (
            f"Cannot build a column schema for external feature '{definition.key.to_string()}': "
            "external features do not have an associated Python class."
        )
        raise ImportError(msg)
    else:
        columns = [
            dg.TableColumn(name=name, type=_json_type_string(prop), description=prop.get("description"))
            for name, prop in definition.feature_schema["properties"].items()
        ]
    return dg.TableSchema(columns=sorted(columns, key=lambda c: c.name))


def _definition_and_class(feature: Any) -> tuple[FeatureDefinition, type[pydantic.BaseModel] | None]:
    if isinstance(feature, FeatureDefinition):
        return feature, feature.feature_class
    if isinstance(feature, type) and issubclass(feature, pydantic.BaseModel):
        return feature_definition(feature), feature
    definition = feature_definition(feature)
    return definition, definition.feature_class


def _type_string(annotation: Any) -> str:
    if annotation is None or annotation is type(None):
        return "None"
    if annotation is pydantic.AwareDatetime:
        return "datetime (UTC)"
    if annotation is pydantic.NaiveDatetime:
        return "datetime (naive)"
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _type_string(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        return " | ".join(_type_string(a) for a in members)
    if origin is not None:
        args = ", ".join(_type_string(a) for a in typing.get_args(annotation))
        name = getattr(origin, "__name__", str(origin))
        return f"{name}[{args}]" if args else name
    if annotation is Any:
        return "Any"
    return getattr(annotation, "__name__", str(annotation))


def _json_type_string(prop: Mapping[str, Any]) -> str:
    if "anyOf" in prop:
        members = [_json_type_string(p) for p in prop["anyOf"] if p.get("type") != "null"]
        return " | ".join(members) or "None"
    kind = prop.get("type")
    if kind == "string" and prop.get("format") == "date-time":
        return "datetime"
    if kind == "array":
        return f"list[{_json_type_string(prop.get('items', {}))}]"
    if kind == "object":
        extra = prop.get("additionalProperties")
        return f"dict[str, {_json_type_string(extra)}]" if isinstance(extra, Mapping) else "dict"
    return _JSON_TYPES.get(str(kind), "Any")


# --------------------------------------------------------------------------- column lineage


def build_column_lineage(
    feature: Any,
    feature_spec: FeatureSpec | None = None,
    *,
    key_prefix: Sequence[str] | None = None,
) -> dg.TableColumnLineage | None:
    """Column lineage of a feature from its dependencies (``None`` for root features).

    Per upstream (in dep order): ID columns through the lineage relationship (identity,
    aggregation ``on``, expansion ``on``) and ``rename``; renamed columns; same-named
    pass-through columns; and the four provenance/data-version system columns. Upstream asset
    keys get ``key_prefix`` so lineage points at the same keys as :func:`metaxify`'s deps (a
    Metaxy 0.1.11 bug left them unprefixed).

    Example:
        >>> import metaxy_delta as mx
        >>> with mx.FeatureGraph().use():
        ...     class Up(mx.BaseFeature, spec=mx.FeatureSpec(key="lin/up", id_columns=["id"])):
        ...         id: str
        ...         old: str
        ...     class Down(mx.BaseFeature, spec=mx.FeatureSpec(key="lin/down", id_columns=["id"],
        ...             deps=[mx.FeatureDep(feature="lin/up", rename={"old": "new"})])):
        ...         id: str
        ...         new: str
        ...     lineage = build_column_lineage(Down)
        >>> [d.column_name for d in lineage.deps_by_column["new"]]
        ['old']
    """
    definition, cls = _definition_and_class(feature)
    spec = feature_spec or definition.spec
    if not spec.deps or definition.is_external:
        return None
    columns = list(cls.model_fields) if cls is not None else definition.columns
    downstream_ids = list(spec.id_columns)
    deps_by_column: dict[str, list[dg.TableColumnDep]] = {}

    def add(column: str, asset_key: dg.AssetKey, upstream_column: str) -> None:
        deps_by_column.setdefault(column, []).append(
            dg.TableColumnDep(asset_key=asset_key, column_name=upstream_column)
        )

    for dep in spec.deps:
        upstream = feature_definition(dep.feature)
        asset_key = get_asset_key_for_metaxy_feature_spec(upstream.spec)
        if key_prefix:
            asset_key = dg.AssetKey([*key_prefix, *asset_key.path])
        upstream_columns = set(upstream.columns)
        upstream_ids = set(upstream.spec.id_columns)
        rename = dict(dep.rename or {})
        reverse = {new: old for old, new in rename.items()}
        handled: set[str] = set()
        relationship = dep.lineage
        if relationship.type is LineageRelationshipType.IDENTITY or relationship.on is None:
            id_candidates = downstream_ids
        else:
            id_candidates = [c for c in relationship.on if c in downstream_ids]
        for column in id_candidates:
            source = reverse.get(column, column)
            if source in upstream_ids and column in columns:
                add(column, asset_key, source)
                handled.add(column)
        for new, old in reverse.items():
            if new in columns and new not in handled and old in upstream_columns:
                add(new, asset_key, old)
                handled.add(new)
        for column in columns:
            if column in handled or column in ALL_SYSTEM_COLUMNS or column in rename:
                continue
            if column in upstream_columns:
                add(column, asset_key, column)
        for column in SYSTEM_COLUMNS_WITH_LINEAGE:
            add(column, asset_key, column)
    if not deps_by_column:
        return None
    return dg.TableColumnLineage(deps_by_column={c: deps_by_column[c] for c in sorted(deps_by_column)})


# --------------------------------------------------------------------------- table preview


def build_table_preview_metadata(
    lazy_df: Any, schema: dg.TableSchema | None = None, *, n_rows: int = 5
) -> dg.TableMetadataValue:
    """The ``n_rows`` most recent rows of a frame as a Dagster table preview.

    Rows are ordered by ``metaxy_created_at`` then ``metaxy_updated_at`` (Metaxy 0.1.11 takes
    ``tail()`` of an unordered scan, i.e. arbitrary rows). Without ``schema`` the preview schema
    is derived from the frame itself, so it always matches the records. Structs become compact
    JSON, lists/arrays compact JSON (``[first,..,last]`` beyond 2 items), map-like lists of
    ``{key, value}`` structs ``{"k": "v"}`` strings, temporal values strings.

    Example:
        >>> import polars as pl
        >>> value = build_table_preview_metadata(pl.DataFrame({"id": [1, 2, 3]}), n_rows=2)
        >>> [r.data["id"] for r in value.records]
        [1, 2]
    """
    frame = nw.from_native(lazy_df)
    names = frame.collect_schema().names()
    order = [c for c in (METAXY_CREATED_AT, METAXY_UPDATED_AT) if c in names]
    if order:
        frame = frame.sort(order, descending=True, nulls_last=True).head(n_rows)
    else:
        frame = frame.head(n_rows)
    collected = frame.lazy().collect() if isinstance(frame, nw.LazyFrame) else frame
    native = pl.from_arrow(collected.to_arrow())
    assert isinstance(native, pl.DataFrame)
    if order:
        native = native.reverse()
    table_schema = schema or dg.TableSchema(
        columns=[dg.TableColumn(name=n, type=str(t)) for n, t in native.schema.items()]
    )
    records = [dg.TableRecord(data={k: _preview_value(v) for k, v in row.items()}) for row in native.to_dicts()]
    return dg.MetadataValue.table(records=records, schema=table_schema)


def _preview_value(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Mapping):
        return json.dumps(value, separators=(",", ":"), default=str)
    if isinstance(value, (list, tuple)):
        if value and all(isinstance(v, Mapping) and set(v) == {"key", "value"} for v in value):
            return "{" + ", ".join(f'"{v["key"]}": "{v["value"]}"' for v in value) + "}"
        items = list(value)
        if len(items) > 2:
            first, last = (json.dumps(v, separators=(",", ":"), default=str) for v in (items[0], items[-1]))
            return f"[{first},..,{last}]"
        return json.dumps(items, separators=(",", ":"), default=str)
    return str(value)
