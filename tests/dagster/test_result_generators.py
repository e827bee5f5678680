"""``generate_materialize_results`` / ``generate_observe_results`` in multi-assets (real runs).

A ``@dg.multi_asset`` writes several features through the store itself and yields one
``MaterializeResult`` per Metaxy spec, upstream first, whatever order the specs are listed in.
"""

from pathlib import Path
from typing import Any

import dagster as dg
import pytest

import metaxy_delta as mx
import metaxy_delta.dagster as mxd
from mxd_testing import materializations, metadata_values, rows


@pytest.fixture
def chain(graph: mx.FeatureGraph) -> dict[str, type[mx.BaseFeature]]:
    """``gen/a`` → ``gen/b`` → ``gen/c`` (``gen/a`` has a ``region`` and a ``date`` column)."""

    class A(mx.BaseFeature, spec=mx.FeatureSpec(key="gen/a", id_columns=["sample_id"])):
        sample_id: str
        region: str | None = None
        date: str | None = None

    class B(
        mx.BaseFeature,
        spec=mx.FeatureSpec(key="gen/b", id_columns=["sample_id"], deps=[mx.FeatureDep(feature="gen/a")]),
    ):
        sample_id: str

    class C(
        mx.BaseFeature,
        spec=mx.FeatureSpec(key="gen/c", id_columns=["sample_id"], deps=[mx.FeatureDep(feature="gen/b")]),
    ):
        sample_id: str

    return {"a": A, "b": B, "c": C}


def _spec(feature: str, **kwargs: Any) -> dg.AssetSpec:
    metadata = {"metaxy/feature": feature, **kwargs.pop("metadata", {})}
    return mxd.metaxify(**kwargs)(dg.AssetSpec(feature.replace("/", "_"), metadata=metadata))


def _event_order(result: Any) -> list[dg.AssetKey]:
    return [e.step_materialization_data.materialization.asset_key for e in result.get_asset_materialization_events()]


def test_multi_asset_yields_results_in_topological_order(chain: Any, tmp_path: Path) -> None:
    root = str(tmp_path / "store")
    specs = [_spec("gen/c"), _spec("gen/a"), _spec("gen/b")]  # deliberately out of order
    assert [s.key for s in specs] == [dg.AssetKey(["gen", k]) for k in "cab"]
    assert {d.asset_key for d in specs[0].deps} == {dg.AssetKey(["gen", "b"])}

    @dg.multi_asset(specs=specs)
    def all_three(context: dg.AssetExecutionContext, store: dg.ResourceParam[mx.MetadataStore]) -> Any:
        with store.open("w"):
            store.write("gen/c", rows(["x"]))
            store.write("gen/a", rows(["x", "y", "z"]))
            store.write("gen/b", rows(["x", "y"]))
        yield from mxd.generate_materialize_results(context, store)

    resources = {"store": mxd.MetaxyStoreResource(root_path=root)}
    result = dg.materialize([all_three], resources=resources)
    assert result.success
    assert _event_order(result) == [dg.AssetKey(["gen", k]) for k in "abc"]
    expected_rows = {"a": 3, "b": 2, "c": 1}
    versions = {}
    for name, count in expected_rows.items():
        (event,) = materializations(result, ["gen", name])
        md = metadata_values(event)
        assert md["dagster/row_count"] == count
        assert md["metaxy/materialized_in_run"] == count
        assert md["metaxy/feature"] == f"gen/{name}"
        assert "dagster/partition_row_count" not in md
        assert "metaxy/partition_filter" not in md
        assert event.tags["dagster/data_version"] == md["metaxy/data_version"] != "empty"
        assert event.tags["metaxy/feature"] == f"gen__{name}"
        versions[name] = event.tags["dagster/data_version"]

    # a second run that writes nothing: same data versions, nothing materialized in this run
    @dg.multi_asset(specs=specs, name="all_three")
    def all_three_again(context: dg.AssetExecutionContext, store: dg.ResourceParam[mx.MetadataStore]) -> Any:
        yield from mxd.generate_materialize_results(context, store)

    again = dg.materialize([all_three_again], resources=resources)
    for name in "abc":
        (event,) = materializations(again, ["gen", name])
        assert event.tags["dagster/data_version"] == versions[name]
        assert metadata_values(event)["metaxy/materialized_in_run"] == 0


def test_two_slices_of_one_feature_both_get_results(chain: Any, tmp_path: Path) -> None:
    """Metaxy bug §9.2 #17: the generators kept only the last spec per feature key."""
    root = str(tmp_path / "store")
    specs = [
        _spec("gen/b"),
        _spec("gen/a", key="gen/a_eu", metadata={"metaxy/partition": {"region": "eu"}}),
        _spec("gen/a", key="gen/a_us", metadata={"metaxy/partition": {"region": "us"}}),
    ]

    @dg.multi_asset(specs=specs)
    def regions(context: dg.AssetExecutionContext, store: dg.ResourceParam[mx.MetadataStore]) -> Any:
        with store.open("w"):
            store.write("gen/a", rows(["e1", "e2", "e3"], region=["eu"] * 3))
            store.write("gen/a", rows(["u1", "u2"], region=["us"] * 2))
            store.write("gen/b", rows(["e1", "u1"]))
        yield from mxd.generate_materialize_results(context, store)

    result = dg.materialize([regions], resources={"store": mxd.MetaxyStoreResource(root_path=root)})
    assert result.success
    order = _event_order(result)
    assert order[-1] == dg.AssetKey(["gen", "b"])  # downstream after both slices
    assert set(order[:2]) == {dg.AssetKey(["gen", "a_eu"]), dg.AssetKey(["gen", "a_us"])}
    eu = metadata_values(materializations(result, ["gen", "a_eu"])[0])
    us = metadata_values(materializations(result, ["gen", "a_us"])[0])
    assert (eu["dagster/row_count"], us["dagster/row_count"]) == (3, 2)
    assert eu["metaxy/partition_filter"] == "region = 'eu'"
    assert us["metaxy/partition_filter"] == "region = 'us'"
    assert eu["metaxy/data_version"] != us["metaxy/data_version"]


def test_partitioned_multi_asset_results_carry_partition_filter(chain: Any, tmp_path: Path) -> None:
    root = str(tmp_path / "store")
    days = dg.StaticPartitionsDefinition(["2024-01-01", "2024-01-02"])
    specs = [_spec("gen/b"), _spec("gen/a", metadata={"partition_by": "date"})]

    @dg.multi_asset(specs=specs, partitions_def=days)
    def daily(context: dg.AssetExecutionContext, store: dg.ResourceParam[mx.MetadataStore]) -> Any:
        day = context.partition_key
        n = 3 if day == "2024-01-01" else 2
        ids = [f"{day}-{i}" for i in range(n)]
        with store.open("w"):
            store.write("gen/a", rows(ids, date=[day] * n))
            store.write("gen/b", rows(ids))
        yield from mxd.generate_materialize_results(context, store)

    resources = {"store": mxd.MetaxyStoreResource(root_path=root)}
    first = dg.materialize([daily], resources=resources, partition_key="2024-01-01")
    second = dg.materialize([daily], resources=resources, partition_key="2024-01-02")
    for run, partition_rows in ((first, 3), (second, 2)):
        assert _event_order(run) == [dg.AssetKey(["gen", "a"]), dg.AssetKey(["gen", "b"])]
        (event,) = materializations(run, ["gen", "a"])
        md = metadata_values(event)
        day = run.dagster_run.tags["dagster/partition"]
        assert event.partition == day
        assert md["metaxy/partition_filter"] == f"date = '{day}'"
        assert md["dagster/partition_row_count"] == partition_rows
        assert md["dagster/row_count"] == 3 + (2 if run is second else 0)
        assert event.tags["dagster/data_version"] == md["metaxy/data_version"]
        # gen/b has no partition_by: the partition run sees all its rows
        (b_event,) = materializations(run, ["gen", "b"])
        b_md = metadata_values(b_event)
        assert "metaxy/partition_filter" not in b_md
        assert b_md["dagster/partition_row_count"] == b_md["dagster/row_count"]


def test_generate_observe_results_in_multi_observable_source_asset(chain: Any, tmp_path: Path) -> None:
    root = str(tmp_path / "store")
    store = mx.DeltaMetadataStore(root)
    with store.open("w"):  # written outside Dagster
        store.write("gen/a", rows(["e1", "e2", "e3"], region=["eu"] * 3))
        store.write("gen/a", rows(["u1", "u2"], region=["us"] * 2))
        store.write("gen/b", rows(["e1"]))
    specs = [
        # no table yet: skipped (logged); skippable, else Dagster fails the missing output
        mxd.metaxify()(dg.AssetSpec("c", metadata={"metaxy/feature": "gen/c"}, skippable=True)),
        _spec("gen/b"),
        _spec("gen/a", key="gen/a_eu", metadata={"metaxy/partition": {"region": "eu"}}),
        _spec("gen/a", key="gen/a_us", metadata={"metaxy/partition": {"region": "us"}}),
        _spec("gen/a", key="gen/a_all"),  # an observer without a slice sees every producer
        dg.AssetSpec("plain", skippable=True),  # not a Metaxy spec: ignored
    ]

    @dg.multi_observable_source_asset(specs=specs, required_resource_keys={"store"})
    def observed(context: dg.AssetExecutionContext) -> Any:
        yield from mxd.generate_observe_results(context, context.resources.store)

    defs = dg.Definitions(assets=[observed], resources={"store": mxd.MetaxyStoreResource(root_path=root)})
    job = defs.get_implicit_global_asset_job_def()

    def observe() -> dict[dg.AssetKey, Any]:
        result = job.execute_in_process()
        assert result.success
        events = [e.event_specific_data.asset_observation for e in result.all_events if e.event_type_value == "ASSET_OBSERVATION"]
        return {e.asset_key: e for e in events}

    first = observe()
    # gen/a slices first (topological order), then gen/b; gen/c and plain absent
    assert list(first) == [dg.AssetKey(["gen", k]) for k in ("a_eu", "a_us", "a_all")] + [
        dg.AssetKey(["gen", "b"])
    ]
    counts = {k.to_user_string(): e.metadata["dagster/row_count"].value for k, e in first.items()}
    assert counts == {"gen/a_eu": 3, "gen/a_us": 2, "gen/a_all": 5, "gen/b": 1}
    for event in first.values():
        assert "metaxy/materialized_in_run" not in event.metadata
        assert event.tags["dagster/data_version"] == event.metadata["metaxy/data_version"].value

    with store.open("w"):
        store.write("gen/a", rows(["u3"], region=["us"]))
    second = observe()
    for key, changed in (("gen/a_eu", False), ("gen/a_us", True), ("gen/a_all", True), ("gen/b", False)):
        before, after = (run[dg.AssetKey(key.split("/"))].tags["dagster/data_version"] for run in (first, second))
        assert (before != after) is changed, key


def test_results_from_plain_op_need_specs(chain: Any, tmp_path: Path) -> None:
    root = str(tmp_path / "store")
    store = mx.DeltaMetadataStore(root)
    with store.open("w"):
        store.write("gen/a", rows(["x", "y"]))
    spec = _spec("gen/a", key="custom/asset/key")

    @dg.op(out=dg.Out(dg.Nothing))
    def observe_op(context: dg.OpExecutionContext, store: dg.ResourceParam[mx.MetadataStore]) -> None:
        with pytest.raises(ValueError, match="specs must be provided"):
            next(mxd.generate_observe_results(context, store))
        for result in mxd.generate_observe_results(context, store, specs=[spec]):
            context.log_event(
                dg.AssetObservation(
                    asset_key=result.asset_key, metadata=result.metadata, tags=dict(result.tags or {})
                )
            )

    @dg.job(resource_defs={"store": mxd.MetaxyStoreResource(root_path=root)})
    def op_job() -> None:
        observe_op()

    result = op_job.execute_in_process()
    (obs,) = [e.event_specific_data.asset_observation for e in result.all_events if e.event_type_value == "ASSET_OBSERVATION"]
    assert obs.asset_key == dg.AssetKey(["custom", "asset", "key"])
    assert obs.metadata["dagster/row_count"].value == 2
