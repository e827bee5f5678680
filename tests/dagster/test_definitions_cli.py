"""``dagster definitions validate`` on a definitions file using every integration feature.

Also runs that file's jobs in-process (imported into a private feature graph), and checks
that a broken ``metaxify`` usage fails validation with our message.
"""

import importlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

import metaxy_delta as mx
from mxd_testing import materializations, metadata_values

HERE = Path(__file__).parent
DEFS_FILE = HERE / "all_features_defs.py"
DAGSTER = Path(sys.executable).parent / "dagster"

BROKEN_DEFS = '''
import dagster as dg
import metaxy_delta as mx
import metaxy_delta.dagster as mxd


class A(mx.BaseFeature, spec=mx.FeatureSpec(key="broken/a", id_columns=["id"])):
    id: str


class B(mx.BaseFeature, spec=mx.FeatureSpec(key="broken/b", id_columns=["id"])):
    id: str


@mxd.metaxify(key="single/key")
@dg.multi_asset(specs=[dg.AssetSpec("a", metadata={"metaxy/feature": "broken/a"}),
                       dg.AssetSpec("b", metadata={"metaxy/feature": "broken/b"})])
def both():
    ...


defs = dg.Definitions(assets=[both])
'''


def _validate(path: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    if not DAGSTER.exists():  # pragma: no cover - the CLI ships with dagster
        pytest.skip(f"no dagster CLI next to {sys.executable}")
    env = {**os.environ, "MXD_ALL_FEATURES_STORE_ROOT": str(tmp_path / "store")}
    env.pop("DAGSTER_HOME", None)
    return subprocess.run(
        [str(DAGSTER), "definitions", "validate", "-f", str(path)],
        cwd=tmp_path,  # the CLI's temporary Dagster home goes here
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_all_features_definitions_validate(tmp_path: Path) -> None:
    proc = _validate(DEFS_FILE, tmp_path)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "Validation successful for code location all_features_defs.py" in output
    assert not (tmp_path / "store").exists()  # loading definitions writes nothing


@pytest.mark.slow
def test_broken_metaxify_fails_validation_with_clear_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken_defs.py"
    broken.write_text(BROKEN_DEFS)
    proc = _validate(broken, tmp_path)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "Cannot use `key` argument with multi-asset `both` that produces 2 outputs" in output
    assert "Use `key_prefix` instead" in output


@pytest.fixture
def all_features(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``all_features_defs`` imported into a private graph, its store under ``tmp_path``."""
    monkeypatch.setenv("MXD_ALL_FEATURES_STORE_ROOT", str(tmp_path / "store"))
    graph = mx.FeatureGraph()
    previous = mx.MetaxyConfig.get() if mx.MetaxyConfig.is_set() else None
    with graph.use():
        sys.modules.pop("all_features_defs", None)
        module = importlib.import_module("all_features_defs")
        try:
            yield module
        finally:
            sys.modules.pop("all_features_defs", None)
            mx.MetaxyConfig.set(previous)


def _observations(result: Any) -> dict[dg.AssetKey, Any]:
    events = [e.event_specific_data.asset_observation for e in result.all_events if e.event_type_value == "ASSET_OBSERVATION"]
    return {e.asset_key: e for e in events}


@pytest.mark.slow
def test_all_features_jobs_run(all_features: Any, tmp_path: Path) -> None:
    defs = all_features.defs
    with dg.instance_for_test() as instance:
        # every Metaxy asset of the project except the partitioned one, by select_metaxy_assets
        run = defs.resolve_job_def("all_metaxy").execute_in_process(instance=instance)
        assert run.success
        for key, count in (("raw", 3), ("clean", 3), ("tokens", 3), ("stats", 3)):
            (event,) = materializations(run, ["all", key])
            md = metadata_values(event)
            assert md["dagster/row_count"] == count, key
            assert event.tags["dagster/data_version"] != "empty"
        clean_only = defs.resolve_job_def("clean_only")
        assert clean_only.asset_layer.selected_asset_keys == {dg.AssetKey(["all", "clean"])}

        # the partitioned asset, one partition
        events_job = defs.resolve_job_def("events_job")
        part = events_job.execute_in_process(instance=instance, partition_key="2024-01-02")
        (event,) = materializations(part, ["all", "events"])
        assert metadata_values(event)["dagster/partition_row_count"] == 3

        # observations: multi-asset job, partitioned job, single jobs; the external source asset
        observed = _observations(defs.resolve_job_def("observe_all").execute_in_process(instance=instance))
        assert {k.to_user_string() for k in observed} == {"all/raw", "all/clean", "all/tokens", "all/stats", "all/external"}
        assert observed[dg.AssetKey(["all", "external"])].metadata["dagster/row_count"].value == 0  # no table
        days = _observations(
            defs.resolve_job_def("observe_days").execute_in_process(instance=instance, partition_key="2024-01-02")
        )
        assert days[dg.AssetKey(["all", "events"])].metadata["dagster/partition_row_count"].value == 3
        for job in all_features.observe_jobs:
            assert defs.resolve_job_def(job.name).execute_in_process(instance=instance).success

        store = mx.DeltaMetadataStore(str(tmp_path / "store"))
        with store.open("w"):
            store.write("all/external", all_features.pl.DataFrame(
                {"sample_id": ["x"], "metaxy_provenance_by_field": [{"default": "h"}]}
            ))
        source_job = defs.resolve_job_def("observe_external")
        (obs,) = _observations(source_job.execute_in_process(instance=instance)).values()
        assert obs.metadata["dagster/row_count"].value == 1

        # delete (store from the Metaxy config) and maintenance
        deleted = defs.resolve_job_def("delete_job").execute_in_process(
            instance=instance,
            run_config={"ops": {"delete_metadata": {"config": {"feature_key": ["all", "raw"], "filters": ["sample_id = 'a'"]}}}},
        )
        assert deleted.output_for_node("delete_metadata")["rows"] == 1
        with store.open("r"):
            assert sorted(store.read("all/raw").collect()["sample_id"].to_list()) == ["b", "c"]
        maintenance = defs.resolve_job_def("maintenance").execute_in_process(instance=instance)
        assert maintenance.success
        assert maintenance.output_for_node("optimize_metadata")["all/raw"]["numFilesRemoved"] == 2
