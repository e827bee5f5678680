"""``MaterializeResult`` / ``ObserveResult`` generators for (multi-)assets of Metaxy features."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import dagster as dg

from metaxy_delta.dagster._constants import (
    DAGSTER_METAXY_FEATURE_METADATA_KEY,
    DAGSTER_METAXY_PARTITION_KEY,
    DAGSTER_METAXY_PARTITION_METADATA_KEY,
)
from metaxy_delta.dagster._features import build_feature_event_tags
from metaxy_delta.dagster._partitions import (
    context_partition_keys,
    partition_conditions,
    slice_conditions,
)
from metaxy_delta.dagster._resources import as_store
from metaxy_delta.dagster._stats import FeatureStats, runtime_metadata
from metaxy_delta.errors import FeatureNotFoundError
from metaxy_delta.models import current_graph
from metaxy_delta.models.keys import FeatureKey, coerce_to_feature_key


def generate_materialize_results(
    context: dg.AssetExecutionContext | dg.OpExecutionContext,
    store: Any,
    specs: Iterable[dg.AssetSpec] | None = None,
) -> Iterator[dg.MaterializeResult[None]]:
    """One ``MaterializeResult`` per Metaxy spec, upstream features first.

    Each result carries the spec's asset key, the runtime metadata (``dagster/row_count``,
    ``dagster/partition_row_count`` for partitioned runs, ``metaxy/partition_filter`` — the
    filter applied —, ``metaxy/materialized_in_run`` when the store has a materialization id,
    Delta URI/version, preview...), the data version and the ``metaxy/*`` event tags. Specs
    default to ``context.assets_def.specs``; specs without ``"metaxy/feature"`` are skipped, as
    are features without a table (logged). Unlike Metaxy 0.1.11, two specs of the same feature
    (e.g. two ``metaxy/partition`` slices) each get their result.

    Raises:
        ValueError: ``specs`` missing with an ``OpExecutionContext``.

    Example:
        >>> import dagster as dg
        >>> import metaxy_delta as mx
        >>> import metaxy_delta.dagster as mxd
        >>> @dg.multi_asset(specs=[dg.AssetSpec("a", metadata={"metaxy/feature": "x/a"})])
        ... def both(context, store: dg.ResourceParam[mx.MetadataStore]):
        ...     ...  # write x/a through `store`
        ...     yield from mxd.generate_materialize_results(context, store)
    """
    for spec, key, metadata, data_version in _results(context, store, specs, materialize=True):
        yield dg.MaterializeResult(
            asset_key=spec.key,
            metadata=metadata,
            data_version=data_version,
            tags=build_feature_event_tags(key),
        )


def generate_observe_results(
    context: dg.AssetExecutionContext | dg.OpExecutionContext,
    store: Any,
    specs: Iterable[dg.AssetSpec] | None = None,
) -> Iterator[dg.ObserveResult]:
    """One ``ObserveResult`` per Metaxy spec (see :func:`generate_materialize_results`).

    Typical use: ``@dg.multi_observable_source_asset(specs=[...])`` with
    ``yield from generate_observe_results(context, store)``.
    """
    for spec, key, metadata, data_version in _results(context, store, specs, materialize=False):
        yield dg.ObserveResult(
            asset_key=spec.key,
            metadata=metadata,
            data_version=data_version,
            tags=build_feature_event_tags(key),
        )


def _results(
    context: Any, store: Any, specs: Iterable[dg.AssetSpec] | None, *, materialize: bool
) -> Iterator[tuple[dg.AssetSpec, FeatureKey, dict[str, Any], dg.DataVersion | None]]:
    """Per Metaxy spec: key, metadata and data version (``None`` for a run over several
    partitions: Dagster would give each partition the range's version)."""
    if specs is None:
        if not isinstance(context, dg.AssetExecutionContext):
            msg = "specs must be provided when using OpExecutionContext"
            raise ValueError(msg)
        specs = _selected(context)
    store = as_store(store)
    several = len(context_partition_keys(context)) > 1
    for spec, key in ordered_metaxy_specs(specs):
        try:
            metadata, stats = spec_runtime_metadata(
                context, store, spec, key, run_id=store.materialization_id if materialize else None
            )
        except FeatureNotFoundError:
            what = "materialization" if materialize else "observation"
            context.log.warning(f"Feature {key.to_string()} not found in store, skipping {what} result")
            continue
        yield spec, key, metadata, None if several else stats.data_version


def _selected(context: dg.AssetExecutionContext) -> list[dg.AssetSpec]:
    """The specs of the assets this step materializes (a subset run of a ``can_subset``
    multi-asset selects some; a result for another fails the step)."""
    selected = set(context.selected_asset_keys)
    return [spec for spec in context.assets_def.specs if spec.key in selected]


def spec_runtime_metadata(
    context: Any, store: Any, spec: dg.AssetSpec, key: FeatureKey, *, run_id: str | None = None
) -> tuple[dict[str, Any], FeatureStats]:
    """Runtime metadata and stats of ``spec``'s feature for the run's partition and slice.

    One definition for materialize results, observe results and observation jobs, so they all
    count rows and compute data versions the same way (Metaxy's jobs did not, dagster spec §9.2).

    Raises:
        FeatureNotFoundError: The feature has no table in ``store``.
    """
    keys = context_partition_keys(context)
    with store.open("r"):
        return runtime_metadata(
            store,
            key,
            partition=partition_conditions(spec.metadata.get(DAGSTER_METAXY_PARTITION_KEY), keys),
            slice_=slice_conditions(spec.metadata.get(DAGSTER_METAXY_PARTITION_METADATA_KEY)),
            partitions=len(keys),
            run_id=run_id,
            log=context.log,
        )


def ordered_metaxy_specs(specs: Iterable[dg.AssetSpec]) -> list[tuple[dg.AssetSpec, FeatureKey]]:
    """Specs naming a feature, with their keys, upstream features first (spec order on ties)."""
    found = [
        (spec, coerce_to_feature_key(spec.metadata[DAGSTER_METAXY_FEATURE_METADATA_KEY]))
        for spec in specs
        if spec.metadata.get(DAGSTER_METAXY_FEATURE_METADATA_KEY)
    ]
    order = {k: i for i, k in enumerate(current_graph().topological_sort_features([k for _, k in found]))}
    indexed = sorted(enumerate(found), key=lambda item: (order.get(item[1][1], len(order)), item[0]))
    return [pair for _, pair in indexed]
