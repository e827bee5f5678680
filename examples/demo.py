"""The quickstart story, headless: ``make demo`` (or ``python examples/demo.py [--root DIR]``).

Runs the Dagster definitions of ``examples/quickstart/defs.py`` in process against a fresh local
Delta store (default ``examples/quickstart/.metaxy/demo``, git-ignored) and an ephemeral Dagster
instance, and prints what happened:

1. materialize the three daily partitions; materialize them again (nothing changes);
2. bump the ``audio`` code version and re-materialize: only the transcripts (and the stats
   aggregated from them) are recomputed, the scenes are untouched;
3. observe a feature written outside Dagster (``video/labels``);
4. soft-delete rows with a SQL filter (the ``cleanup_job``), then hard-delete them;
5. optimize + vacuum (retention 0, enforcement off: demo only!);
6. the Delta history of ``video/raw`` and the materialization metadata of the last run.

:func:`main` returns a :class:`DemoResult` with the numbers (used by the tests).
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import dagster as dg
import polars as pl

import metaxy_delta as mx

HERE = Path(__file__).resolve().parent
QUICKSTART = HERE / "quickstart"
DEFAULT_ROOT = QUICKSTART / ".metaxy" / "demo"

PIPELINE = ("video/raw", "video/transcript", "video/scenes", "channel/daily_stats")
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
"""Run config silencing Dagster's console logger (events are still recorded)."""
_ENV = ("METAXY_QUICKSTART_ROOT", "QUICKSTART_AUDIO_CODE_VERSION", "METAXY_STORE", "METAXY_CONFIG")


@dataclass
class DemoResult:
    """What the demo did, as numbers (per round: ``{feature: new + stale samples computed}``)."""

    store_root: str
    rounds: dict[str, dict[str, int]] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    """Live rows per feature at the end."""
    soft_deleted: int = 0
    hard_deleted: int = 0
    orphaned_after_delete: dict[str, int] = field(default_factory=dict)
    vacuumed_files: dict[str, int] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    """Delta history of ``video/raw`` (oldest first): version, operation, rows."""
    materializations: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Metadata of the last materialization per feature (row count, Delta/data version)."""
    observations: list[dict[str, Any]] = field(default_factory=list)
    leaderboard: list[dict[str, Any]] = field(default_factory=list)


# ------------------------------------------------------------------------------------ set-up


@contextmanager
def _environment(root: Path) -> Iterator[None]:
    """Point the quickstart's metaxy.toml at ``root`` (local store); restore the env after."""
    saved = {name: os.environ.get(name) for name in _ENV}
    os.environ["METAXY_QUICKSTART_ROOT"] = str(root)
    os.environ["METAXY_STORE"] = "dev"
    os.environ.pop("METAXY_CONFIG", None)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        mx.MetaxyConfig.reset()


def load_quickstart(audio_code_version: str) -> tuple[ModuleType, mx.FeatureGraph]:
    """Import ``quickstart/defs.py`` into a fresh feature graph with that ``audio`` version.

    Editing the code version in ``defs.py`` and reloading the code location in the UI does the
    same; here the module reads it from ``$QUICKSTART_AUDIO_CODE_VERSION``.
    """
    os.environ["QUICKSTART_AUDIO_CODE_VERSION"] = audio_code_version
    graph = mx.FeatureGraph()
    with graph.use():
        spec = importlib.util.spec_from_file_location("quickstart_defs", QUICKSTART / "defs.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return module, graph


def _quiet() -> None:
    warnings.filterwarnings("ignore", message=r".*is currently in (beta|preview).*")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    for name in ("dagster", "metaxy_delta"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:  # Dagster's Beta/Preview warnings have their own categories
        from dagster._annotations import BetaWarning, PreviewWarning

        warnings.filterwarnings("ignore", category=BetaWarning)
        warnings.filterwarnings("ignore", category=PreviewWarning)
    except ImportError:  # pragma: no cover - other Dagster versions
        pass


# ------------------------------------------------------------------------------------- runs


def _md(event: Any) -> dict[str, Any]:
    return {k: getattr(v, "value", v) for k, v in event.metadata.items()}


def _materializations(result: Any) -> dict[str, dict[str, Any]]:
    """``{feature or asset: metadata (+ data_version)}`` of a run's materializations."""
    out: dict[str, dict[str, Any]] = {}
    for event in result.get_asset_materialization_events():
        mat = event.step_materialization_data.materialization
        md = _md(mat)
        md["data_version"] = mat.tags.get("dagster/data_version") if mat.tags else None
        out[md.get("metaxy/feature", mat.asset_key.to_user_string())] = md
    return out


def materialize_days(qs: ModuleType, instance: dg.DagsterInstance) -> tuple[dict[str, list[int]], dict[str, dict[str, Any]]]:
    """Run ``video_pipeline`` for every day; returns ``{feature: [new, stale]}`` summed over days
    and the metadata of the last day's materializations."""
    job = qs.defs.resolve_job_def("video_pipeline")
    counts = {key: [0, 0] for key in PIPELINE}
    last: dict[str, dict[str, Any]] = {}
    for day in qs.daily.get_partition_keys():
        result = job.execute_in_process(partition_key=day, instance=instance, run_config=QUIET)
        assert result.success, f"video_pipeline failed for {day}"
        last = _materializations(result)
        for key in PIPELINE:
            counts[key][0] += int(last[key]["increment/new"])
            counts[key][1] += int(last[key]["increment/stale"])
    return counts, last


def _print_round(title: str, counts: dict[str, list[int]], versions: dict[str, str]) -> None:
    print(f"\n{title}")
    print(f"  {'feature':<22}{'feature version':<18}{'new':>5}{'stale':>7}{'computed':>10}")
    for key, (new, stale) in counts.items():
        print(f"  {key:<22}{versions[key]:<18}{new:>5}{stale:>7}{new + stale:>10}")


def _versions(graph: mx.FeatureGraph) -> dict[str, str]:
    return {key: graph.get_feature_version(key) for key in PIPELINE}


def _history_rows(entry: dict[str, Any]) -> int | None:
    metrics = entry.get("operationMetrics") or {}
    for name in ("num_added_rows", "numOutputRows", "num_deleted_rows", "numDeletedRows", "num_target_rows_deleted"):
        if name in metrics:
            return int(metrics[name])
    return None


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], indent: str = "  ") -> None:
    cells = [[str(h) for h in headers], *[["" if v is None else str(v) for v in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        print(indent + "  ".join(value.ljust(width) for value, width in zip(row, widths)).rstrip())
        if n == 0:
            print(indent + "  ".join("-" * width for width in widths))


# ------------------------------------------------------------------------------------- story


def main(root: str | Path | None = None) -> DemoResult:
    """Run the whole story against a fresh store at ``root`` (default: ``DEFAULT_ROOT``)."""
    _quiet()
    store_root = Path(root) if root is not None else DEFAULT_ROOT
    if store_root.exists():
        shutil.rmtree(store_root)
    store_root.mkdir(parents=True)
    result = DemoResult(store_root=str(store_root))
    started = time.perf_counter()
    with _environment(store_root), tempfile.TemporaryDirectory(prefix="quickstart-dagster-") as home:
        instance = dg.DagsterInstance.ephemeral(tempdir=home)
        print(f"metaxy_delta quickstart demo\n  store: {store_root}\n  features: examples/quickstart/defs.py")

        # 1. first materialization of every day, then a no-op re-run
        qs, graph = load_quickstart("1")
        with graph.use():
            counts, _ = materialize_days(qs, instance)
            _print_round("1. materialize 3 daily partitions (audio code version 1)", counts, _versions(graph))
            result.rounds["initial"] = {k: sum(v) for k, v in counts.items()}
            counts, _ = materialize_days(qs, instance)
            _print_round("2. materialize again, nothing changed", counts, _versions(graph))
            result.rounds["unchanged"] = {k: sum(v) for k, v in counts.items()}

        # 2. bump the audio code version: a new import of defs.py sees QUICKSTART_AUDIO_CODE_VERSION=2
        qs, graph = load_quickstart("2")
        with graph.use():
            counts, last = materialize_days(qs, instance)
            _print_round(
                "3. bump `audio` code version 1 -> 2 and materialize again\n"
                "   (video/raw rows are re-stamped with the new feature version; transcripts and\n"
                "   stats depend on `audio`, scenes only on `frames`)",
                counts,
                _versions(graph),
            )
            result.rounds["audio_bumped"] = bumped = {k: sum(v) for k, v in counts.items()}
            print(
                f"  -> transcripts recomputed: {bumped['video/transcript']}, scenes recomputed: "
                f"{bumped['video/scenes']} (untouched), stats recomputed: {bumped['channel/daily_stats']}"
            )
            result.materializations = last

            report = qs.defs.resolve_job_def("channel_report").execute_in_process(instance=instance, run_config=QUIET)
            assert report.success
            board = report.output_for_node("channel_leaderboard")
            result.leaderboard = board.to_dicts()
            print("\n4. non-Metaxy asset channel_leaderboard (reads every partition of channel/daily_stats)")
            _table(board.columns, board.rows())

            # 3. a feature written outside Dagster, observed by an observable source asset
            store = qs.config.get_store()
            print("\n5. video/labels is written outside Dagster; observe_labels records what it sees")
            observed = []
            for batch in (["cooking-2024-01-01-0", "travel-2024-01-01-0"], ["cooking-2024-01-02-1"]):
                frame = pl.DataFrame(
                    {
                        "video_id": batch,
                        "label": ["recipe" if v.startswith("cooking") else "landscape" for v in batch],
                        "metaxy_provenance_by_field": [{"label": f"annotator-1:{v}"} for v in batch],
                    }
                )
                with store.open("w"):
                    store.write(qs.Labels, frame)
                run = qs.defs.resolve_job_def("observe_labels").execute_in_process(instance=instance, run_config=QUIET)
                (event,) = [e for e in run.all_events if e.event_type_value == "ASSET_OBSERVATION"]
                observation = event.event_specific_data.asset_observation
                md = _md(observation)
                observed.append(
                    {"rows": md["dagster/row_count"], "labels": md["labels"], "data_version": observation.tags["dagster/data_version"]}
                )
            _table(["observation", "rows", "labels", "data version"], [[n + 1, o["rows"], o["labels"], o["data_version"]] for n, o in enumerate(observed)])
            result.observations = observed

            # 4. deletes through the cleanup job (delete_metadata op)
            cleanup = qs.defs.resolve_job_def("cleanup_job")
            filters = ["channel = 'travel'", "date = '2024-01-02'"]

            def delete(soft: bool, history: bool = False) -> dict[str, Any]:
                config = {"feature_key": ["video", "raw"], "filters": filters, "soft": soft, "with_feature_history": history}
                run = cleanup.execute_in_process(
                    instance=instance, run_config={**QUIET, "ops": {"delete_metadata": {"config": config}}}
                )
                assert run.success
                return run.output_for_node("delete_metadata")

            print(f"\n6. delete video/raw rows where {' AND '.join(filters)} (cleanup_job)")
            soft = delete(soft=True)
            result.soft_deleted = soft["rows"]
            with store.open("r"):
                for key in ("video/transcript", "video/scenes"):
                    increment = store.resolve_update(key)
                    result.orphaned_after_delete[key] = len(increment.orphaned)
            hard = delete(soft=False, history=True)
            result.hard_deleted = hard["rows"]
            _table(
                ["delete", "rows affected", "Delta version", "note"],
                [
                    ["soft", soft["rows"], soft["delta_version"], "tombstones appended; rows hidden from reads"],
                    ["hard", hard["rows"], hard["delta_version"], "Delta DELETE of rows + tombstones, all feature versions"],
                ],
            )
            orphans = ", ".join(f"{k}: {v}" for k, v in result.orphaned_after_delete.items())
            print(f"  downstream samples orphaned by the delete (resolve_update): {orphans}")

            # 5. maintenance: optimize + vacuum (retention 0 without enforcement: demo only)
            maintenance = qs.defs.resolve_job_def("metaxy_maintenance")
            run = maintenance.execute_in_process(
                instance=instance,
                run_config={
                    **QUIET,
                    "ops": {
                        "optimize_metadata": {"config": {"features": [], "z_order": []}},
                        "vacuum_metadata": {
                            "config": {"features": [], "retention_hours": 0, "dry_run": False, "enforce_retention_duration": False}
                        },
                    },
                },
            )
            assert run.success
            optimized = run.output_for_node("optimize_metadata")
            vacuumed = run.output_for_node("vacuum_metadata")
            result.vacuumed_files = {k: int(v.get("num_files", 0)) for k, v in vacuumed.items()}
            print("\n7. metaxy_maintenance: optimize, then vacuum with retention 0 (enforcement off)")
            _table(
                ["feature", "files compacted", "files added", "files vacuumed"],
                [
                    [k, optimized.get(k, {}).get("numFilesRemoved", 0), optimized.get(k, {}).get("numFilesAdded", 0), result.vacuumed_files[k]]
                    for k in sorted(vacuumed)
                ],
            )

            with store.open("r"):
                history = list(reversed(store.history("video/raw")))
                result.rows = {key: len(store.read(key).collect()) for key in (*PIPELINE, "video/labels")}
            result.history = [
                {"version": h.get("version"), "operation": h.get("operation"), "rows": _history_rows(h)} for h in history
            ]
            print("\n8. Delta history of video/raw")
            _table(["version", "operation", "rows"], [[h["version"], h["operation"], h["rows"]] for h in result.history])

        print("\n9. metadata of the last materialization (2024-01-03, after the bump)")
        _table(
            ["feature", "rows (table)", "rows (day)", "rows written", "Delta version", "data version (day)"],
            [
                [
                    key,
                    md.get("dagster/row_count"),
                    md.get("dagster/partition_row_count"),
                    md.get("metaxy/rows_written"),
                    md.get("metaxy/delta_version"),
                    md.get("data_version"),
                ]
                for key, md in result.materializations.items()
            ],
        )
        print("\nlive rows now: " + ", ".join(f"{k} {v}" for k, v in result.rows.items()))
        print(f"done in {time.perf_counter() - started:.1f}s; tables are under {store_root}")
    return result


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=None, help=f"store directory (wiped first; default {DEFAULT_ROOT})")
    return parser.parse_args(argv)


if __name__ == "__main__":
    main(_parse(sys.argv[1:]).root)
