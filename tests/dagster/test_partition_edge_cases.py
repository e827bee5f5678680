"""Partition and fallback edge cases of the IO manager and the result generators, found by an
audit against the dagster spec (each test failed before its fix); real Dagster runs."""

import datetime as dt
import re
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import pytest

import metaxy_delta as mx
import metaxy_delta.dagster as mxd

ROW_VERSION = re.compile(r"^\d+\.\d+-\d+-\d+$")  # mean(created_at)-count-max(updated_at)
DAILY = dg.DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-01-05")


def _rows(ids: list[str], **columns: list[Any]) -> pl.DataFrame:
    return pl.DataFrame(
        {"sample_id": ids, **columns, "metaxy_provenance_by_field": [{"default": i} for i in ids]}
    )


@pytest.fixture
def event(graph: mx.FeatureGraph) -> type[mx.BaseFeature]:
    class Ev(mx.BaseFeature, spec=mx.FeatureSpec(key="p/ev", id_columns=["sample_id"])):
        sample_id: str
        date: str

    return Ev


def _daily_asset(**kwargs: Any) -> dg.AssetsDefinition:
    @mxd.metaxify
    @dg.asset(
        partitions_def=DAILY,
        metadata={"metaxy/feature": "p/ev", "partition_by": "date"},
        io_manager_key="metaxy_io_manager",
        **kwargs,
    )
    def ev(context: dg.AssetExecutionContext) -> Any:
        return pl.concat([_rows([f"{d}-a", f"{d}-b"], date=[d, d]) for d in context.partition_keys])

    return ev


def _resources(store: mx.DeltaMetadataStore) -> dict[str, Any]:
    return {"store": store, "metaxy_io_manager": mxd.MetaxyIOManager(store=store)}


def test_an_input_mapped_to_no_upstream_partition_loads_no_rows(
    event: type[mx.BaseFeature], store: mx.DeltaMetadataStore
) -> None:
    """The day before the first one: Metaxy applies no filter (every partition's rows) and
    Dagster's add_input_metadata fails for zero partitions; we load an empty frame."""
    ev = _daily_asset()
    previous = dg.TimeWindowPartitionMapping(
        start_offset=-1, end_offset=-1, allow_nonexistent_upstream_partitions=True
    )
    seen: list[list[str]] = []

    @dg.asset(
        partitions_def=DAILY, ins={"ev": dg.AssetIn(key=["p", "ev"], partition_mapping=previous)}
    )
    def yesterday(ev: Any) -> None:
        seen.append(sorted(ev.collect()["sample_id"].to_list()))

    with dg.instance_for_test() as instance:
        for day in ("2024-01-01", "2024-01-02"):
            dg.materialize([ev], partition_key=day, resources=_resources(store), instance=instance)
        for day in ("2024-01-01", "2024-01-02"):
            result = dg.materialize(
                [ev, yesterday], selection=[yesterday], partition_key=day,
                resources=_resources(store), instance=instance,
            )  # fmt: skip
            assert result.success
    assert seen == [[], ["2024-01-01-a", "2024-01-01-b"]]


def test_rows_with_a_null_partition_value_are_rejected(
    event: type[mx.BaseFeature], store: mx.DeltaMetadataStore
) -> None:
    @mxd.metaxify
    @dg.asset(
        partitions_def=DAILY,
        metadata={"metaxy/feature": "p/ev", "partition_by": "date"},
        io_manager_key="metaxy_io_manager",
    )
    def ev(context: dg.AssetExecutionContext) -> Any:
        return _rows(["a", "b"], date=[context.partition_key, None])

    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [ev], partition_key="2024-01-01", resources=_resources(store), instance=instance,
            raise_on_error=False,
        )  # fmt: skip
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "do not belong to this run's partition" in str(failure.event_specific_data.error)
    with store.open("r"):
        assert not store.has_feature("p/ev")


def test_date_partitions_of_a_feature_only_in_a_fallback_store(
    graph: mx.FeatureGraph, tmp_path: Path
) -> None:
    class Day(mx.BaseFeature, spec=mx.FeatureSpec(key="p/day", id_columns=["sample_id"])):
        sample_id: str
        day: dt.date

    prod = mx.DeltaMetadataStore(tmp_path / "prod", name="prod")
    dev = mx.DeltaMetadataStore(tmp_path / "dev", name="dev", fallback_stores=[prod])
    with prod.open("w"):
        days = [dt.date(2024, 1, 1), dt.date(2024, 1, 2)]
        prod.write(Day, _rows(["a", "b"], day=days), partition_by=["day"])

    @mxd.metaxify
    @dg.asset(
        partitions_def=DAILY,
        metadata={"metaxy/feature": "p/day", "partition_by": "day"},
        io_manager_key="metaxy_io_manager",
    )
    def day(context: dg.AssetExecutionContext) -> Any:  # -> None would skip the IO manager
        return None

    loaded: list[list[str]] = []

    @dg.asset(partitions_def=DAILY, ins={"day": dg.AssetIn(key=["p", "day"])})
    def reader(day: Any) -> None:
        loaded.append(day.collect()["sample_id"].to_list())

    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [day, reader], partition_key="2024-01-02", resources=_resources(dev), instance=instance
        )
    assert result.success and loaded == [["b"]]
    metadata = result.asset_materializations_for_node("day")[0].metadata
    assert metadata["dagster/partition_row_count"].value == 1
    assert metadata["metaxy/delta_version"].value == 0  # read from the (opened) fallback store


def test_results_of_a_subset_run_cover_only_the_selected_assets(
    graph: mx.FeatureGraph, store: mx.DeltaMetadataStore
) -> None:
    for name in ("a", "b"):
        type(name.upper(), (mx.BaseFeature,), {"__annotations__": {"sample_id": str}},
             spec=mx.FeatureSpec(key=f"g/{name}", id_columns=["sample_id"]))  # fmt: skip
    specs = [
        dg.AssetSpec(["g", n], metadata={"metaxy/feature": f"g/{n}"}, skippable=True) for n in "ab"
    ]

    @dg.multi_asset(specs=specs, can_subset=True)
    def both(
        context: dg.AssetExecutionContext, store: dg.ResourceParam[mx.DeltaMetadataStore]
    ) -> Any:
        with store.open("w"):
            for asset_key in context.selected_asset_keys:
                store.write(asset_key.to_user_string(), _rows(["x"]))
        yield from mxd.generate_materialize_results(context, store)

    with store.open("w"):  # both tables exist: only the selection decides
        store.write("g/a", _rows(["x"]))
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [both], selection=[dg.AssetKey(["g", "b"])], resources={"store": store},
            instance=instance,
        )  # fmt: skip
    assert result.success
    keys = [m.asset_key for m in result.get_asset_materialization_events() if m.asset_key]
    assert keys == [dg.AssetKey(["g", "b"])]


def test_a_range_run_gives_no_range_wide_figures_to_each_partition(
    event: type[mx.BaseFeature], store: mx.DeltaMetadataStore
) -> None:
    """A single-run backfill: Dagster copies one event to each partition, so the range's row
    count and data version would be wrong for every partition; they are left out."""
    ev = _daily_asset(backfill_policy=dg.BackfillPolicy.single_run())
    defs = dg.Definitions(
        assets=[ev], jobs=[dg.define_asset_job("j", selection=[ev])], resources=_resources(store)
    )
    tags = {
        "dagster/asset_partition_range_start": "2024-01-01",
        "dagster/asset_partition_range_end": "2024-01-03",
    }
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def("j").execute_in_process(instance=instance, tags=tags)
        events = result.asset_materializations_for_node("ev")
        assert sorted(m.partition for m in events) == ["2024-01-01", "2024-01-02", "2024-01-03"]
        for materialization in events:
            assert "dagster/partition_row_count" not in materialization.metadata
            assert "metaxy/data_version" not in materialization.metadata
            assert materialization.metadata["metaxy/rows_written"].value == 6
            # Dagster's own default version (code + inputs), not one computed from the rows
            assert not ROW_VERSION.match(materialization.tags["dagster/data_version"])
        single = dg.materialize(
            [ev], partition_key="2024-01-04", resources=_resources(store), instance=instance
        )
        only = single.asset_materializations_for_node("ev")[0]
        assert only.metadata["dagster/partition_row_count"].value == 2
        assert ROW_VERSION.match(only.tags["dagster/data_version"])
