"""``metaxify``: enrich Dagster assets with what their Metaxy feature already knows."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any, TypeVar, overload

import dagster as dg
from typing_extensions import Self

from metaxy_delta.dagster._constants import (
    DAGSTER_COLUMN_LINEAGE_METADATA_KEY,
    DAGSTER_COLUMN_SCHEMA_METADATA_KEY,
    DAGSTER_METAXY_FEATURE_METADATA_KEY,
    DAGSTER_METAXY_INFO_METADATA_KEY,
    DAGSTER_METAXY_KIND,
    DAGSTER_METAXY_PROJECT_TAG_KEY,
)
from metaxy_delta.dagster._features import (
    build_feature_info_metadata,
    coerce_asset_key,
    dagster_attributes,
    feature_definition,
    feature_tag_value,
    get_asset_key_for_metaxy_feature_spec,
)
from metaxy_delta.dagster._table_metadata import build_column_lineage, build_column_schema
from metaxy_delta.models.keys import coerce_to_feature_key

_T = TypeVar("_T", dg.AssetsDefinition, dg.AssetSpec)

_ATTRIBUTE_NAMES = frozenset(inspect.signature(dg.AssetSpec.replace_attributes).parameters) - {
    "self",
    "key",
}
"""``AssetSpec`` attributes a feature may set through ``metadata["dagster/attributes"]``."""
_MERGED_ATTRIBUTES = frozenset({"tags", "metadata"})



def _wire_added_deps(asset: dg.AssetsDefinition) -> dg.AssetsDefinition:
    """Map the ``Nothing`` inputs that ``map_asset_specs`` added for new deps to their asset keys.

    Dagster 1.13's ``map_asset_specs`` adds one ``Nothing`` input per new dep to the op but leaves
    ``keys_by_input_name`` unchanged, so the deps show in the asset graph while jobs do not order
    the steps by them (a downstream step could run before its upstream in the same run).
    """
    if not asset.is_executable:
        return asset
    mapping = dict(asset.node_keys_by_input_name)
    missing = [name for name in asset.op.input_dict if name not in mapping]
    if not missing:
        return asset
    from dagster._core.definitions.assets.definition.assets_definition import (
        stringify_asset_key_to_input_name,
    )

    by_name = {
        stringify_asset_key_to_input_name(dep.asset_key): dep.asset_key
        for spec in asset.specs
        for dep in spec.deps
    }
    mapping.update({name: by_name[name] for name in missing if name in by_name})
    attributes = asset.get_attributes_dict()
    return asset.__class__.dagster_internal_init(**{**attributes, "keys_by_input_name": mapping})

class metaxify:  # noqa: N801 - a decorator, named like Metaxy's
    """Inject a Metaxy feature's facts into Dagster assets that name it.

    Every spec whose metadata has ``"metaxy/feature"`` (a key, string, list or feature class)
    gets, from the active feature graph:

    * its asset key: the feature key, or ``dagster/attributes.asset_key`` of the feature spec
      (``key`` overrides both; ``key_prefix`` prefixes it, and every upstream dep);
    * ``deps`` on the assets of the upstream features (user deps on the same key win, so a
      ``partition_mapping`` can be attached; other user deps are kept);
    * kind ``"metaxy"``; tags ``metaxy/project`` and ``metaxy/feature`` (table name);
    * metadata ``metaxy/feature`` (slash form), ``metaxy/info``, ``dagster/column_schema``
      (pydantic fields with descriptions, merged with the user's) and
      ``dagster/column_lineage`` (through renames and ID columns);
    * code version ``metaxy:<feature code version>`` (appended to an existing one after ``,``);
    * the feature docstring as description when the asset has none;
    * the feature's ``dagster/attributes`` (``group_name``, ``owners``...). Unlike Metaxy
      0.1.11, ``tags``/``metadata`` there are merged (not replaced, so the Metaxy tags that
      :func:`select_metaxy_assets` relies on survive) and unknown names raise ``ValueError``.

    Specs without ``"metaxy/feature"`` are left alone (``key_prefix`` still applies). Works on
    ``@dg.asset``, ``@dg.multi_asset``, ``@dg.multi_observable_source_asset`` and
    ``dg.AssetSpec``, bare (``@metaxify``) or configured (``@metaxify(key_prefix=...)``); put it
    above ``@dg.asset``. Assets with ``ins=`` work (Dagster 1.13 fixed the bug Metaxy worked
    around).

    Raises:
        ValueError: ``key`` and ``key_prefix`` together; ``key`` on a multi-output asset;
            malformed ``dagster/attributes``.
        KeyError: The feature (or an upstream feature) is not in the active graph.

    Example:
        >>> import dagster as dg
        >>> import metaxy_delta as mx
        >>> import metaxy_delta.dagster as mxd
        >>> with mx.FeatureGraph().use():
        ...     class Raw(mx.BaseFeature, spec=mx.FeatureSpec(key="docs/raw", id_columns=["id"])):
        ...         '''Raw samples.'''
        ...         id: str
        ...     @mxd.metaxify
        ...     @dg.asset(metadata={"metaxy/feature": "docs/raw"})
        ...     def raw(): ...
        >>> raw.key, raw.specs_by_key[raw.key].description
        (AssetKey(['docs', 'raw']), 'Raw samples.')
    """

    key: dg.AssetKey | None
    key_prefix: dg.AssetKey | None
    inject_metaxy_kind: bool
    inject_code_version: bool
    set_description: bool
    inject_column_schema: bool
    inject_column_lineage: bool

    @overload
    def __new__(cls, _asset: _T) -> _T: ...  # type: ignore[misc]

    @overload
    def __new__(
        cls,
        _asset: None = None,
        *,
        key: Any = None,
        key_prefix: Any = None,
        inject_metaxy_kind: bool = True,
        inject_code_version: bool = True,
        set_description: bool = True,
        inject_column_schema: bool = True,
        inject_column_lineage: bool = True,
    ) -> Self: ...

    def __new__(
        cls,
        _asset: Any = None,
        *,
        key: Any = None,
        key_prefix: Any = None,
        inject_metaxy_kind: bool = True,
        inject_code_version: bool = True,
        set_description: bool = True,
        inject_column_schema: bool = True,
        inject_column_lineage: bool = True,
    ) -> Any:
        if key is not None and key_prefix is not None:
            msg = "Cannot specify both `key` and `key_prefix`"
            raise ValueError(msg)
        instance = object.__new__(cls)
        instance.key = coerce_asset_key(key) if key is not None else None
        instance.key_prefix = coerce_asset_key(key_prefix) if key_prefix is not None else None
        instance.inject_metaxy_kind = inject_metaxy_kind
        instance.inject_code_version = inject_code_version
        instance.set_description = set_description
        instance.inject_column_schema = inject_column_schema
        instance.inject_column_lineage = inject_column_lineage
        if _asset is not None:
            return instance(_asset)
        return instance

    def __init__(self, *_args: Any, **_kwargs: Any) -> None:
        """Configured in ``__new__`` (so ``@metaxify`` and ``@metaxify()`` both work)."""

    def __call__(self, asset: _T) -> _T:
        """Return a metaxified copy of ``asset`` (an ``AssetsDefinition`` or ``AssetSpec``)."""
        if isinstance(asset, dg.AssetSpec):
            return self._enrich(asset.replace_attributes(key=self._final_key(asset)))
        if not isinstance(asset, dg.AssetsDefinition):
            msg = (
                f"metaxify expects an AssetsDefinition or AssetSpec, got {type(asset).__name__}; "
                "use observable_metaxy_asset for observable source assets"
            )
            raise TypeError(msg)
        if self.key is not None and len(asset.keys) > 1:
            msg = (
                f"Cannot use `key` argument with multi-asset `{asset.node_def.name}` that "
                f"produces {len(asset.keys)} outputs. Use `key_prefix` instead to apply a "
                "common prefix to all outputs."
            )
            raise ValueError(msg)
        replacements = {
            old: new for old, spec in asset.specs_by_key.items() if (new := self._final_key(spec)) != old
        }
        if replacements:
            asset = asset.with_attributes(asset_key_replacements=replacements)
        return _wire_added_deps(asset.map_asset_specs(self._enrich))

    # ------------------------------------------------------------------ per spec

    def _prefixed(self, key: dg.AssetKey) -> dg.AssetKey:
        return dg.AssetKey([*self.key_prefix.path, *key.path]) if self.key_prefix else key

    def _final_key(self, spec: dg.AssetSpec) -> dg.AssetKey:
        value = spec.metadata.get(DAGSTER_METAXY_FEATURE_METADATA_KEY)
        if value is None:
            return self._prefixed(spec.key)
        if self.key is not None:
            return self.key
        definition = feature_definition(value)
        return self._prefixed(get_asset_key_for_metaxy_feature_spec(definition.spec))

    def _enrich(self, spec: dg.AssetSpec) -> dg.AssetSpec:
        value = spec.metadata.get(DAGSTER_METAXY_FEATURE_METADATA_KEY)
        if value is None:
            return spec
        feature_key = coerce_to_feature_key(value)
        definition = feature_definition(feature_key)
        feature_spec = definition.spec
        attributes = dagster_attributes(feature_spec)
        attributes.pop("asset_key", None)
        unknown = sorted(set(attributes) - _ATTRIBUTE_NAMES)
        if unknown:
            msg = (
                f"Feature {feature_key.to_string()} sets unsupported dagster/attributes "
                f"{unknown}; supported: {sorted(_ATTRIBUTE_NAMES)}"
            )
            raise ValueError(msg)

        deps: dict[dg.AssetKey, dg.AssetDep] = {}
        for dep in feature_spec.deps:
            upstream = feature_definition(dep.feature)
            upstream_key = self._prefixed(get_asset_key_for_metaxy_feature_spec(upstream.spec))
            deps[upstream_key] = dg.AssetDep(upstream_key)
        for user_dep in spec.deps:
            deps[user_dep.asset_key] = user_dep

        metadata: dict[str, Any] = {
            **spec.metadata,
            DAGSTER_METAXY_FEATURE_METADATA_KEY: feature_key.to_string(),
            DAGSTER_METAXY_INFO_METADATA_KEY: build_feature_info_metadata(feature_key),
        }
        if self.inject_column_schema:
            schema = self._column_schema(spec, definition)
            if schema is not None:
                metadata[DAGSTER_COLUMN_SCHEMA_METADATA_KEY] = schema
        if self.inject_column_lineage and feature_spec.deps and not definition.is_external:
            lineage = self._column_lineage(spec, definition)
            if lineage is not None:
                metadata[DAGSTER_COLUMN_LINEAGE_METADATA_KEY] = lineage

        tags = {
            **spec.tags,
            DAGSTER_METAXY_PROJECT_TAG_KEY: definition.project,
            DAGSTER_METAXY_FEATURE_METADATA_KEY: feature_tag_value(feature_key),
        }
        kinds = set(spec.kinds) | ({DAGSTER_METAXY_KIND} if self.inject_metaxy_kind else set())
        replaced: dict[str, Any] = {"deps": list(deps.values()), "metadata": metadata, "tags": tags, "kinds": kinds}
        for name, override in attributes.items():
            if name in _MERGED_ATTRIBUTES and isinstance(override, Mapping):
                replaced[name] = {**replaced[name], **override}
            elif name == "kinds":
                replaced[name] = kinds | set(override or ())
            else:
                replaced[name] = override

        if self.inject_code_version:
            metaxy_version = f"metaxy:{feature_spec.code_version}"
            replaced["code_version"] = (
                f"{spec.code_version},{metaxy_version}" if spec.code_version else metaxy_version
            )
        description = definition.feature_schema.get("description") or feature_spec.description
        if self.set_description and spec.description is None and description:
            replaced["description"] = description
        return spec.replace_attributes(**replaced)

    @staticmethod
    def _column_schema(spec: dg.AssetSpec, definition: Any) -> dg.TableSchema | None:
        existing = spec.metadata.get(DAGSTER_COLUMN_SCHEMA_METADATA_KEY)
        columns = list(existing.columns) if isinstance(existing, dg.TableSchema) else []
        names = {c.name for c in columns}
        if not definition.is_external:
            columns += [c for c in build_column_schema(definition).columns if c.name not in names]
        if not columns:
            return None
        return dg.TableSchema(columns=sorted(columns, key=lambda c: c.name))

    def _column_lineage(self, spec: dg.AssetSpec, definition: Any) -> dg.TableColumnLineage | None:
        existing = spec.metadata.get(DAGSTER_COLUMN_LINEAGE_METADATA_KEY)
        user = dict(existing.deps_by_column) if isinstance(existing, dg.TableColumnLineage) else {}
        prefix = self.key_prefix.path if self.key_prefix else None
        computed = build_column_lineage(definition, key_prefix=prefix)
        merged: dict[str, list[dg.TableColumnDep]] = {
            c: list(d) for c, d in (computed.deps_by_column.items() if computed else ())
        }
        for column, deps in user.items():
            merged[column] = [*merged.get(column, []), *deps]
        if not merged:
            return None
        return dg.TableColumnLineage(deps_by_column={c: merged[c] for c in sorted(merged)})
