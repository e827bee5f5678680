"""Dagster names and tags derived from feature and asset keys stay valid and unique.

Metaxy 0.1.11 put the table name into the ``metaxy/feature`` tag unchanged (over 63 characters
Dagster rejects the asset), named every observation job after the feature (two assets of one
feature clash in ``dg.Definitions``), and derived fan-out mapping keys that collide for
``up-x`` and ``up_x``.
"""

from typing import Any

import dagster as dg
import pytest

import metaxy_delta as mx
import metaxy_delta.dagster as mxd
from mxd_testing import materializations, rows

LONG_KEY = "experiments_with_a_rather_long_name/video_frames_after_deduplication/embeddings_v2"


def _observations(result: Any) -> dict[dg.AssetKey, Any]:
    events = [
        e.event_specific_data.asset_observation
        for e in result.all_events
        if e.event_type_value == "ASSET_OBSERVATION"
    ]
    return {e.asset_key: e for e in events}


@pytest.fixture
def long_feature(graph: mx.FeatureGraph) -> type[mx.BaseFeature]:
    class Long(mx.BaseFeature, spec=mx.FeatureSpec(key=LONG_KEY, id_columns=["sample_id"])):
        sample_id: str

    assert len(mx.FeatureKey(LONG_KEY).table_name) > 63
    return Long


def test_long_feature_key_materializes_with_a_short_unique_tag(
    long_feature: Any, store_root: str, instance: dg.DagsterInstance
) -> None:
    @mxd.metaxify()
    @dg.asset(metadata={"metaxy/feature": LONG_KEY})
    def embeddings(
        context: dg.AssetExecutionContext, store: dg.ResourceParam[mx.MetadataStore]
    ) -> Any:
        with store.open("w"):
            store.write(LONG_KEY, rows(["a", "b"]))
        yield from mxd.generate_materialize_results(context, store)

    resources = {"store": mxd.MetaxyStoreResource(root_path=store_root)}
    project = embeddings.specs_by_key[embeddings.key].tags["metaxy/project"]
    defs = dg.Definitions(
        assets=[embeddings],
        jobs=[
            dg.define_asset_job(
                "long_only", selection=mxd.select_metaxy_assets(project=project, feature=LONG_KEY)
            ),
            *mxd.build_metaxy_observation_job(embeddings),
        ],
        resources=resources,
    )
    tag = mxd.feature_tag_value(LONG_KEY)
    assert len(tag) == 63 and tag.startswith(mx.FeatureKey(LONG_KEY).table_name[:54])
    assert tag != mxd.feature_tag_value(
        LONG_KEY + "_v3"
    )  # the digest keeps shortened names distinct
    assert embeddings.specs_by_key[embeddings.key].tags["metaxy/feature"] == tag

    result = defs.resolve_job_def("long_only").execute_in_process(instance=instance)
    assert result.success
    (event,) = materializations(result, embeddings.key)
    assert event.tags["metaxy/feature"] == tag

    (job_name,) = [j.name for j in mxd.build_metaxy_observation_job(embeddings)]
    observed = defs.resolve_job_def(job_name).execute_in_process(instance=instance)
    obs = _observations(observed)[embeddings.key]
    assert obs.metadata["dagster/row_count"].value == 2
    assert obs.tags["metaxy/feature"] == tag


def test_two_assets_of_one_feature_get_distinct_observation_jobs(
    features: Any, store: mx.DeltaMetadataStore, store_root: str, instance: dg.DagsterInstance
) -> None:
    with store.open("w"):
        store.write("test/root", rows(["a", "b", "c"]))
    producer = mxd.metaxify()(dg.AssetSpec("root", metadata={"metaxy/feature": "test/root"}))
    mirror = dg.AssetSpec("root_mirror", metadata={"metaxy/feature": "test/root"})
    jobs = [*mxd.build_metaxy_observation_job(producer), *mxd.build_metaxy_observation_job(mirror)]
    assert [j.name for j in jobs] == ["observe_test__root", "observe_root_mirror"]
    defs = dg.Definitions(
        assets=[producer, mirror],
        jobs=jobs,
        resources={"store": mxd.MetaxyStoreResource(root_path=store_root)},
    )
    for job, asset_key in zip(jobs, (producer.key, mirror.key), strict=True):
        result = defs.resolve_job_def(job.name).execute_in_process(instance=instance)
        assert _observations(result)[asset_key].metadata["dagster/row_count"].value == 3


def test_fanout_mapping_keys_stay_unique_for_dash_and_underscore_keys(
    features: Any, store: mx.DeltaMetadataStore, store_root: str, instance: dg.DagsterInstance
) -> None:
    with store.open("w"):
        store.write("test/root", rows(["a", "b", "c"]))
        store.write("test/down", rows(["a"]))
    dash = dg.AssetSpec(["test", "up-x"], metadata={"metaxy/feature": "test/root"})
    underscore = dg.AssetSpec(["test", "up_x"], metadata={"metaxy/feature": "test/down"})
    job = mxd.build_metaxy_multi_observation_job(
        "observe_pair",
        assets=[dash, underscore],
        resource_defs={"store": mxd.MetaxyStoreResource(root_path=store_root)},
    )
    result = job.execute_in_process(instance=instance)
    assert result.success
    observed = _observations(result)
    assert observed[dash.key].metadata["dagster/row_count"].value == 3
    assert observed[underscore.key].metadata["dagster/row_count"].value == 1
    steps = {e.step_key for e in instance.all_logs(result.run_id) if e.step_key}
    assert {"observe_pair_observe[test__up_x]", "observe_pair_observe[test__up_x_2]"} <= steps

    # the same key requested twice is observed once instead of failing on a duplicate mapping key
    config = {
        "ops": {"observe_pair_fanout": {"config": {"asset_keys": ["test/up_x", "test/up_x"]}}}
    }
    again = job.execute_in_process(instance=instance, run_config=config)
    assert again.success
    assert set(_observations(again)) == {underscore.key}


def test_observation_job_of_a_feature_with_its_own_asset_key_keeps_metaxys_name(graph: mx.FeatureGraph) -> None:
    class Lake(
        mx.BaseFeature,
        spec=mx.FeatureSpec(
            key="test/lake", id_columns=["sample_id"], metadata={"dagster/attributes": {"asset_key": ["lake", "t"]}}
        ),
    ):
        sample_id: str

    own = mxd.metaxify()(dg.AssetSpec("placeholder", metadata={"metaxy/feature": "test/lake"}))
    assert own.key == dg.AssetKey(["lake", "t"])
    other = dg.AssetSpec("lake_mirror", metadata={"metaxy/feature": "test/lake"})
    names = [j.name for j in mxd.build_metaxy_observation_job(own) + mxd.build_metaxy_observation_job(other)]
    assert names == ["observe_test__lake", "observe_lake_mirror"]
