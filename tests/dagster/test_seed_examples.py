"""The examples of the user documentation (seed), verbatim except for ``metaxy_delta`` imports."""

from pathlib import Path
from typing import Any

import dagster as dg
import narwhals as nw
import polars as pl
import pytest
from deltalake import DeltaTable

import metaxy_delta as mx
import metaxy_delta.dagster as mxd
from mxd_testing import rows


def test_metaxify_example(graph: mx.FeatureGraph) -> None:
    class MyFeature(mx.BaseFeature, spec=mx.FeatureSpec(key="my/metaxy/feature", id_columns=["id"])):
        """My feature."""

        id: str

    @mxd.metaxify()
    @dg.asset(metadata={"metaxy/feature": "my/metaxy/feature"})
    def my_asset():
        ...

    assert my_asset.key == dg.AssetKey(["my", "metaxy", "feature"])
    spec = my_asset.specs_by_key[my_asset.key]
    assert "metaxy" in spec.kinds
    assert spec.description == "My feature."
    assert spec.code_version == f"metaxy:{MyFeature.spec().code_version}"
    assert spec.metadata["metaxy/feature"] == "my/metaxy/feature"
    assert dg.materialize([my_asset]).success


def test_observable_asset_example(graph: mx.FeatureGraph, tmp_path: Path) -> None:
    class External(mx.BaseFeature, spec=mx.FeatureSpec(key="external/feature", id_columns=["sample_id"])):
        """Populated by another pipeline."""

        sample_id: str

    @mxd.observable_metaxy_asset(key="dagster/asset/key", feature="external/feature")
    def external_data(context, store: dg.ResourceParam[mx.MetadataStore], lazy_df: nw.LazyFrame):
        # build a custom metadata dict
        metadata = {"custom/ids": sorted(lazy_df.collect()["sample_id"].to_list())}
        return metadata

    root = str(tmp_path / "store")
    store = mx.DeltaMetadataStore(root)
    with store.open("w"):  # written outside Dagster
        store.write(External, rows(["a", "b", "c"]))

    defs = dg.Definitions(assets=[external_data], resources={"store": mxd.MetaxyStoreResource(root_path=root)})
    job = defs.get_implicit_global_asset_job_def()
    assert external_data.key == dg.AssetKey(["dagster", "asset", "key"])  # `key` is honoured
    assert external_data.description == "Populated by another pipeline."

    def observe() -> dg.AssetObservation:
        result = job.execute_in_process()
        (event,) = [e for e in result.all_events if e.event_type_value == "ASSET_OBSERVATION"]
        return event.event_specific_data.asset_observation

    first = observe()
    assert first.metadata["dagster/row_count"].value == 3
    assert first.metadata["custom/ids"].value == ["a", "b", "c"]
    assert first.tags["metaxy/feature"] == "external__feature"

    with store.open("w"):  # append
        store.write(External, rows(["d"]))
    second = observe()
    assert second.metadata["dagster/row_count"].value == 4
    assert second.tags["dagster/data_version"] != first.tags["dagster/data_version"]

    with store.open("w"):  # delete one row of the first write (same created_at as its siblings)
        store.delete(External, ["sample_id = 'b'"])
    third = observe()
    assert third.metadata["dagster/row_count"].value == 3
    assert third.tags["dagster/data_version"] not in {
        first.tags["dagster/data_version"],
        second.tags["dagster/data_version"],
    }
    with store.open("w"):  # hard delete too
        store.delete(External, ["sample_id = 'a'"], soft=False)
    fourth = observe()
    assert fourth.metadata["dagster/row_count"].value == 2
    assert fourth.tags["dagster/data_version"] != third.tags["dagster/data_version"]


@pytest.fixture
def customer_segment(graph: mx.FeatureGraph, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``customer/segment`` with 3 rows, in the store ``default`` of ``tmp_path/metaxy.toml``."""

    class CustomerSegment(
        mx.BaseFeature, spec=mx.FeatureSpec(key="customer/segment", id_columns=["customer_id"])
    ):
        customer_id: str
        status: str

    (tmp_path / "metaxy.toml").write_text(
        'project = "customers"\nstore = "default"\n\n'
        '[stores.default]\ntype = "delta"\n\n'
        f'[stores.default.config]\nroot_path = "{tmp_path / "store"}"\n'
    )
    monkeypatch.chdir(tmp_path)
    config = mx.MetaxyConfig.load(tmp_path / "metaxy.toml")
    store = config.get_store("default")
    frame = pl.DataFrame(
        {
            "customer_id": ["c1", "c2", "c3"],
            "status": ["inactive", "active", "inactive"],
            "metaxy_provenance_by_field": [{"default": "x"}] * 3,
        }
    )
    with store.open("w"):
        store.write(CustomerSegment, frame)
    yield store
    mx.MetaxyConfig.reset()


def _statuses(store: Any, **kwargs: Any) -> list[str]:
    with store.open("r"):
        return sorted(store.read("customer/segment", **kwargs).collect()["status"].to_list())


def test_cleanup_job_example(customer_segment: Any, instance: dg.DagsterInstance) -> None:
    store = customer_segment

    # Define a job with the delete op
    @dg.job(resource_defs={"metaxy_store": mxd.MetaxyStoreFromConfigResource(name="default")})
    def cleanup_job():
        mxd.delete_metadata()

    # Execute with config to delete inactive customer segments
    result = cleanup_job.execute_in_process(
        run_config={
            "ops": {
                "delete_metadata": {
                    "config": {
                        "feature_key": ["customer", "segment"],
                        "filters": ["status = 'inactive'"],
                        "soft": True,
                    }
                }
            }
        },
        instance=instance,
    )
    assert result.success
    summary = result.output_for_node("delete_metadata")
    assert summary["rows"] == 2 and summary["delta_version"] == 1 and summary["soft"] is True
    assert _statuses(store) == ["active"]
    assert _statuses(store, include_soft_deleted=True) == ["active", "inactive", "inactive"]
    with store.open("r"):  # tombstones carry the run id
        tombstones = store.read("customer/segment", with_sample_history=True, include_soft_deleted=True)
        ids = tombstones.filter(~nw.col("metaxy_deleted_at").is_null()).collect()
    assert set(ids["metaxy_materialization_id"].to_list()) == {result.run_id}
    messages = [e.user_message for e in instance.all_logs(result.run_id)]
    assert any("2 rows affected" in m and "Delta version 1" in m for m in messages)

    # Hard variant: physically remove the rows
    hard = cleanup_job.execute_in_process(
        run_config={
            "ops": {
                "delete_metadata": {
                    "config": {
                        "feature_key": ["customer", "segment"],
                        "filters": ["status = 'inactive'"],
                        "soft": False,
                    }
                }
            }
        }
    )
    assert hard.success
    assert hard.output_for_node("delete_metadata")["rows"] == 4  # 2 rows + their 2 tombstones
    assert _statuses(store, include_soft_deleted=True) == ["active"]
    table = DeltaTable(store.table_uri("customer/segment"))
    assert table.history(1)[0]["operation"] == "DELETE"


def test_delete_alias_uses_metaxy_op_name(customer_segment: Any) -> None:
    @dg.job(resource_defs={"metaxy_store": mxd.MetaxyStoreFromConfigResource()})
    def metaxy_style():
        mxd.delete()

    config = {"feature_key": ["customer", "segment"], "filters": ["status = 'active'"]}
    assert metaxy_style.execute_in_process(run_config={"ops": {"delete": {"config": config}}}).success
    assert _statuses(customer_segment) == ["inactive", "inactive"]


@pytest.mark.parametrize(
    ("config", "error"),
    [
        ({"feature_key": ["customer", "segment"], "filters": ["status = = 'x'"]}, "FilterParseError"),
        ({"feature_key": ["customer", "segment"], "filters": ["lower(status) = 'x'"]}, "FilterParseError"),
        ({"feature_key": ["customer", "unknown"], "filters": ["status = 'x'"]}, "not registered"),
        ({"feature_key": ["customer", "segment"], "filters": []}, "allow_all"),
    ],
)
def test_delete_fails_before_writing(customer_segment: Any, config: dict[str, Any], error: str) -> None:
    @dg.job(resource_defs={"metaxy_store": mxd.MetaxyStoreFromConfigResource(name="default")})
    def cleanup_job():
        mxd.delete_metadata()

    before = DeltaTable(customer_segment.table_uri("customer/segment")).version()
    result = cleanup_job.execute_in_process(
        run_config={"ops": {"delete_metadata": {"config": config}}}, raise_on_error=False
    )
    assert not result.success
    (failure,) = result.get_step_failure_events()
    assert error in str(failure.event_specific_data.error)
    assert DeltaTable(customer_segment.table_uri("customer/segment")).version() == before


def test_delete_unknown_table_fails(graph: mx.FeatureGraph, tmp_path: Path) -> None:
    class Nothing(mx.BaseFeature, spec=mx.FeatureSpec(key="never/written", id_columns=["id"])):
        id: str

    store = mx.DeltaMetadataStore(tmp_path / "store")
    context = dg.build_op_context(
        resources={"metaxy_store": store},
        op_config={"feature_key": ["never", "written"], "filters": ["id = 'x'"]},
    )
    with pytest.raises(mx.FeatureNotFoundError):
        mxd.delete_metadata(context)


def test_delete_allow_all_and_slash_key(customer_segment: Any) -> None:
    context = dg.build_op_context(
        resources={"metaxy_store": customer_segment},
        op_config={"feature_key": ["customer/segment"], "filters": [], "allow_all": True},
    )
    output = mxd.delete_metadata(context)
    assert output.value["rows"] == 3
    assert _statuses(customer_segment) == []
