"""Root → downstream → non-Metaxy chain through ``MetaxyIOManager`` (local and moto S3)."""


from typing import Any

import dagster as dg
import narwhals as nw
import polars as pl
import pytest
from deltalake import DeltaTable

import metaxy_delta as mx
import metaxy_delta.dagster as mxd

from mxd_testing import materializations, metadata_values, rows

SEEN: dict[str, Any] = {}


def build_assets(features: dict[str, type[mx.BaseFeature]]) -> list[Any]:
    down_feature = features["down"]

    @mxd.metaxify
    @dg.asset(
        metadata={"metaxy/feature": "test/root"},
        io_manager_key="metaxy_io_manager",
        code_version="v1",
        kinds={"python"},
        tags={"team": "ml"},
    )
    def root_asset(context: dg.AssetExecutionContext) -> pl.DataFrame:
        ids = ["a", "b", "c", *SEEN.get("extra_ids", [])]
        return rows(ids, path=[f"/{i}" for i in ids], old_name=[i.upper() for i in ids])

    @mxd.metaxify()
    @dg.asset(
        metadata={"metaxy/feature": "test/down"},
        io_manager_key="metaxy_io_manager",
        ins={"root": dg.AssetIn(key=["test", "root"])},
    )
    def down_asset(
        context: dg.AssetExecutionContext, root: nw.LazyFrame, store: dg.ResourceParam[mx.MetadataStore]
    ) -> Any:
        SEEN["root_rows"] = root.select(nw.len()).collect().item()
        SEEN["root_type"] = type(root)
        SEEN["materialization_id"] = store.materialization_id
        SEEN["run_id"] = context.run.run_id
        with store.open("r"):
            increment = store.resolve_update(down_feature)
        return increment.new.with_columns(result=nw.lit(1.5))

    @dg.asset(ins={"down": dg.AssetIn(key=["test", "down"])})
    def report(down: nw.LazyFrame) -> int:
        return int(down.select(nw.len()).collect().item())

    return [root_asset, down_asset, report]


@pytest.fixture
def resources(
    request: pytest.FixtureRequest, root_and_options: tuple[str, dict[str, str] | None], graph: Any
) -> dict[str, Any]:
    root, options = root_and_options
    if options is None:  # local: the store comes from the Metaxy config, as in the docs
        config = mx.MetaxyConfig(
            project="test", stores={"dev": mx.StoreConfig(type="delta", config={"root_path": root})}
        )
        stack = config.use()
        stack.__enter__()
        request.addfinalizer(lambda: stack.__exit__(None, None, None))
        store: Any = mxd.MetaxyStoreFromConfigResource(name="dev")
    else:
        store = mxd.MetaxyStoreResource(root_path=root, storage_options=options, name="s3")
    return {"store": store, "metaxy_io_manager": mxd.MetaxyIOManager(store=store), "_root": root, "_options": options}


def test_chain_materializes_with_metadata(features: Any, resources: dict[str, Any]) -> None:
    SEEN.clear()
    root_path, options = resources.pop("_root"), resources.pop("_options")
    root_asset, down_asset, report = build_assets(features)
    graph = mx.current_graph()

    # --- definition-time injection
    assert root_asset.key == dg.AssetKey(["test", "root"])
    assert down_asset.key == dg.AssetKey(["test", "down"])
    down_spec = down_asset.specs_by_key[down_asset.key]
    root_spec = root_asset.specs_by_key[root_asset.key]
    assert {d.asset_key for d in down_spec.deps} == {dg.AssetKey(["test", "root"])}
    code_version = graph.get_feature_definition("test/root").spec.code_version
    assert root_spec.code_version == f"v1,metaxy:{code_version}"
    assert root_spec.kinds == {"python", "metaxy"}
    assert root_spec.tags["metaxy/feature"] == "test__root"
    assert root_spec.tags["metaxy/project"] == graph.get_feature_definition("test/root").project
    assert root_spec.tags["team"] == "ml"
    assert root_spec.description == "Root samples.\n\nWritten by the first asset."
    schema = root_spec.metadata["dagster/column_schema"]
    by_name = {c.name: c for c in schema.columns}
    assert [c.name for c in schema.columns] == sorted(by_name)
    assert by_name["sample_id"].description == "Sample identifier"
    assert by_name["metaxy_created_at"].type == "datetime (UTC)"
    assert by_name["metaxy_provenance_by_field"].type == "dict[str, str]"
    assert "dagster/column_lineage" not in root_spec.metadata
    lineage = down_spec.metadata["dagster/column_lineage"].deps_by_column
    up = dg.AssetKey(["test", "root"])
    assert lineage["new_name"] == [dg.TableColumnDep(asset_key=up, column_name="old_name")]
    assert lineage["path"] == [dg.TableColumnDep(asset_key=up, column_name="path")]
    assert lineage["sample_id"] == [dg.TableColumnDep(asset_key=up, column_name="sample_id")]
    assert "result" not in lineage
    info = down_spec.metadata["metaxy/info"]
    assert info["feature"]["key"] == "test/down"
    assert info["feature"]["version"] == graph.get_feature_version("test/down")

    # --- execution
    result = dg.materialize([root_asset, down_asset, report], resources=resources)
    assert result.success
    assert SEEN["root_rows"] == 3
    assert issubclass(SEEN["root_type"], nw.LazyFrame)
    assert SEEN["materialization_id"] == SEEN["run_id"]
    assert result.output_for_node("report") == 3

    store = mx.DeltaMetadataStore(root_path, storage_options=options)
    for key, version in (("test/root", 0), ("test/down", 0)):
        (event,) = materializations(result, key.split("/"))
        md = metadata_values(event)
        assert md["dagster/row_count"] == 3
        assert md["metaxy/rows_written"] == 3
        assert md["metaxy/materialized_in_run"] == 3
        assert md["metaxy/delta_version"] == version
        assert md["dagster/uri"] == store.table_uri(key)
        assert md["metaxy/feature"] == key
        assert md["metaxy/feature_version"] == graph.get_feature_version(key)
        assert event.tags["dagster/data_version"] == md["metaxy/data_version"]
        assert event.tags["dagster/data_version"] != "empty"
        assert md["metaxy/store"]["resolved_from"]["uri"] == store.table_uri(key)
        assert len(md["dagster/table"].records) == 3

    loaded = [e for e in result.all_events if e.event_type_value == "LOADED_INPUT"]
    root_input = next(e for e in loaded if e.step_key == "down_asset")
    input_md = {k: getattr(v, "value", v) for k, v in root_input.event_specific_data.metadata.items()}
    assert input_md["metaxy/delta_version"] == 0
    assert input_md["dagster/uri"] == store.table_uri("test/root")

    with store.open("r"):
        down_rows = store.read("test/down").collect().to_native()
    assert sorted(down_rows["sample_id"].to_list()) == ["a", "b", "c"]
    assert set(down_rows["metaxy_materialization_id"].to_list()) == {result.run_id}
    table = DeltaTable(store.table_uri("test/down"), storage_options=store._table("test/down").storage_options)
    assert table.version() == 0

    # --- a new sample changes the data version; the Delta version increases
    SEEN["extra_ids"] = ["d"]
    again = dg.materialize([root_asset], resources=resources)
    (event2,) = materializations(again, ["test", "root"])
    md2 = metadata_values(event2)
    assert md2["metaxy/delta_version"] == 1
    assert md2["metaxy/rows_written"] == 4
    assert md2["dagster/row_count"] == 4
    assert event2.tags["dagster/data_version"] != materializations(result, ["test", "root"])[0].tags[
        "dagster/data_version"
    ]


def test_none_output_logs_metadata_of_rows_written_in_the_asset(
    features: Any, metaxy_config: Any, instance: dg.DagsterInstance
) -> None:
    store_resource = mxd.MetaxyStoreFromConfigResource(name="dev")

    @mxd.metaxify
    @dg.asset(metadata={"metaxy/feature": "test/root"}, io_manager_key="metaxy_io_manager")
    def root_asset(store: dg.ResourceParam[mx.MetadataStore]) -> Any:
        with store.open("w"):
            store.write("test/root", rows(["x", "y"]))

    result = dg.materialize(
        [root_asset],
        resources={"store": store_resource, "metaxy_io_manager": mxd.MetaxyIOManager(store=store_resource)},
        instance=instance,
    )
    (event,) = materializations(result, ["test", "root"])
    md = metadata_values(event)
    assert md["dagster/row_count"] == 2
    assert md["metaxy/materialized_in_run"] == 2
    assert "metaxy/rows_written" not in md
    assert event.tags["dagster/data_version"] == md["metaxy/data_version"]


def test_none_output_without_table_succeeds(features: Any, metaxy_config: Any) -> None:
    @mxd.metaxify
    @dg.asset(metadata={"metaxy/feature": "test/root"}, io_manager_key="metaxy_io_manager")
    def root_asset():
        return None

    result = dg.materialize([root_asset], resources={"metaxy_io_manager": mxd.MetaxyIOManager()})
    (event,) = materializations(result, ["test", "root"])
    assert metadata_values(event)["dagster/row_count"] == 0


def test_io_manager_defaults_to_configured_store(metaxy_config: Any) -> None:
    manager = mxd.MetaxyIOManager()
    assert isinstance(manager.store, mxd.MetaxyStoreFromConfigResource)


def test_missing_feature_metadata_is_a_clear_error(features: Any, metaxy_config: Any) -> None:
    @dg.asset(io_manager_key="metaxy_io_manager")
    def plain() -> pl.DataFrame:
        return rows(["a"])

    with pytest.raises(ValueError, match="has no 'metaxy/feature' metadata"):
        dg.materialize([plain], resources={"metaxy_io_manager": mxd.MetaxyIOManager()})


def test_fallback_store_is_reported_on_load(features: Any, tmp_path: Any) -> None:
    primary, fallback = str(tmp_path / "primary"), str(tmp_path / "fallback")
    config = mx.MetaxyConfig(
        project="test",
        stores={
            "dev": mx.StoreConfig(type="delta", config={"root_path": primary, "fallback_stores": ["prod"]}),
            "prod": mx.StoreConfig(type="delta", config={"root_path": fallback}),
        },
    )
    with config.use():
        prod = config.get_store("prod")
        with prod.open("w"):
            prod.write("test/root", rows(["a", "b"]))
        external = mxd.metaxify()(dg.AssetSpec("root", metadata={"metaxy/feature": "test/root"}))

        @dg.asset(ins={"root": dg.AssetIn(key=external.key)})
        def consumer(root: nw.LazyFrame) -> int:
            return int(root.select(nw.len()).collect().item())

        store = mxd.MetaxyStoreFromConfigResource(name="dev")
        result = dg.materialize(
            [external.with_io_manager_key("metaxy_io_manager"), consumer],
            resources={"metaxy_io_manager": mxd.MetaxyIOManager(store=store)},
            selection=[consumer],
        )
    assert result.output_for_node("consumer") == 2
    (loaded,) = [e for e in result.all_events if e.event_type_value == "LOADED_INPUT"]
    md = {k: getattr(v, "value", v) for k, v in loaded.event_specific_data.metadata.items()}
    assert "fallback" in md["metaxy/store"] and "primary" not in md["metaxy/store"]
    assert md["dagster/uri"].startswith(fallback)
