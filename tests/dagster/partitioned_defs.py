"""Daily-partitioned Metaxy assets, loadable by Dagster subprocesses (multiprocess executor).

Features are defined at import (into whatever graph is active then: the default global graph
in step subprocesses). The store root comes from ``$MXD_TEST_STORE_ROOT``.
"""

from typing import Any

import dagster as dg
import narwhals as nw
import polars as pl

import metaxy_delta as mx
import metaxy_delta.dagster as mxd

ROWS_PER_PARTITION = 5
PLANS: dict[str, str] = {}
"""Query plans of the frames ``summary`` received, by partition (in-process runs only)."""


class Events(mx.BaseFeature, spec=mx.FeatureSpec(key="part/events", id_columns=["event_id"])):
    """Events, one Delta partition per day."""

    event_id: str
    date: str | None = None


class EventSummary(
    mx.BaseFeature,
    spec=mx.FeatureSpec(key="part/summary", id_columns=["event_id"], deps=[mx.FeatureDep(feature="part/events")]),
):
    """Per-event summary, partitioned like its upstream."""

    event_id: str
    date: str | None = None


daily = dg.DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-01-05")


@mxd.metaxify
@dg.asset(
    partitions_def=daily,
    metadata={"metaxy/feature": "part/events", "partition_by": "date"},
    io_manager_key="metaxy_io_manager",
)
def events(context: dg.AssetExecutionContext) -> Any:
    day = context.partition_key
    ids = [f"{day}-{i}" for i in range(ROWS_PER_PARTITION)]
    # no `date` column: the IO manager fills it with the partition key
    return pl.DataFrame({"event_id": ids, "metaxy_provenance_by_field": [{"default": day}] * len(ids)})


@mxd.metaxify
@dg.asset(
    partitions_def=daily,
    metadata={"metaxy/feature": "part/summary", "partition_by": "date"},
    io_manager_key="metaxy_io_manager",
    ins={"events": dg.AssetIn(key=["part", "events"])},
)
def summary(
    context: dg.AssetExecutionContext, events: nw.LazyFrame, store: dg.ResourceParam[mx.MetadataStore]
) -> Any:
    PLANS[context.partition_key] = events.to_native().explain()
    spec = context.assets_def.specs_by_key[context.asset_key]
    with store.open("r"):
        increment = store.resolve_update(EventSummary, global_filters=mxd.get_partition_filter(context, spec))
    return increment.new


store_resource = mxd.MetaxyStoreResource(root_path=dg.EnvVar("MXD_TEST_STORE_ROOT"))

defs = dg.Definitions(
    assets=[events, summary],
    jobs=[dg.define_asset_job("events_job", selection=[events])],
    resources={"store": store_resource, "metaxy_io_manager": mxd.MetaxyIOManager(store=store_resource)},
    executor=dg.multiprocess_executor,
)


def events_job() -> dg.JobDefinition:
    """The partitioned job of ``events`` (module-level, so ``dg.reconstructable`` can rebuild it)."""
    return defs.resolve_job_def("events_job")



def run_partition(instance_ref: Any, day: str) -> bool:
    """Run ``events_job`` for one day in this (worker) process against a shared instance.

    Dagster's ``execute_job`` is not thread-safe (logging set-up and the SQLite event log lock),
    so a parallel backfill in a test runs each partition's run in a process of its own, as the
    daemon's run launcher does.
    """
    import os

    # Dagster drops sys.path[0] when a step subprocess imports the job's module, and
    # `reconstructable` records the working directory instead: make it this module's folder.
    os.chdir(os.path.dirname(os.path.abspath(__file__)))
    with dg.DagsterInstance.from_ref(instance_ref) as instance:
        recon = dg.reconstructable(events_job)
        with dg.execute_job(recon, instance=instance, tags={"dagster/partition": day}) as result:
            return result.success
