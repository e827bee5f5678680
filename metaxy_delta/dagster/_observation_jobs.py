"""Jobs that record ``AssetObservation``s (row counts, data versions) of Metaxy assets.

Schedule them to track features that other pipelines write::

    dg.ScheduleDefinition(job=mxd.build_metaxy_multi_observation_job("observe_all", assets=[...]),
                          cron_schedule="*/15 * * * *")
"""


from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg

from metaxy_delta.dagster._constants import (
    DAGSTER_METAXY_FEATURE_METADATA_KEY,
    ROW_COUNT_KEY,
)
from metaxy_delta.dagster._features import (
    build_feature_event_tags,
    feature_definition,
    feature_tag_value,
    get_asset_key_for_metaxy_feature_spec,
)
from metaxy_delta.dagster._partitions import (
    context_partition_keys,
)
from metaxy_delta.dagster._results import spec_runtime_metadata
from metaxy_delta.errors import FeatureNotFoundError
from metaxy_delta.models.keys import FeatureKey, coerce_to_feature_key

_DATA_VERSION_TAG = "dagster/data_version"
_Spec = tuple[dg.AssetSpec, dg.PartitionsDefinition | None]


def _metaxy_specs(asset: Any) -> list[_Spec]:
    if isinstance(asset, dg.AssetSpec):
        specs: list[_Spec] = [(asset, asset.partitions_def)]
    elif isinstance(asset, dg.AssetsDefinition):
        specs = [(s, asset.partitions_def) for s in asset.specs]
    elif isinstance(asset, dg.SourceAsset):
        return []
    else:
        msg = f"Expected AssetSpec, AssetsDefinition, or SourceAsset, got {type(asset).__name__}"
        raise TypeError(msg)
    return [(s, p) for s, p in specs if s.metadata.get(DAGSTER_METAXY_FEATURE_METADATA_KEY) is not None]


def observe_spec(context: Any, store: Any, spec: dg.AssetSpec) -> dg.AssetObservation:
    """An ``AssetObservation`` of ``spec`` for the run's partition (same metadata and data version
    as :func:`generate_observe_results`; Metaxy 0.1.11's jobs recorded no data version).

    A feature without a table yields ``dagster/row_count = 0`` and ``error`` metadata.
    """
    key = coerce_to_feature_key(spec.metadata[DAGSTER_METAXY_FEATURE_METADATA_KEY])
    keys = context_partition_keys(context)
    partition = keys[0] if len(keys) == 1 else None
    try:
        metadata, stats = spec_runtime_metadata(context, store, spec, key)
    except FeatureNotFoundError:
        context.log.warning(f"Feature {key.to_string()} not found in store, returning empty observation")
        return dg.AssetObservation(
            asset_key=spec.key,
            partition=partition,
            metadata={ROW_COUNT_KEY: 0, "error": "Feature not found"},
        )
    tags = {**build_feature_event_tags(key), _DATA_VERSION_TAG: stats.data_version.value}
    return dg.AssetObservation(asset_key=spec.key, partition=partition, metadata=metadata, tags=tags)


def build_metaxy_observation_job(
    asset: dg.AssetSpec | dg.AssetsDefinition,
    *,
    store_resource_key: str = "store",
    tags: Mapping[str, str] | None = None,
) -> list[dg.JobDefinition]:
    """One observation job per Metaxy spec of ``asset``.

    A job is named ``observe_<table name>`` when the asset key is the one :func:`metaxify`
    gives the feature by default (its key, or its ``dagster/attributes`` asset key), else ``observe_<asset key as identifier>``: two assets
    of one feature, in one call or in separate ones, get distinct names instead of clashing in
    ``dg.Definitions`` (Metaxy 0.1.11 named every job after the feature). The job has the
    asset's ``partitions_def`` (an ``AssetSpec``'s own one too — Metaxy 0.1.11 dropped it). Its
    single op is ``<job name>_op`` (Metaxy's op name equalled the
    job name for the usual asset key = feature key, which ``dg.Definitions`` rejects).

    Raises:
        TypeError: ``asset`` is neither an ``AssetSpec`` nor an ``AssetsDefinition``.
        ValueError: No spec has ``"metaxy/feature"`` metadata.

    Example:
        >>> import dagster as dg
        >>> import metaxy_delta.dagster as mxd
        >>> [job.name for job in mxd.build_metaxy_observation_job(
        ...     dg.AssetSpec(["obs", "a"], metadata={"metaxy/feature": "obs/a"}),
        ...     ) + mxd.build_metaxy_observation_job(
        ...     dg.AssetSpec("a_copy", metadata={"metaxy/feature": "obs/a"}))]
        ['observe_obs__a', 'observe_a_copy']
    """
    if not isinstance(asset, (dg.AssetSpec, dg.AssetsDefinition)):
        msg = f"Expected AssetSpec or AssetsDefinition, got {type(asset).__name__}"
        raise TypeError(msg)
    specs = _metaxy_specs(asset)
    if not specs:
        msg = (
            "Asset has no specs with 'metaxy/feature' metadata. Ensure your asset has "
            "metadata={'metaxy/feature': 'feature/key'}."
        )
        raise ValueError(msg)
    jobs: list[dg.JobDefinition] = []
    for spec, partitions_def in specs:
        key = coerce_to_feature_key(spec.metadata[DAGSTER_METAXY_FEATURE_METADATA_KEY])
        name = _observation_job_name(spec, key)
        # The op is named after the job, not ``observe_<asset key>`` as in Metaxy 0.1.11: the
        # asset key usually *is* the feature key, so that op name equalled the job (graph)
        # name and Dagster rejected the job inside ``Definitions`` ("Conflicting definitions").
        op = _single_observation_op(f"{name}_op", spec, store_resource_key)

        @dg.job(
            name=name,
            partitions_def=partitions_def,
            tags={**(tags or {}), DAGSTER_METAXY_FEATURE_METADATA_KEY: feature_tag_value(key)},
            description=f"Observe Metaxy feature {key.to_string()} (Dagster asset: `{spec.key.to_user_string()}`)",
            metadata={
                DAGSTER_METAXY_FEATURE_METADATA_KEY: key.to_string(),
                "dagster/asset": dg.MetadataValue.asset(spec.key),
            },
        )
        def _job() -> None:
            op()  # noqa: B023 - bound per iteration by the decorator call

        jobs.append(_job)
    return jobs


def _observation_job_name(spec: dg.AssetSpec, key: FeatureKey) -> str:
    # ``observe_<table name>`` (Metaxy's name) for the feature's own asset (the key metaxify
    # gives it: the feature key, or its ``dagster/attributes`` asset key); another asset of the
    # same feature is named after its own (unique) asset key, so separate calls for two assets
    # of one feature do not clash inside ``dg.Definitions`` as in Metaxy 0.1.11.
    try:
        default = get_asset_key_for_metaxy_feature_spec(feature_definition(key).spec)
    except KeyError:  # not in the active graph: the asset key metaxify would give is the key
        default = dg.AssetKey(list(key.parts))
    if spec.key == default:
        return f"observe_{key.table_name}"
    return f"observe_{spec.key.to_python_identifier()}"


def _mapping_keys(specs: Mapping[str, dg.AssetSpec]) -> dict[str, str]:
    # Dagster mapping keys allow only ``[A-Za-z0-9_]``; ``up-x`` and ``up_x`` both sanitise to
    # ``up_x``, so later duplicates get a ``_2``, ``_3``... suffix (in asset order).
    keys: dict[str, str] = {}
    for user_key, spec in specs.items():
        base = candidate = spec.key.to_python_identifier()
        suffix = 1
        while candidate in keys.values():
            suffix += 1
            candidate = f"{base}_{suffix}"
        keys[user_key] = candidate
    return keys


def _single_observation_op(name: str, spec: dg.AssetSpec, store_resource_key: str) -> dg.OpDefinition:
    @dg.op(name=name, required_resource_keys={store_resource_key}, out=dg.Out(dg.Nothing))
    def _observe(context: dg.OpExecutionContext) -> None:
        store = getattr(context.resources, store_resource_key)
        context.log_event(observe_spec(context, store, spec))

    return _observe


def build_metaxy_multi_observation_job(
    name: str,
    *,
    asset_selection: dg.AssetSelection | None = None,
    defs: dg.Definitions | None = None,
    assets: Sequence[dg.AssetSpec | dg.AssetsDefinition | dg.SourceAsset] | None = None,
    store_resource_key: str = "store",
    tags: Mapping[str, str] | None = None,
    **job_kwargs: Any,
) -> dg.JobDefinition:
    """One job observing many Metaxy assets (one dynamic op invocation per asset).

    Give either ``assets`` or ``asset_selection`` + ``defs``. Run config
    ``{"ops": {"<name>_fanout": {"config": {"asset_keys": ["a/b"]}}}}`` observes a subset.
    Mapping keys are sanitised and made unique, so asset keys with ``-`` work (they failed in
    Metaxy 0.1.11), also beside one that only differs by ``_`` (``up-x`` and ``up_x``).

    Raises:
        ValueError: Wrong argument combination, no Metaxy specs, or differing partitions.

    Example:
        >>> import dagster as dg
        >>> import metaxy_delta.dagster as mxd
        >>> job = mxd.build_metaxy_multi_observation_job(
        ...     "observe_all", assets=[dg.AssetSpec("up-x", metadata={"metaxy/feature": "a/b"})])
        >>> job.name
        'observe_all'
    """
    specs = _collect_specs(asset_selection=asset_selection, defs=defs, assets=assets)
    partitions = [p for _, p in specs]
    for index, partitions_def in enumerate(partitions[1:], start=1):
        if partitions_def != partitions[0]:
            msg = (
                f"All assets must have the same partitions_def. Asset 0 has {partitions[0]}, "
                f"but asset {index} has {partitions_def}."
            )
            raise ValueError(msg)
    by_key = {spec.key.to_user_string(): spec for spec, _ in specs}
    mapping_keys = _mapping_keys(by_key)

    @dg.op(
        name=f"{name}_fanout",
        out=dg.DynamicOut(str),
        config_schema={"asset_keys": dg.Field([str], default_value=list(by_key), is_required=False)},
    )
    def fanout(context: dg.OpExecutionContext) -> Any:
        requested = list(dict.fromkeys(context.op_config["asset_keys"]))
        invalid = set(requested) - set(by_key)
        if invalid:
            msg = (
                f"Requested asset keys not found in job: {sorted(invalid)}. "
                f"Available keys: {sorted(by_key)}"
            )
            raise ValueError(msg)
        for asset_key in requested:
            yield dg.DynamicOutput(asset_key, mapping_key=mapping_keys[asset_key])

    @dg.op(name=f"{name}_observe", required_resource_keys={store_resource_key}, out=dg.Out(dg.Nothing))
    def observe(context: dg.OpExecutionContext, asset_key: str) -> None:
        store = getattr(context.resources, store_resource_key)
        context.log_event(observe_spec(context, store, by_key[asset_key]))

    lines = [
        f"- `{k}` → `{spec.metadata[DAGSTER_METAXY_FEATURE_METADATA_KEY]}`" for k, spec in by_key.items()
    ]
    metadata: dict[str, Any] = {
        "metaxy/features": [
            coerce_to_feature_key(s.metadata[DAGSTER_METAXY_FEATURE_METADATA_KEY]).to_string() for s, _ in specs
        ],
        **{f"metaxy/asset/{k}": dg.MetadataValue.asset(s.key) for k, s in by_key.items()},
    }

    @dg.job(
        name=name,
        partitions_def=partitions[0],
        tags=dict(tags or {}),
        description=f"Observe {len(by_key)} Metaxy assets:\n\n" + "\n".join(lines),
        metadata=metadata,
        **job_kwargs,
    )
    def _job() -> None:
        fanout().map(observe)

    return _job


def _collect_specs(
    *, asset_selection: dg.AssetSelection | None, defs: dg.Definitions | None, assets: Sequence[Any] | None
) -> list[_Spec]:
    if assets is not None and (asset_selection is not None or defs is not None):
        msg = (
            "Cannot provide both 'assets' and 'asset_selection'/'defs'. "
            "Use either asset_selection + defs, or assets alone."
        )
        raise ValueError(msg)
    if assets is None:
        if asset_selection is None and defs is None:
            msg = "Must provide either 'asset_selection' + 'defs', or 'assets'."
            raise ValueError(msg)
        if asset_selection is None:
            msg = "'defs' requires 'asset_selection' to be provided."
            raise ValueError(msg)
        if defs is None:
            msg = "'asset_selection' requires 'defs' to be provided."
            raise ValueError(msg)
        graph = defs.resolve_asset_graph()
        selected = asset_selection.resolve(graph)
        specs: list[_Spec] = []
        for assets_def in graph.assets_defs:
            specs += [(s, p) for s, p in _metaxy_specs(assets_def) if s.key in selected]
    else:
        specs = [pair for asset in assets for pair in _metaxy_specs(asset)]
    if not specs:
        msg = (
            "No assets have specs with 'metaxy/feature' metadata. Ensure your assets have "
            "metadata={'metaxy/feature': 'feature/key'}."
        )
        raise ValueError(msg)
    return specs
