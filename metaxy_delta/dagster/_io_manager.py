"""``MetaxyIOManager``: Dagster assets ↔ Metaxy features in a Delta metadata store."""


from typing import Any

import dagster as dg
from narwhals.typing import IntoFrame
from pydantic import Field

from metaxy_delta.dagster._constants import (
    DAGSTER_METAXY_FEATURE_METADATA_KEY,
    DAGSTER_METAXY_PARTITION_KEY,
    DAGSTER_METAXY_PARTITION_METADATA_KEY,
    DATA_VERSION_KEY,
    DELTA_VERSION_KEY,
    PARTITION_FILTER_KEY,
    ROW_COUNT_KEY,
    ROWS_WRITTEN_KEY,
    STORE_KEY,
    URI_KEY,
)
from metaxy_delta.dagster._features import feature_key_from_metadata
from metaxy_delta.dagster._partitions import (
    _loads_all_partitions,
    describe,
    input_conditions,
    partition_columns,
    partition_conditions,
    prepare_output_frame,
    slice_conditions,
    to_exprs,
)
from metaxy_delta.dagster._resources import MetaxyStoreFromConfigResource
from metaxy_delta.dagster._stats import EMPTY_DATA_VERSION, column_dtypes, runtime_metadata
from metaxy_delta.errors import FeatureNotFoundError
from metaxy_delta.models import current_graph
from metaxy_delta.models.keys import FeatureKey
from metaxy_delta.store import DeltaMetadataStore, WriteResult
from metaxy_delta.versioning import as_polars_lazy

MetaxyOutput = IntoFrame | None
"""What assets using :class:`MetaxyIOManager` return: any narwhals-compatible frame, or ``None``
when the asset wrote through the store itself (metadata is still logged).

Annotate such assets with ``-> Any`` (or not at all; ``dagster_type=feature_to_dagster_type(...)``
checks the value): with ``-> None`` Dagster types the output ``Nothing`` and never calls the IO
manager, so no metadata or data version would be logged."""


class MetaxyIOManager(dg.ConfigurableIOManager):
    """Load upstream features as narwhals LazyFrames and write asset outputs as features.

    The feature comes from the ``"metaxy/feature"`` metadata of the asset being materialized
    (``handle_output``) or of the upstream asset being loaded (``load_input``).

    **Loading** returns the upstream feature's current rows (feature version, latest live row
    per sample) as a lazy frame pinned to one Delta version, restricted to the partitions the
    input maps to (upstream ``"partition_by"``; ``AllPartitionMapping`` loads everything) and to
    the upstream ``"metaxy/partition"`` slice. Partition filters are pushed into the Delta scan,
    so only that partition's files are read. Input metadata names the store the rows came from
    (a fallback store if the table is only there), the table URI and the Delta version.

    **Writing** appends the returned frame (Polars, pandas, PyArrow, narwhals...; ``None`` writes
    nothing) with ``metaxy_materialization_id = <run id>``. For partitioned assets the
    ``"partition_by"`` column is filled with the partition key when missing, rows of other
    partitions are rejected (:class:`~metaxy_delta.dagster.PartitionMismatchError`), and a new
    table is created with that column as Delta partition column, so parallel backfills append
    to disjoint partitions of one table. Output metadata: ``dagster/row_count`` (the whole slice;
    ``dagster/partition_row_count`` for the run's partitions), ``metaxy/rows_written``,
    ``metaxy/materialized_in_run``, ``metaxy/feature_version``, ``dagster/uri``,
    ``metaxy/delta_version``, ``metaxy/store``, ``metaxy/info`` and a preview; the Dagster
    **data version** of the materialization is set from the rows (Metaxy 0.1.11 sets none on
    this path, so staleness could not follow the data).

    ``store`` is a resource dependency: pass the same resource you give your assets as
    ``"store"`` (Dagster builds it once per step). It defaults to
    ``MetaxyStoreFromConfigResource()`` — the configured default store (Metaxy's default could
    not even be constructed).

    Example:
        >>> import dagster as dg
        >>> import metaxy_delta.dagster as mxd
        >>> store = mxd.MetaxyStoreFromConfigResource(name="dev")
        >>> defs = dg.Definitions(
        ...     resources={"store": store, "metaxy_io_manager": mxd.MetaxyIOManager(store=store)},
        ... )
    """

    store: dg.ResourceDependency[DeltaMetadataStore] = Field(  # type: ignore[type-var]
        default_factory=MetaxyStoreFromConfigResource,
        description="The metadata store (a store resource, built per step).",
    )

    @property
    def metadata_store(self) -> DeltaMetadataStore:
        """The built store (typed accessor for :attr:`store`)."""
        return self.store  # type: ignore[return-value]

    # ------------------------------------------------------------------ loading

    def load_input(self, context: dg.InputContext) -> Any:
        """The upstream feature's rows for this input's partitions, as a narwhals LazyFrame."""
        upstream = context.upstream_output
        key = feature_key_from_metadata(
            upstream.definition_metadata if upstream is not None else None,
            what=f"upstream asset of input {context.name!r}",
        )
        store = self.metadata_store
        conditions = input_conditions(context)
        with store.open("r"):
            filters = to_exprs(conditions, column_dtypes(store, key, [c.column for c in conditions]))
            version = store.version(key)
            if version is not None:
                frame, resolved = store.read(key, filters=filters, version=version), store
            else:
                frame, resolved = store.read(key, filters=filters, with_store_info=True)
                with resolved.open("r"):
                    version = resolved.version(key)
        uri = resolved.table_uri(key)
        where = f" where {describe(conditions)}" if conditions else ""
        context.log.info(
            f"Loading Metaxy feature {key.to_string()} from {resolved!r}: {uri} "
            f"(Delta version {version}){where}"
        )
        metadata: dict[str, Any] = {
            DAGSTER_METAXY_FEATURE_METADATA_KEY: key.to_string(),
            "name": store.name,
            STORE_KEY: resolved.display(),
            URI_KEY: dg.MetadataValue.path(uri),
            DELTA_VERSION_KEY: version,
        }
        if conditions:
            metadata[PARTITION_FILTER_KEY] = describe(conditions)
        if self._single_partition_input(context):
            # Dagster cannot attach input metadata to several partitions (dagster#27940).
            context.add_input_metadata(metadata, description="Metadata Store Info")
        return frame

    @staticmethod
    def _single_partition_input(context: dg.InputContext) -> bool:
        if not context.has_asset_partitions:
            return True
        if _loads_all_partitions(context):
            return False
        return len(context.asset_partition_keys) == 1  # Dagster checks exactly one

    # ------------------------------------------------------------------ writing

    def handle_output(self, context: dg.OutputContext, obj: MetaxyOutput) -> None:
        """Append ``obj`` to the asset's feature (if not ``None``) and log runtime metadata."""
        definition_metadata = context.definition_metadata or {}
        asset_name = context.asset_key.to_user_string() if context.has_asset_key else context.name
        key = feature_key_from_metadata(definition_metadata, what=f"asset {asset_name!r}")
        partition_by = definition_metadata.get(DAGSTER_METAXY_PARTITION_KEY)
        keys = list(context.asset_partition_keys) if context.has_asset_partitions else []
        partition = partition_conditions(partition_by, keys)
        slice_ = slice_conditions(definition_metadata.get(DAGSTER_METAXY_PARTITION_METADATA_KEY))
        run_id = _run_id(context)
        store = self.metadata_store
        written: WriteResult | None = None
        with store.open("w"):
            if obj is not None:
                written = self._write(context, store, key, obj, [*partition, *slice_], partition_by, run_id)
            else:
                context.log.debug(
                    f'The output corresponds to Metaxy feature "{key.to_string()}" stored in {store!r}'
                )
            if _already_logged(context):
                context.log.debug("Skipping runtime metadata logging - already logged via MaterializeResult")
                if written is not None:
                    context.add_output_metadata(_write_metadata(written))
                return
            stats = None
            try:
                metadata, stats = runtime_metadata(
                    store, key, partition=partition, slice_=slice_, partitions=len(keys),
                    run_id=run_id, log=context.log,
                )  # fmt: skip
            except FeatureNotFoundError:
                context.log.warning(f"Metaxy feature {key.to_string()} has no metadata in {store!r} yet")
                metadata = {
                    DAGSTER_METAXY_FEATURE_METADATA_KEY: key.to_string(),
                    ROW_COUNT_KEY: 0,
                    DATA_VERSION_KEY: EMPTY_DATA_VERSION,
                }
            except Exception as err:  # noqa: BLE001 - the rows are written: never fail the step
                context.log.warning(
                    f"metaxy_delta: could not compute the metadata of {key.to_string()}: {err!r}"
                )
                metadata = {DAGSTER_METAXY_FEATURE_METADATA_KEY: key.to_string()}
        if written is not None:
            metadata.update(_write_metadata(written))
        context.add_output_metadata(metadata)
        if stats is not None and len(keys) <= 1:
            # a range run's data version would be given to each of its partitions
            _set_data_version(context, stats.data_version)

    def _write(
        self,
        context: dg.OutputContext,
        store: DeltaMetadataStore,
        key: FeatureKey,
        obj: Any,
        conditions: list[Any],
        partition_by: Any,
        run_id: str | None,
    ) -> WriteResult:
        frame = as_polars_lazy(obj).collect()
        if conditions:
            dtypes = column_dtypes(store, key, [c.column for c in conditions])
            frame = prepare_output_frame(frame, conditions, dtypes)
        columns = partition_columns(partition_by)
        context.log.debug(f'Writing metadata for Metaxy feature "{key.to_string()}" into {store!r}')
        result = store.write(key, frame, materialization_id=run_id, partition_by=columns or None)
        context.log.info(
            f"Wrote {result.rows} rows of Metaxy feature {key.to_string()} "
            f"(feature version {current_graph().get_feature_version(key)}) to {result.table_uri} "
            f"(Delta version {result.version})"
        )
        return result


def _write_metadata(result: WriteResult) -> dict[str, Any]:
    return {
        ROWS_WRITTEN_KEY: result.rows,
        DELTA_VERSION_KEY: result.version,
        URI_KEY: dg.MetadataValue.path(result.table_uri),
    }


def _run_id(context: dg.OutputContext) -> str | None:
    try:
        return context.run_id
    except Exception:  # noqa: BLE001 - build_output_context() without a run
        return None


def _already_logged(context: dg.OutputContext) -> bool:
    """Whether the asset already logged ``dagster/row_count`` (e.g. via MaterializeResult)."""
    try:
        logged = context.step_context.get_output_metadata(context.name) or {}
    except Exception:  # noqa: BLE001 - no step context (direct handle_output calls)
        return False
    return ROW_COUNT_KEY in logged


def _set_data_version(context: dg.OutputContext, data_version: dg.DataVersion) -> None:
    """Make ``data_version`` the data version of this materialization.

    An IO manager cannot return a data version; Dagster reads the step's data-version cache
    (filled by ``handle_output`` before the materialization event is built) when the output
    carries none, so it is set there. An explicit ``Output(data_version=...)`` still wins.
    """
    try:
        step_context = context.step_context
        if context.has_asset_key:
            step_context.set_data_version(context.asset_key, data_version)
    except Exception:  # noqa: BLE001 - direct handle_output calls have no step context
        return
