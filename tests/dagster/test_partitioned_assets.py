"""Daily partitions: parallel backfill into one Delta table, partition-pruned loads."""

import importlib
import os
import re
import sys
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import dagster as dg
import narwhals as nw
import polars as pl
import pyarrow as pa
import pytest
from deltalake import DeltaTable

import metaxy_delta as mx
import metaxy_delta.dagster as mxd
from mxd_testing import materializations, metadata_values, rows

HERE = Path(__file__).parent
DAYS = ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"]


@pytest.fixture(scope="module")
def partitioned() -> Any:
    """``partitioned_defs`` imported into a private graph (the global graph stays untouched)."""
    graph = mx.FeatureGraph()
    with graph.use():
        sys.modules.pop("partitioned_defs", None)
        module = importlib.import_module("partitioned_defs")
    return module, graph


@pytest.mark.slow
def test_parallel_backfill_and_pruned_load(
    partitioned: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module, graph = partitioned
    root = str(tmp_path / "store")
    monkeypatch.setenv("MXD_TEST_STORE_ROOT", root)
    # step subprocesses import partitioned_defs by module name
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))
    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        # one process per partition run, all at once (a backfill's runs), each run's step in
        # a subprocess of its own (multiprocess executor): 4 concurrent writers of one table
        ref = instance.get_ref()
        with ProcessPoolExecutor(len(DAYS), mp_context=multiprocessing.get_context("spawn")) as pool:
            assert all(pool.map(module.run_partition, [ref] * len(DAYS), DAYS))

        runs = instance.get_runs()
        assert {r.tags["dagster/partition"] for r in runs} == set(DAYS)
        step_pids = {
            e.dagster_event.pid
            for r in runs
            for e in instance.all_logs(r.run_id)
            if e.dagster_event and e.dagster_event.event_type_value == "STEP_START"
        }
        assert os.getpid() not in step_pids  # steps ran in subprocesses
        assert len(step_pids) == len(DAYS)

        # one table, one Delta partition per day, every row present
        store = mx.DeltaMetadataStore(root)
        table = DeltaTable(store.table_uri("part/events"))
        assert table.metadata().partition_columns == ["date"]
        assert sorted(p["date"] for p in table.partitions()) == DAYS
        assert table.version() == len(DAYS) - 1
        with graph.use(), store.open("r"):
            stored = store.read("part/events").collect().to_native()
        assert stored.height == len(DAYS) * module.ROWS_PER_PARTITION
        assert stored.group_by("date").len().sort("date")["len"].to_list() == [5, 5, 5, 5]
        assert all(row["event_id"].startswith(row["date"]) for row in stored.iter_rows(named=True))
        assert len(table.file_uris(file_pruning_predicate="date = '2024-01-02'")) == 1

        # each partition's materialization counts its own rows and the whole table
        for run_ in runs:
            records = instance.fetch_materializations(dg.AssetKey(["part", "events"]), limit=10).records
            mine = [r for r in records if r.run_id == run_.run_id]
            assert len(mine) == 1
            md = metadata_values(mine[0].asset_materialization)
            assert md["dagster/partition_row_count"] == 5
            assert md["metaxy/rows_written"] == 5
            assert md["metaxy/partition_filter"] == f"date = '{run_.tags['dagster/partition']}'"

        # load one partition downstream (in process): only that partition's file is scanned
        with graph.use():
            result = dg.materialize(
                [module.events, module.summary],
                selection=[module.summary],
                partition_key="2024-01-02",
                resources=module.defs.resources,
                instance=instance,
            )
        assert result.success
    plan = module.PLANS["2024-01-02"]
    scanned = set(re.findall(r"date=(\d{4}-\d{2}-\d{2})", plan))
    assert scanned == {"2024-01-02"}, plan
    (event,) = materializations(result, ["part", "summary"])
    md = metadata_values(event)
    assert md["dagster/partition_row_count"] == 5 and md["dagster/row_count"] == 5
    summary_table = DeltaTable(store.table_uri("part/summary"))
    assert [p["date"] for p in summary_table.partitions()] == ["2024-01-02"]


def test_partition_filter_helpers(graph: mx.FeatureGraph) -> None:
    spec = dg.AssetSpec("a", metadata={"partition_by": "date"})
    context = dg.build_asset_context(partition_key="2024-01-02")
    frame = nw.from_native(pl.DataFrame({"date": ["2024-01-01", "2024-01-02"], "x": [1, 2]}))
    assert frame.filter(*mxd.get_partition_filter(context, spec))["x"].to_list() == [2]
    assert mxd.get_partition_filter(dg.build_asset_context(), spec) == []
    assert mxd.get_partition_filter(context, dg.AssetSpec("b")) == []
    assert frame.filter(*mxd.build_partition_filter("date", "2024-01-01"))["x"].to_list() == [1]
    assert mxd.build_partition_filter("date", None) == []
    sliced = mxd.build_metaxy_partition_filter({"x": [1, 2], "date": "2024-01-02"})
    assert frame.filter(*sliced)["x"].to_list() == [2]


def _events_feature() -> None:
    class Events(mx.BaseFeature, spec=mx.FeatureSpec(key="p/events", id_columns=["sample_id"])):
        sample_id: str

    del Events


def test_date_typed_partition_column_and_mismatch(graph: mx.FeatureGraph, tmp_path: Path) -> None:
    """A ``Date`` partition column matches daily keys; rows of other partitions are rejected."""
    _events_feature()
    root = str(tmp_path / "store")
    store = mxd.MetaxyStoreResource(root_path=root)
    daily = dg.DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-01-03")
    payload: dict[str, Any] = {}

    @mxd.metaxify
    @dg.asset(
        partitions_def=daily,
        metadata={"metaxy/feature": "p/events", "partition_by": "day"},
        io_manager_key="metaxy_io_manager",
    )
    def events(context: dg.AssetExecutionContext) -> Any:
        return payload["frame"]

    @dg.asset(partitions_def=daily, ins={"events": dg.AssetIn(key=["p", "events"])})
    def consumer(events: nw.LazyFrame) -> list[str]:
        return sorted(events.collect()["sample_id"].to_list())

    resources = {"metaxy_io_manager": mxd.MetaxyIOManager(store=store)}
    import datetime as dt

    for day in ("2024-01-01", "2024-01-02"):
        date = dt.date.fromisoformat(day)
        payload["frame"] = rows([f"{day}-a", f"{day}-b"], day=[date, date])
        assert dg.materialize([events], partition_key=day, resources=resources).success
    table = DeltaTable(mx.DeltaMetadataStore(root).table_uri("p/events"))
    assert pa.schema(table.schema().to_arrow()).field("day").type == pa.date32()
    result = dg.materialize([events, consumer], selection=[consumer], partition_key="2024-01-02", resources=resources)
    assert result.output_for_node("consumer") == ["2024-01-02-a", "2024-01-02-b"]

    payload["frame"] = rows(["bad"], day=[dt.date(2024, 1, 1)])
    with pytest.raises(mxd.PartitionMismatchError, match="do not belong"):
        dg.materialize([events], partition_key="2024-01-02", resources=resources)


def test_static_and_multi_partitions(graph: mx.FeatureGraph, tmp_path: Path) -> None:
    _events_feature()
    store = mxd.MetaxyStoreResource(root_path=str(tmp_path / "store"))
    multi = dg.MultiPartitionsDefinition(
        {"date": dg.DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-01-03"),
         "region": dg.StaticPartitionsDefinition(["eu", "us"])}
    )

    @mxd.metaxify
    @dg.asset(
        partitions_def=multi,
        metadata={"metaxy/feature": "p/events", "partition_by": {"date": "day", "region": "region"}},
        io_manager_key="metaxy_io_manager",
    )
    def events(context: dg.AssetExecutionContext) -> Any:
        key = context.partition_key.keys_by_dimension
        return rows([f"{key['date']}-{key['region']}"])

    resources = {"metaxy_io_manager": mxd.MetaxyIOManager(store=store)}
    for date in ("2024-01-01", "2024-01-02"):
        for region in ("eu", "us"):
            key = dg.MultiPartitionKey({"date": date, "region": region})
            result = dg.materialize([events], partition_key=key, resources=resources)
            (event,) = materializations(result, ["p", "events"])
            assert metadata_values(event)["dagster/partition_row_count"] == 1
    table = DeltaTable(mx.DeltaMetadataStore(tmp_path / "store").table_uri("p/events"))
    assert table.metadata().partition_columns == ["day", "region"]
    assert len(table.partitions()) == 4
    assert metadata_values(event)["dagster/row_count"] == 4
