"""``observable_metaxy_asset``: observable source assets for features written outside Dagster."""


from collections.abc import Callable, Mapping
from typing import Any

import dagster as dg

from metaxy_delta.dagster._constants import (
    DAGSTER_METAXY_FEATURE_METADATA_KEY,
    DAGSTER_METAXY_PARTITION_METADATA_KEY,
    ROW_COUNT_KEY,
)
from metaxy_delta.dagster._features import build_feature_event_tags, coerce_asset_key
from metaxy_delta.dagster._metaxify import metaxify
from metaxy_delta.dagster._partitions import slice_conditions
from metaxy_delta.dagster._stats import compute_stats_from_lazy_frame, read_filtered
from metaxy_delta.models.keys import coerce_to_feature_key

ObserveFn = Callable[[Any, Any, Any], Mapping[str, Any] | None]


def observable_metaxy_asset(
    feature: Any,
    *,
    store_resource_key: str = "store",
    inject_metaxy_kind: bool = True,
    inject_code_version: bool = True,
    set_description: bool = True,
    **observable_kwargs: Any,
) -> Callable[[ObserveFn], dg.SourceAsset]:
    """Turn ``fn(context, store, lazy_df) -> dict | None`` into an observable source asset.

    Each observation reads the feature (current rows, restricted to the asset's
    ``"metaxy/partition"`` slice) from the resource ``store_resource_key`` and records
    ``dagster/row_count`` and a data version (``mean(metaxy_created_at)``, row count and latest
    update, see :func:`compute_stats_from_lazy_frame`), so appends and deletes made by external
    pipelines both show up. ``fn`` runs with the store open and may return extra metadata (it
    may override ``dagster/row_count``). ``key`` is honoured (Metaxy 0.1.11 silently replaced
    it with the feature key); without it the key is the feature's asset key. The feature's
    docstring, kind, tags, column schema and ``metaxy/info`` are attached as by
    :func:`metaxify`; source assets have no code version, so ``inject_code_version`` only adds
    a ``metaxy/code_version`` metadata entry. Other keyword arguments go to
    ``dg.observable_source_asset``.

    Raises:
        FeatureNotFoundError: (at observation) the feature has no table.

    Example:
        >>> import dagster as dg
        >>> import narwhals as nw
        >>> import metaxy_delta as mx
        >>> import metaxy_delta.dagster as mxd
        >>> with mx.FeatureGraph().use():
        ...     class Ext(mx.BaseFeature, spec=mx.FeatureSpec(key="external/feature", id_columns=["id"])):
        ...         id: str
        ...     @mxd.observable_metaxy_asset(key="dagster/asset/key", feature="external/feature")
        ...     def external_data(context, store: dg.ResourceParam[mx.MetadataStore], lazy_df: nw.LazyFrame):
        ...         return {"custom/columns": len(lazy_df.collect_schema())}
        >>> external_data.key
        AssetKey(['dagster', 'asset', 'key'])
    """
    feature_key = coerce_to_feature_key(feature)

    def decorator(fn: ObserveFn) -> dg.SourceAsset:
        kwargs = dict(observable_kwargs)
        key = kwargs.pop("key", None)
        spec = dg.AssetSpec(
            key=coerce_asset_key(key) if key is not None else fn.__name__,
            group_name=kwargs.pop("group_name", None),
            tags=kwargs.pop("tags", None),
            description=kwargs.pop("description", None),
            metadata={
                **(kwargs.pop("metadata", None) or {}),
                DAGSTER_METAXY_FEATURE_METADATA_KEY: feature_key.to_string(),
            },
        )
        enriched = metaxify(
            key=key,
            inject_metaxy_kind=inject_metaxy_kind,
            inject_code_version=inject_code_version,
            set_description=set_description,
        )(spec)
        metadata = dict(enriched.metadata)
        if enriched.code_version:
            metadata["metaxy/code_version"] = enriched.code_version
        slice_ = slice_conditions(metadata.get(DAGSTER_METAXY_PARTITION_METADATA_KEY))

        def observe(context: Any) -> dg.ObserveResult:
            store = getattr(context.resources, store_resource_key)
            with store.open("r"):
                lazy_df = read_filtered(store, feature_key, slice_)
                stats = compute_stats_from_lazy_frame(lazy_df)
                extra = fn(context, store, lazy_df) or {}
            return dg.ObserveResult(
                data_version=stats.data_version,
                metadata={ROW_COUNT_KEY: stats.row_count, **dict(extra)},
                tags=build_feature_event_tags(feature_key),
            )

        observe.__name__ = fn.__name__
        observe.__doc__ = fn.__doc__
        return dg.observable_source_asset(  # type: ignore[no-any-return]
            key=enriched.key,
            description=enriched.description,
            group_name=enriched.group_name,
            tags=dict(enriched.tags) or None,
            metadata=metadata or None,
            required_resource_keys={store_resource_key},
            **kwargs,
        )(observe)

    return decorator
