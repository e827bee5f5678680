"""The quickstart example (examples/quickstart/defs.py) and ``make demo`` (examples/demo.py).

Real Dagster runs against real Delta tables: the demo is run end to end and its outcomes are
checked in the tables themselves; Dagster's own CLI validates the definitions file.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from deltalake import DeltaTable

import metaxy_delta as mx

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
DEFS = EXAMPLES / "quickstart" / "defs.py"


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def demo() -> ModuleType:
    return _load(EXAMPLES / "demo.py", "quickstart_demo_under_test")


@pytest.fixture(autouse=True)
def _reset_config() -> Iterator[None]:
    yield
    mx.MetaxyConfig.reset()


def _rows(table: DeltaTable) -> list[dict[str, Any]]:
    return table.to_pyarrow_table().to_pylist()


@pytest.fixture(scope="module")
def demo_run(demo: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path, str]:
    """``demo.main`` once for the module: (result, store root, printed output)."""
    import contextlib
    import io

    root = tmp_path_factory.mktemp("quickstart") / "store"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        result = demo.main(root)
    mx.MetaxyConfig.reset()
    return result, root, out.getvalue()


PIPELINE = ("video/raw", "video/transcript", "video/scenes", "channel/daily_stats")


def test_demo_recomputes_only_what_changed(demo_run: tuple[Any, Path, str]) -> None:
    result, root, _ = demo_run
    assert result.rounds["initial"] == dict(zip(PIPELINE, [12, 12, 12, 6]))
    assert result.rounds["unchanged"] == dict.fromkeys(PIPELINE, 0)
    # audio bumped: video/raw is re-stamped (new feature version), the transcripts and the stats
    # built on them are recomputed, the scenes (frames only) are not
    assert result.rounds["audio_bumped"] == dict(zip(PIPELINE, [12, 12, 0, 6]))

    transcripts = _rows(DeltaTable(str(root / "video" / "transcript.delta")))
    versions = {r["metaxy_feature_version"] for r in transcripts}
    assert len(transcripts) == 24 and len(versions) == 2  # 12 per feature version
    assert sum("(decoder v2)" in r["text"] for r in transcripts) == 12
    scenes = DeltaTable(str(root / "video" / "scenes.delta"))
    scene_rows = _rows(scenes)
    assert len(scene_rows) == 12  # never rewritten
    assert len({r["metaxy_materialization_id"] for r in scene_rows}) == 3  # the 3 first-round runs
    assert [h["operation"] for h in scenes.history()] == ["WRITE", "WRITE", "CREATE TABLE"]

    # the stats were aggregated per (channel, date): one row per group, per feature version
    stats = _rows(DeltaTable(str(root / "channel" / "daily_stats.delta")))
    assert len(stats) == 12
    assert {(r["channel"], r["date"]) for r in stats} == {
        (c, d) for c in ("cooking", "travel") for d in ("2024-01-01", "2024-01-02", "2024-01-03")
    }
    assert all(r["videos"] == 2 for r in stats)
    board = {r["channel"]: r for r in result.leaderboard}
    assert board["cooking"]["videos"] == board["travel"]["videos"] == 6


def test_demo_deletes_vacuums_and_reports_history(demo_run: tuple[Any, Path, str]) -> None:
    result, root, output = demo_run
    assert result.soft_deleted == 2
    assert result.orphaned_after_delete == {"video/transcript": 2, "video/scenes": 2}
    # hard delete with feature history: 2 rows of each feature version + their 2 tombstones
    assert result.hard_deleted == 6
    raw = DeltaTable(str(root / "video" / "raw.delta"))
    raw_rows = _rows(raw)
    assert not [r for r in raw_rows if r["channel"] == "travel" and r["date"] == "2024-01-02"]
    assert len(raw_rows) == 20  # 24 written - 4 deleted
    assert result.rows["video/raw"] == 10  # current feature version, live

    operations = [h["operation"] for h in result.history]
    assert operations == ["CREATE TABLE"] + ["WRITE"] * 6 + ["DELETE", "OPTIMIZE", "VACUUM START", "VACUUM END"]
    assert [h["version"] for h in result.history] == list(range(11))
    assert result.history[7]["rows"] == 6
    assert raw.version() == 10

    # vacuum removed the files the delete and the compaction replaced
    assert result.vacuumed_files["video/raw"] > 0
    table_dir = root / "video" / "raw.delta"
    files = {p.name for p in table_dir.rglob("*.parquet") if "_delta_log" not in p.parts}
    assert files == {Path(uri).name for uri in raw.file_uris()}

    # materialization metadata of the last run (2024-01-03 after the bump)
    md = result.materializations
    assert md["video/raw"]["metaxy/delta_version"] == 5 and md["video/raw"]["metaxy/rows_written"] == 4
    assert md["video/scenes"]["metaxy/rows_written"] == 0 and md["video/scenes"]["metaxy/delta_version"] == 2
    assert md["channel/daily_stats"]["metaxy/rows_written"] == 2
    for key in PIPELINE:
        assert md[key]["dagster/row_count"] == (6 if key == "channel/daily_stats" else 12)
        assert md[key]["data_version"] == md[key]["metaxy/data_version"] != "empty"

    # observations of the externally written feature follow its appends
    assert [o["rows"] for o in result.observations] == [2, 3]
    assert result.observations[0]["data_version"] != result.observations[1]["data_version"]

    assert "Delta history of video/raw" in output and "VACUUM END" in output
    assert "scenes recomputed: 0" in output


def test_definitions_validate_with_dagster_cli(tmp_path: Path) -> None:
    """``dagster definitions validate -f examples/quickstart/defs.py`` (what ``dg dev -f`` loads)."""
    cli = Path(sys.executable).with_name("dagster")
    command = [str(cli)] if cli.exists() else [sys.executable, "-m", "dagster"]
    env = {**os.environ, "METAXY_QUICKSTART_ROOT": str(tmp_path / "store")}
    env.pop("DAGSTER_HOME", None)
    proc = subprocess.run(
        [*command, "definitions", "validate", "-f", str(DEFS)],
        cwd=tmp_path,  # the CLI's temporary DAGSTER_HOME goes here
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Validation successful" in proc.stdout + proc.stderr


def test_defs_contents(demo: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METAXY_QUICKSTART_ROOT", str(tmp_path / "store"))
    monkeypatch.delenv("METAXY_STORE", raising=False)
    qs, graph = demo.load_quickstart("1")
    repo = qs.defs.get_repository_def()
    assert set(repo.job_names) >= {"video_pipeline", "channel_report", "observe_labels", "cleanup_job", "metaxy_maintenance"}
    with graph.use():
        before = {k: graph.get_feature_version(k) for k in PIPELINE}
    _, bumped = demo.load_quickstart("2")
    with bumped.use():
        after = {k: bumped.get_feature_version(k) for k in PIPELINE}
    # field-level dependencies: the transcript (and its stats) follow `audio`, the scenes `frames`
    changed = {k for k in PIPELINE if before[k] != after[k]}
    assert changed == {"video/raw", "video/transcript", "channel/daily_stats"}
    # the local store is the example's default; relative paths are not used
    store = qs.config.get_store()
    assert store.root_path == str(tmp_path / "store")


@pytest.mark.s3
def test_s3_store_of_the_example_config(
    demo: ModuleType, s3_bucket: str, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``METAXY_STORE=s3`` + the env vars of metaxy.toml: one partition of the pipeline on moto."""
    for name, value in {
        "METAXY_STORE": "s3",
        "QUICKSTART_S3_BUCKET": s3_bucket,
        "QUICKSTART_S3_PREFIX": "team/quickstart",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": moto_endpoint,
    }.items():
        monkeypatch.setenv(name, value)
    import dagster as dg

    qs, graph = demo.load_quickstart("1")
    store = qs.config.get_store()
    assert store.root_path == f"s3://{s3_bucket}/team/quickstart"
    with graph.use(), dg.DagsterInstance.ephemeral() as instance:
        job = qs.defs.resolve_job_def("video_pipeline")
        run = job.execute_in_process(partition_key="2024-01-01", instance=instance, run_config=demo.QUIET)
        assert run.success
        with store.open("r"):
            assert len(store.read("video/transcript").collect()) == 4
            assert len(store.read("channel/daily_stats").collect()) == 2
            assert store.version("video/raw") == 0
