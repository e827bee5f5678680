"""Observation jobs, ``select_metaxy_assets``, ``feature_to_dagster_type`` and ``MetaxyOutput``.

Covers Metaxy bugs §9.2 #1 (multi-part feature selection), #4 (asset keys with ``-`` in the
multi-observation job), #5 (an ``AssetSpec``'s ``partitions_def`` kept) and #6 (observation
jobs record a data version).
"""

from pathlib import Path
from typing import Any

import dagster as dg
import narwhals as nw
import polars as pl
import pytest

import metaxy_delta as mx
import metaxy_delta.dagster as mxd
from mxd_testing import materializations, metadata_values, rows

DAYS = dg.StaticPartitionsDefinition(["2024-01-01", "2024-01-02"])


def _observations(result: Any) -> dict[dg.AssetKey, Any]:
    events = [e.event_specific_data.asset_observation for e in result.all_events if e.event_type_value == "ASSET_OBSERVATION"]
    return {e.asset_key: e for e in events}


@pytest.fixture
def filled(features: Any, store: mx.DeltaMetadataStore) -> mx.DeltaMetadataStore:
    """``test/root``: 3 rows on 2024-01-01, 2 on 2024-01-02; ``test/down``: 2 rows."""
    with store.open("w"):
        store.write("test/root", rows(["a", "b", "c"], path=["2024-01-01"] * 3))
        store.write("test/root", rows(["d", "e"], path=["2024-01-02"] * 2))
        store.write("test/down", rows(["a", "b"]))
    return store


def _resources(store_root: str) -> dict[str, Any]:
    return {"store": mxd.MetaxyStoreResource(root_path=store_root)}


def _bind(job: dg.JobDefinition, store_root: str) -> dg.JobDefinition:
    """``job`` with the store resource, resolved the way a code location does it."""
    return dg.Definitions(jobs=[job], resources=_resources(store_root)).resolve_job_def(job.name)


def test_single_observation_job_keeps_spec_partitions(filled: Any, store_root: str) -> None:
    """Metaxy bug §9.2 #5: the job of a partitioned ``AssetSpec`` lost its ``partitions_def``."""
    spec = mxd.metaxify()(
        dg.AssetSpec("root", partitions_def=DAYS, metadata={"metaxy/feature": "test/root", "partition_by": "path"})
    )
    (job,) = mxd.build_metaxy_observation_job(spec, tags={"team": "ml"})
    assert job.name == "observe_test__root"
    assert job.partitions_def == DAYS
    assert job.tags["team"] == "ml"
    job = _bind(job, store_root)
    seen = {}
    for day, partition_rows in (("2024-01-01", 3), ("2024-01-02", 2)):
        result = job.execute_in_process(partition_key=day)
        obs = _observations(result)[dg.AssetKey(["test", "root"])]
        assert obs.partition == day
        assert obs.metadata["dagster/partition_row_count"].value == partition_rows
        assert obs.metadata["dagster/row_count"].value == 5
        assert obs.metadata["metaxy/partition_filter"].value == f"path = '{day}'"
        seen[day] = obs.tags["dagster/data_version"]
        assert seen[day] == obs.metadata["metaxy/data_version"].value
    assert seen["2024-01-01"] != seen["2024-01-02"]


def test_single_observation_jobs_of_multi_asset(features: Any) -> None:
    @mxd.metaxify
    @dg.multi_asset(
        specs=[
            dg.AssetSpec("r", metadata={"metaxy/feature": "test/root"}),
            dg.AssetSpec("d", metadata={"metaxy/feature": "test/down"}),
            dg.AssetSpec("plain"),
        ]
    )
    def both():  # noqa: ANN202 - multi-asset outputs
        ...

    jobs = mxd.build_metaxy_observation_job(both)
    assert [j.name for j in jobs] == ["observe_test__root", "observe_test__down"]
    # the jobs load in a code location: Metaxy named the op like the job (asset key = feature
    # key), which Dagster rejects as conflicting definitions
    multi = mxd.build_metaxy_multi_observation_job("observe_both", assets=[both])
    resources = {"store": mxd.MetaxyStoreResource(root_path="unused")}
    resolved = dg.Definitions(assets=[both], jobs=[*jobs, multi], resources=resources).resolve_all_job_defs()
    assert {"observe_test__root", "observe_test__down", "observe_both"} <= {j.name for j in resolved}
    with pytest.raises(ValueError, match="no specs with 'metaxy/feature' metadata"):
        mxd.build_metaxy_observation_job(dg.AssetSpec("plain"))
    with pytest.raises(TypeError, match="Expected AssetSpec or AssetsDefinition"):
        mxd.build_metaxy_observation_job("test/root")  # type: ignore[arg-type]


@pytest.mark.slow
def test_multi_observation_job_with_dash_key_tracks_appends_and_deletes(
    filled: Any, store_root: str, instance: dg.DagsterInstance
) -> None:
    """Metaxy bug §9.2 #4: a ``-`` in an asset key broke the fan-out's mapping keys."""
    up_x = dg.AssetSpec(["test", "up-x"], metadata={"metaxy/feature": "test/root"})
    down = mxd.metaxify()(dg.AssetSpec("down", metadata={"metaxy/feature": "test/down"}))
    job = mxd.build_metaxy_multi_observation_job(
        "observe_all", assets=[up_x, down], resource_defs=_resources(store_root)
    )
    assert job.metadata["metaxy/features"].value == ["test/root", "test/down"]

    def observe(**kwargs: Any) -> dict[dg.AssetKey, Any]:
        result = job.execute_in_process(instance=instance, **kwargs)
        assert result.success
        return _observations(result)

    up_key, down_key = dg.AssetKey(["test", "up-x"]), dg.AssetKey(["test", "down"])
    first = observe()
    assert set(first) == {up_key, down_key}
    assert first[up_key].metadata["dagster/row_count"].value == 5
    assert first[down_key].metadata["dagster/row_count"].value == 2
    mapping_keys = {
        e.step_key for e in instance.all_logs(job.execute_in_process(instance=instance).run_id) if e.step_key
    }
    assert "observe_all_observe[test__up_x]" in mapping_keys

    with filled.open("w"):  # append
        filled.write("test/root", rows(["f"], path=["2024-01-02"]))
    second = observe()
    assert second[up_key].metadata["dagster/row_count"].value == 6
    assert second[up_key].tags["dagster/data_version"] != first[up_key].tags["dagster/data_version"]
    assert second[down_key].tags["dagster/data_version"] == first[down_key].tags["dagster/data_version"]

    with filled.open("w"):  # soft delete of one row of the first write
        filled.delete("test/root", ["sample_id = 'b'"])
    third = observe()
    assert third[up_key].metadata["dagster/row_count"].value == 5
    assert third[up_key].tags["dagster/data_version"] not in {
        first[up_key].tags["dagster/data_version"],
        second[up_key].tags["dagster/data_version"],
    }

    # a subset of the assets, by user string (with the dash)
    only = observe(run_config={"ops": {"observe_all_fanout": {"config": {"asset_keys": ["test/up-x"]}}}})
    assert set(only) == {up_key}
    bad = job.execute_in_process(
        instance=instance,
        run_config={"ops": {"observe_all_fanout": {"config": {"asset_keys": ["test/nope"]}}}},
        raise_on_error=False,
    )
    assert not bad.success


def test_multi_observation_job_from_selection_keeps_partitions(filled: Any, store_root: str) -> None:
    @mxd.metaxify
    @dg.asset(partitions_def=DAYS, metadata={"metaxy/feature": "test/root", "partition_by": "path"})
    def root_asset() -> None: ...

    @mxd.metaxify
    @dg.asset(partitions_def=DAYS, metadata={"metaxy/feature": "test/down"})
    def down_asset() -> None: ...

    @dg.asset
    def unrelated() -> None: ...

    defs = dg.Definitions(assets=[root_asset, down_asset, unrelated])
    job = mxd.build_metaxy_multi_observation_job(
        "observe_days", asset_selection=dg.AssetSelection.all(), defs=defs, resource_defs=_resources(store_root)
    )
    assert job.partitions_def == DAYS
    result = job.execute_in_process(partition_key="2024-01-02")
    obs = _observations(result)
    assert set(obs) == {root_asset.key, down_asset.key}
    root_obs = obs[root_asset.key]
    assert root_obs.partition == "2024-01-02"
    assert root_obs.metadata["dagster/partition_row_count"].value == 2
    assert root_obs.metadata["dagster/row_count"].value == 5
    assert root_obs.tags["dagster/data_version"] != "empty"
    with pytest.raises(ValueError, match="same partitions_def"):
        mxd.build_metaxy_multi_observation_job(
            "mixed", assets=[root_asset, dg.AssetSpec("x", metadata={"metaxy/feature": "test/down"})]
        )


def test_missing_feature_gives_empty_observation(features: Any, store_root: str) -> None:
    spec = dg.AssetSpec("root", metadata={"metaxy/feature": "test/root"})
    (single,) = mxd.build_metaxy_observation_job(spec)
    multi = mxd.build_metaxy_multi_observation_job("observe_missing", assets=[spec])
    for job in (single, multi):
        result = _bind(job, store_root).execute_in_process()
        (obs,) = _observations(result).values()
        assert obs.metadata["dagster/row_count"].value == 0
        assert obs.metadata["error"].value == "Feature not found"


def test_select_metaxy_assets_by_multi_part_feature(features: Any, graph: mx.FeatureGraph) -> None:
    """Metaxy bug §9.2 #1: ``feature="a/b"`` matched nothing (slash string vs table-name tag)."""
    project = graph.get_feature_definition("test/down").project

    @mxd.metaxify
    @dg.asset(metadata={"metaxy/feature": "test/root"})
    def root_asset() -> None: ...

    @mxd.metaxify
    @dg.asset(metadata={"metaxy/feature": "test/down"})
    def down_asset() -> None: ...

    @dg.asset
    def plain() -> None: ...

    assets = [root_asset, down_asset, plain]
    graph_ = dg.Definitions(assets=assets).resolve_asset_graph()
    for feature in ("test/down", ["test", "down"], mx.FeatureKey(["test", "down"]), features["down"]):
        selected = mxd.select_metaxy_assets(project=project, feature=feature).resolve(graph_)
        assert selected == {down_asset.key}, feature
    everything = mxd.select_metaxy_assets(project=project).resolve(graph_)
    assert everything == {root_asset.key, down_asset.key}
    assert mxd.select_metaxy_assets(project="other").resolve(graph_) == set()

    # usable as an asset job selection
    job = dg.define_asset_job("down_only", selection=mxd.select_metaxy_assets(project=project, feature="test/down"))
    resolved = dg.Definitions(assets=assets, jobs=[job]).resolve_job_def("down_only")
    assert resolved.asset_layer.selected_asset_keys == {down_asset.key}


def test_select_metaxy_assets_uses_configured_project(features: Any, metaxy_config: Any) -> None:
    project = mx.current_graph().get_feature_definition("test/root").project
    with mx.MetaxyConfig(project=project).use():

        @mxd.metaxify
        @dg.asset(metadata={"metaxy/feature": "test/root"})
        def root_asset() -> None: ...

        graph_ = dg.Definitions(assets=[root_asset]).resolve_asset_graph()
        assert mxd.select_metaxy_assets(feature="test/root").resolve(graph_) == {root_asset.key}


def test_feature_to_dagster_type_and_metaxy_output(features: Any, metaxy_config: Any, tmp_path: Path) -> None:
    root_type = mxd.feature_to_dagster_type("test/root")
    down_type = mxd.feature_to_dagster_type(features["down"], metadata={"owner": "ml"})
    assert root_type.display_name == "test__root"
    assert root_type.description == "Root samples.\n\nWritten by the first asset."
    assert down_type.description == "Metaxy feature 'test/down'."
    assert "dagster/column_schema" in root_type.metadata
    assert "dagster/column_lineage" not in root_type.metadata  # a root feature
    assert "dagster/column_lineage" in down_type.metadata
    assert down_type.metadata["owner"].value == "ml"

    @mxd.metaxify
    @dg.asset(metadata={"metaxy/feature": "test/root"}, io_manager_key="metaxy_io_manager", dagster_type=root_type)
    def root_asset() -> mxd.MetaxyOutput:
        return rows(["a", "b"])

    @mxd.metaxify
    @dg.asset(
        metadata={"metaxy/feature": "test/down"},
        io_manager_key="metaxy_io_manager",
        ins={"root": dg.AssetIn(key=["test", "root"])},
        dagster_type=down_type,
    )
    def down_asset(root: nw.LazyFrame) -> mxd.MetaxyOutput:
        return root.select("sample_id", "metaxy_provenance_by_field")  # a narwhals LazyFrame

    store = mxd.MetaxyStoreFromConfigResource(name="dev")
    resources = {"store": store, "metaxy_io_manager": mxd.MetaxyIOManager(store=store)}
    result = dg.materialize([root_asset, down_asset], resources=resources)
    assert result.success
    checks = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
    assert all(e.event_specific_data.type_check_data.success for e in checks)
    assert metadata_values(materializations(result, ["test", "down"])[0])["dagster/row_count"] == 2

    # a non-frame output fails the type check before anything is written
    @mxd.metaxify
    @dg.asset(metadata={"metaxy/feature": "test/root"}, io_manager_key="metaxy_io_manager", dagster_type=root_type)
    def broken() -> Any:
        return "not a frame"

    failed = dg.materialize([broken], resources=resources, raise_on_error=False)
    assert not failed.success
    (failure,) = [e for e in failed.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "Expected a narwhals-compatible dataframe or None for Metaxy feature 'test/root'" in str(
        failure.event_specific_data.error
    )
    with mx.DeltaMetadataStore(str(tmp_path / "store")).open("r") as opened:
        assert opened.read("test/root").collect().shape[0] == 2

    # None (the asset wrote through the store) passes the type check too
    @mxd.metaxify
    @dg.asset(metadata={"metaxy/feature": "test/root"}, io_manager_key="metaxy_io_manager", dagster_type=root_type)
    def wrote_itself(store: dg.ResourceParam[mx.MetadataStore]) -> mxd.MetaxyOutput:
        with store.open("w"):
            store.write("test/root", pl.DataFrame(rows(["z"])))
        return None

    assert dg.materialize([wrote_itself], resources=resources).success
