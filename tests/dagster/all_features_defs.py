"""One ``Definitions`` using every part of the Dagster integration (validated by the CLI).

``dagster definitions validate -f tests/dagster/all_features_defs.py`` must accept it; the
tests also import it into a private feature graph and run its jobs. The store root comes from
``$MXD_ALL_FEATURES_STORE_ROOT`` (default: a directory under the system temp dir).

Parts used: ``metaxify`` on ``@dg.asset``, ``@dg.multi_asset`` and ``dg.AssetSpec``;
``MetaxyIOManager``; ``MetaxyStoreResource`` and ``MetaxyStoreFromConfigResource``;
``generate_materialize_results``; ``observable_metaxy_asset``; a partitioned asset; both
observation job builders; ``select_metaxy_assets``; the ``delete_metadata`` op; the
maintenance job and a schedule for it; ``feature_to_dagster_type``.
"""

import os
import tempfile
from typing import Any

import dagster as dg
import narwhals as nw
import polars as pl

import metaxy_delta as mx
import metaxy_delta.dagster as mxd

__metaxy_project__ = "all_features"

STORE_ROOT = os.environ.get(
    "MXD_ALL_FEATURES_STORE_ROOT", os.path.join(tempfile.gettempdir(), "mxd_all_features_store")
)
DAYS = dg.StaticPartitionsDefinition(["2024-01-01", "2024-01-02"])

# --------------------------------------------------------------------------- features


class Raw(mx.BaseFeature, spec=mx.FeatureSpec(key="all/raw", id_columns=["sample_id"])):
    """Raw samples."""

    sample_id: str
    text: str | None = None


class Clean(
    mx.BaseFeature,
    spec=mx.FeatureSpec(key="all/clean", id_columns=["sample_id"], deps=[mx.FeatureDep(feature="all/raw")]),
):
    """Cleaned samples."""

    sample_id: str
    text: str | None = None


class Stats(
    mx.BaseFeature,
    spec=mx.FeatureSpec(key="all/stats", id_columns=["sample_id"], deps=[mx.FeatureDep(feature="all/clean")]),
):
    sample_id: str
    length: int | None = None


class Tokens(
    mx.BaseFeature,
    spec=mx.FeatureSpec(key="all/tokens", id_columns=["sample_id"], deps=[mx.FeatureDep(feature="all/clean")]),
):
    sample_id: str
    n_tokens: int | None = None


class Events(mx.BaseFeature, spec=mx.FeatureSpec(key="all/events", id_columns=["event_id"])):
    """Daily events."""

    event_id: str
    date: str | None = None


class External(mx.BaseFeature, spec=mx.FeatureSpec(key="all/external", id_columns=["sample_id"])):
    """Written by another pipeline."""

    sample_id: str


def _provenance(ids: list[str]) -> list[dict[str, str]]:
    return [{"default": f"h-{i}"} for i in ids]


# --------------------------------------------------------------------------- assets


@mxd.metaxify
@dg.asset(
    metadata={"metaxy/feature": "all/raw"},
    io_manager_key="metaxy_io_manager",
    dagster_type=mxd.feature_to_dagster_type(Raw),
)
def raw() -> mxd.MetaxyOutput:
    ids = ["a", "b", "c"]
    return pl.DataFrame({"sample_id": ids, "text": [f" {i} " for i in ids], "metaxy_provenance_by_field": _provenance(ids)})


@mxd.metaxify()
@dg.asset(
    metadata={"metaxy/feature": "all/clean"},
    io_manager_key="metaxy_io_manager",
    ins={"raw": dg.AssetIn(key=["all", "raw"])},
)
def clean(raw: nw.LazyFrame) -> Any:
    return raw.select("sample_id", nw.col("text").str.strip_chars(), "metaxy_provenance_by_field")


@mxd.metaxify
@dg.multi_asset(
    specs=[
        dg.AssetSpec("tokens", metadata={"metaxy/feature": "all/tokens"}),
        dg.AssetSpec("stats", metadata={"metaxy/feature": "all/stats"}),
    ]
)
def derived(context: dg.AssetExecutionContext, store: dg.ResourceParam[mx.MetadataStore]) -> Any:
    with store.open("w"):
        increment = store.resolve_update(Stats)
        new = increment.new
        ids = (new.collect() if isinstance(new, nw.LazyFrame) else new)["sample_id"].to_list()
        store.write(Stats, pl.DataFrame({"sample_id": ids, "length": [1] * len(ids), "metaxy_provenance_by_field": _provenance(ids)}))
        store.write(Tokens, pl.DataFrame({"sample_id": ids, "n_tokens": [2] * len(ids), "metaxy_provenance_by_field": _provenance(ids)}))
    yield from mxd.generate_materialize_results(context, store)


@mxd.metaxify
@dg.asset(
    partitions_def=DAYS,
    metadata={"metaxy/feature": "all/events", "partition_by": "date"},
    io_manager_key="metaxy_io_manager",
)
def events(context: dg.AssetExecutionContext) -> Any:
    ids = [f"{context.partition_key}-{i}" for i in range(3)]
    return pl.DataFrame({"event_id": ids, "metaxy_provenance_by_field": _provenance(ids)})


external_spec = mxd.metaxify()(dg.AssetSpec("external_spec", metadata={"metaxy/feature": "all/external"}))


@mxd.observable_metaxy_asset(feature="all/external", key=["all", "external_observed"])
def external_observed(context: Any, store: Any, lazy_df: nw.LazyFrame) -> dict[str, Any]:
    return {"custom/columns": len(lazy_df.collect_schema())}


# --------------------------------------------------------------------------- jobs


@dg.job
def delete_job() -> None:
    mxd.delete_metadata()


maintenance_job = mxd.build_maintenance_job("maintenance", retention_hours=168)
observe_jobs = mxd.build_metaxy_observation_job(derived)
observe_events_jobs = mxd.build_metaxy_observation_job(events)
observe_all_job = mxd.build_metaxy_multi_observation_job("observe_all", assets=[raw, clean, derived, external_spec])
observe_days_job = mxd.build_metaxy_multi_observation_job("observe_days", assets=[events])
all_metaxy_job = dg.define_asset_job(
    "all_metaxy", selection=mxd.select_metaxy_assets(project="all_features") - dg.AssetSelection.assets(events)
)
clean_only_job = dg.define_asset_job("clean_only", selection=mxd.select_metaxy_assets(project="all_features", feature="all/clean"))
events_job = dg.define_asset_job("events_job", selection=[events], partitions_def=DAYS)
observe_external_job = dg.define_asset_job("observe_external", selection=[external_observed])

mx.MetaxyConfig.set(
    mx.MetaxyConfig(
        project="all_features",
        stores={"dev": mx.StoreConfig(type="delta", config={"root_path": STORE_ROOT})},
        store="dev",
    )
)
store_resource = mxd.MetaxyStoreResource(root_path=STORE_ROOT, name="dev")

defs = dg.Definitions(
    assets=[raw, clean, derived, events, external_spec, external_observed],
    jobs=[
        delete_job,
        maintenance_job,
        *observe_jobs,
        *observe_events_jobs,
        observe_all_job,
        observe_days_job,
        all_metaxy_job,
        clean_only_job,
        events_job,
        observe_external_job,
    ],
    schedules=[dg.ScheduleDefinition(job=maintenance_job, cron_schedule="0 3 * * 0")],
    resources={
        "store": store_resource,
        "metaxy_store": mxd.MetaxyStoreFromConfigResource(name="dev"),
        "metaxy_io_manager": mxd.MetaxyIOManager(store=store_resource),
    },
)
