"""``optimize_metadata`` / ``vacuum_metadata`` ops and ``build_maintenance_job`` on real tables.

Every assertion on "what changed" is checked against the Delta table itself (files in the
snapshot, files on disk, commit history), not only against the op's own summary.
"""

from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import pytest
from deltalake import DeltaTable

import metaxy_delta as mx
import metaxy_delta.dagster as mxd
from mxd_testing import rows

COMMITS = 4


@pytest.fixture
def filled(features: Any, store: mx.DeltaMetadataStore) -> mx.DeltaMetadataStore:
    """``test/root`` and ``test/down`` with ``COMMITS`` small appends each (one file per commit)."""
    with store.open("w"):
        for i in range(COMMITS):
            ids = [f"s{i}-{j}" for j in range(3)]
            store.write("test/root", rows(ids, path=[f"/{x}" for x in ids]))
            store.write("test/down", rows(ids, result=[float(i)] * 3))
    return store


def _table(store: mx.DeltaMetadataStore, key: str) -> DeltaTable:
    return DeltaTable(store.table_uri(key))


def _files_on_disk(store: mx.DeltaMetadataStore, key: str) -> set[str]:
    root = Path(store.table_uri(key).removeprefix("file://"))
    return {str(p.relative_to(root)) for p in root.rglob("*.parquet") if "_delta_log" not in p.parts}


def _snapshot(store: mx.DeltaMetadataStore, key: str) -> pl.DataFrame:
    with store.open("r"):
        frame = store.read(key).collect().to_native()
    return frame.sort("sample_id")


def _operations(store: mx.DeltaMetadataStore, key: str) -> list[str]:
    return [h["operation"] for h in _table(store, key).history()]


def _resources(store_root: str) -> dict[str, Any]:
    return {"metaxy_store": mxd.MetaxyStoreResource(root_path=store_root)}


def _single_op_job(op: dg.OpDefinition, store_root: str) -> dg.JobDefinition:
    @dg.job(name=f"{op.name}_job", resource_defs=_resources(store_root))
    def _run() -> None:
        op()

    return _run


def _user_logs(instance: dg.DagsterInstance, result: Any) -> list[str]:
    return [e.user_message for e in instance.all_logs(result.run_id) if e.user_message]


def test_optimize_compacts_small_files_and_keeps_reads(
    filled: Any, store_root: str, instance: dg.DagsterInstance
) -> None:
    before = {k: _snapshot(filled, k) for k in ("test/root", "test/down")}
    assert len(_table(filled, "test/root").file_uris()) == COMMITS
    down_version = _table(filled, "test/down").version()

    result = _single_op_job(mxd.optimize_metadata, store_root).execute_in_process(
        run_config={"ops": {"optimize_metadata": {"config": {"features": ["test/root"]}}}}, instance=instance
    )
    assert result.success
    summary = result.output_for_node("optimize_metadata")
    assert list(summary) == ["test/root"]  # only the configured feature
    metrics = summary["test/root"]
    assert metrics["numFilesRemoved"] == COMMITS
    assert metrics["numFilesAdded"] == 1
    table = _table(filled, "test/root")
    assert len(table.file_uris()) == 1
    assert metrics["version"] == table.version() == COMMITS  # versions 0..COMMITS-1 were writes
    assert _operations(filled, "test/root")[0] == "OPTIMIZE"
    # the other table is untouched, reads are unchanged
    assert _table(filled, "test/down").version() == down_version
    assert len(_table(filled, "test/down").file_uris()) == COMMITS
    for key, frame in before.items():
        assert _snapshot(filled, key).equals(frame)
    # the facts are also on the output's metadata (UI) and in the logs
    (output,) = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
    logged = output.event_specific_data.metadata["test/root"].value
    assert logged["numFilesRemoved"] == COMMITS
    assert any(f"Optimized test/root: {COMMITS} files compacted into 1" in m for m in _user_logs(instance, result))


def test_optimize_z_order(filled: Any, store_root: str) -> None:
    before = _snapshot(filled, "test/down")
    result = _single_op_job(mxd.optimize_metadata, store_root).execute_in_process(
        run_config={"ops": {"optimize_metadata": {"config": {"features": ["test/down"], "z_order": ["sample_id"]}}}}
    )
    assert result.success
    metrics = result.output_for_node("optimize_metadata")["test/down"]
    assert metrics["numFilesRemoved"] == COMMITS
    assert metrics["plannerStrategy"] == "zOrder"
    history = _table(filled, "test/down").history(1)[0]
    assert history["operation"] == "OPTIMIZE"
    assert history["operationMetrics"]["plannerStrategy"] == "zOrder"
    assert _snapshot(filled, "test/down").equals(before)


def test_vacuum_dry_run_deletes_nothing_then_vacuum_deletes(
    filled: Any, store_root: str, instance: dg.DagsterInstance
) -> None:
    with filled.open("w"):
        filled.optimize("test/root")  # tombstones the COMMITS small files
    on_disk = _files_on_disk(filled, "test/root")
    assert len(on_disk) == COMMITS + 1
    live = {Path(u).name for u in _table(filled, "test/root").file_uris()}
    version = _table(filled, "test/root").version()
    before = _snapshot(filled, "test/root")

    job = _single_op_job(mxd.vacuum_metadata, store_root)
    config = {"features": ["test/root"], "retention_hours": 0, "enforce_retention_duration": False}
    dry = job.execute_in_process(
        run_config={"ops": {"vacuum_metadata": {"config": {**config, "dry_run": True}}}}, instance=instance
    )
    assert dry.success
    dry_metrics = dry.output_for_node("vacuum_metadata")["test/root"]
    assert dry_metrics["dry_run"] is True
    assert dry_metrics["num_files"] == COMMITS
    assert {Path(f).name for f in dry_metrics["files"]} == {Path(f).name for f in on_disk} - live
    assert _files_on_disk(filled, "test/root") == on_disk  # nothing deleted
    assert _table(filled, "test/root").version() == version  # nothing committed
    assert "VACUUM START" not in _operations(filled, "test/root")
    assert any(f"would remove {COMMITS} files" in m for m in _user_logs(instance, dry))

    real = job.execute_in_process(run_config={"ops": {"vacuum_metadata": {"config": config}}}, instance=instance)
    assert real.success
    metrics = real.output_for_node("vacuum_metadata")["test/root"]
    assert metrics["dry_run"] is False
    assert metrics["num_files"] == COMMITS
    assert {Path(f).name for f in _files_on_disk(filled, "test/root")} == live
    assert {"VACUUM START", "VACUUM END"} <= set(_operations(filled, "test/root"))
    assert _snapshot(filled, "test/root").equals(before)
    assert any(f"Vacuum of test/root removed {COMMITS} files" in m for m in _user_logs(instance, real))


def test_vacuum_default_retention_keeps_recent_files(filled: Any, store_root: str) -> None:
    with filled.open("w"):
        filled.optimize("test/root")
    on_disk = _files_on_disk(filled, "test/root")
    result = _single_op_job(mxd.vacuum_metadata, store_root).execute_in_process(
        run_config={"ops": {"vacuum_metadata": {"config": {"features": ["test/root"]}}}}
    )
    assert result.success
    assert result.output_for_node("vacuum_metadata")["test/root"]["num_files"] == 0  # 7-day window
    assert _files_on_disk(filled, "test/root") == on_disk


def test_short_retention_is_refused_when_enforced(filled: Any, store_root: str) -> None:
    with filled.open("w"):
        filled.optimize("test/root")
    on_disk = _files_on_disk(filled, "test/root")
    result = _single_op_job(mxd.vacuum_metadata, store_root).execute_in_process(
        run_config={"ops": {"vacuum_metadata": {"config": {"features": ["test/root"], "retention_hours": 0}}}},
        raise_on_error=False,
    )
    assert not result.success
    assert _files_on_disk(filled, "test/root") == on_disk


def test_maintenance_job_optimizes_then_vacuums(filled: Any, store_root: str) -> None:
    before = {k: _snapshot(filled, k) for k in ("test/root", "test/down")}
    job = mxd.build_maintenance_job(
        "weekly_maintenance",
        features=["test/root", "test/down"],
        retention_hours=0,
        enforce_retention_duration=False,
        resource_defs=_resources(store_root),
        tags={"team": "ml"},
    )
    assert job.tags["team"] == "ml"
    result = job.execute_in_process()
    assert result.success
    steps = [e.step_key for e in result.all_events if e.event_type_value == "STEP_SUCCESS"]
    assert steps == ["optimize_metadata", "vacuum_metadata"]
    optimized = result.output_for_node("optimize_metadata")
    vacuumed = result.output_for_node("vacuum_metadata")
    for key in ("test/root", "test/down"):
        assert optimized[key]["numFilesRemoved"] == COMMITS
        assert vacuumed[key]["num_files"] == COMMITS  # the files the optimize just replaced
        assert len(_table(filled, key).file_uris()) == 1
        assert len(_files_on_disk(filled, key)) == 1
        ops = _operations(filled, key)
        assert ops[:3] == ["VACUUM END", "VACUUM START", "OPTIMIZE"]
        assert _snapshot(filled, key).equals(before[key])


def test_maintenance_job_defaults_cover_every_stored_feature(filled: Any, store_root: str) -> None:
    job = mxd.build_maintenance_job(vacuum=False, resource_defs=_resources(store_root))
    result = job.execute_in_process()
    assert result.success
    assert set(result.output_for_node("optimize_metadata")) == {"test/root", "test/down"}
    with pytest.raises(ValueError, match="optimize=True or vacuum=True"):
        mxd.build_maintenance_job(optimize=False, vacuum=False)


def test_dry_run_maintenance_job_deletes_nothing(filled: Any, store_root: str) -> None:
    job = mxd.build_maintenance_job(
        optimize=False, dry_run=True, retention_hours=0, enforce_retention_duration=False,
        resource_defs=_resources(store_root),
    )
    with filled.open("w"):
        filled.optimize("test/root")
    on_disk = _files_on_disk(filled, "test/root")
    result = job.execute_in_process()
    assert result.success
    assert result.output_for_node("vacuum_metadata")["test/root"]["num_files"] == COMMITS
    assert _files_on_disk(filled, "test/root") == on_disk


@pytest.mark.parametrize("op", [mxd.optimize_metadata, mxd.vacuum_metadata])
@pytest.mark.parametrize("bad", ["nope/missing", "Not A Key"])
def test_unknown_feature_fails_before_anything_changes(
    filled: Any, store_root: str, op: dg.OpDefinition, bad: str
) -> None:
    versions = {k: _table(filled, k).version() for k in ("test/root", "test/down")}
    config: dict[str, Any] = {"features": ["test/root", bad]}  # the valid one is listed first
    if op is mxd.vacuum_metadata:
        config.update(retention_hours=0, enforce_retention_duration=False)
    with filled.open("w"):
        filled.optimize("test/down")
    versions["test/down"] += 1
    down_files = _files_on_disk(filled, "test/down")
    result = _single_op_job(op, store_root).execute_in_process(
        run_config={"ops": {op.name: {"config": config}}}, raise_on_error=False
    )
    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert bad in str(failure.event_specific_data.error)
    assert {k: _table(filled, k).version() for k in versions} == versions
    assert len(_table(filled, "test/root").file_uris()) == COMMITS
    assert _files_on_disk(filled, "test/down") == down_files


def test_direct_invocation_with_build_op_context(filled: Any) -> None:
    context = dg.build_op_context(resources={"metaxy_store": filled})
    output = mxd.optimize_metadata(context, mxd.OptimizeMetadataConfig(features=["test/down"]))
    assert output.value["test/down"]["numFilesRemoved"] == COMMITS
