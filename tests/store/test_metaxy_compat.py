"""Stores written by Metaxy 0.1.11 open here unchanged, and the other way round.

Needs the ``compare`` extra (Metaxy installed); the package itself never imports Metaxy.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from deltalake import DeltaTable

import metaxy_delta as mx

mxo = pytest.importorskip("metaxy")
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

SAMPLES = pl.DataFrame({
    "video_id": ["a", "b", "c"],
    "path": ["p/a", "p/b", "p/c"],
    "metaxy_provenance_by_field": [{"audio": f"a{i}", "frames": f"f{i}"} for i in range(3)],
})
CHANGED = SAMPLES.with_columns(
    pl.when(pl.col("video_id") == "b")
    .then(pl.lit({"audio": "CHANGED", "frames": "f1"}))
    .otherwise(pl.col("metaxy_provenance_by_field"))
    .alias("metaxy_provenance_by_field")
)


def define(lib: Any) -> tuple[Any, Any, Any]:
    graph = lib.FeatureGraph()
    with graph.use():

        class Video(lib.BaseFeature, spec=lib.FeatureSpec(key="video/raw", id_columns=["video_id"], fields=["audio", "frames"])):
            video_id: str
            path: str

        class Transcript(lib.BaseFeature, spec=lib.FeatureSpec(key="video/transcript", id_columns=["video_id"], deps=[lib.FeatureDep(feature=Video, select=())], fields=["audio"])):
            video_id: str

    return graph, Video, Transcript


def metaxy_store(root: Path) -> Any:
    from metaxy.ext.polars.handlers.delta import DeltaMetadataStore

    return DeltaMetadataStore(str(root))


def run_pipeline(lib: Any, store: Any, samples: pl.DataFrame) -> dict[str, list[str]]:
    """Resolve and write root then leaf; return the ids of each increment kind of the leaf."""
    graph, video, transcript = define(lib)
    with warnings.catch_warnings(), graph.use(), store.open("w"):
        warnings.simplefilter("ignore")
        root = store.resolve_update(video, samples=samples)
        store.write(video, pl.concat([root.new.to_native(), root.stale.to_native()], how="diagonal_relaxed").drop("metaxy_deleted_at", strict=False))
        leaf = store.resolve_update(transcript)
        out = {k: sorted(getattr(leaf, k).to_native()["video_id"].to_list()) for k in ("new", "stale", "orphaned")}
        store.write(transcript, pl.concat([leaf.new.to_native(), leaf.stale.to_native()], how="diagonal_relaxed").drop("metaxy_deleted_at", "metaxy_deleted_at_right", strict=False))
        return out


def stored(store: Any, lib: Any, key: str) -> pl.DataFrame:
    graph, *_ = define(lib)
    with warnings.catch_warnings(), graph.use(), store.open("r"):
        warnings.simplefilter("ignore")
        cols = ["video_id", "metaxy_provenance_by_field", "metaxy_provenance", "metaxy_data_version", "metaxy_feature_version", "metaxy_project_version"]
        return store.read(key).collect().to_native().select(cols).sort("video_id")


@pytest.mark.parametrize("writer_first", ["metaxy", "ours"])
def test_same_hashes_and_increments_in_both_directions(tmp_path: Path, writer_first: str) -> None:
    ours = mx.DeltaMetadataStore(tmp_path)
    theirs = metaxy_store(tmp_path)
    first, second = (mxo, mx) if writer_first == "metaxy" else (mx, mxo)
    first_store, second_store = (theirs, ours) if writer_first == "metaxy" else (ours, theirs)

    assert run_pipeline(first, first_store, SAMPLES) == {"new": ["a", "b", "c"], "stale": [], "orphaned": []}
    for key in ("video/raw", "video/transcript"):
        assert stored(ours, mx, key).equals(stored(theirs, mxo, key))
    # the other library sees the same state and resolves a change identically
    assert run_pipeline(second, second_store, CHANGED) == {"new": [], "stale": ["b"], "orphaned": []}
    for key in ("video/raw", "video/transcript"):
        assert stored(ours, mx, key).equals(stored(theirs, mxo, key))


def test_table_layout_columns_and_dtypes(tmp_path: Path) -> None:
    run_pipeline(mx, mx.DeltaMetadataStore(tmp_path), SAMPLES)
    run_pipeline(mxo, metaxy_store(tmp_path / "metaxy"), SAMPLES)
    assert (tmp_path / "video" / "raw.delta" / "_delta_log").is_dir()
    assert (tmp_path / "video" / "transcript.delta" / "_delta_log").is_dir()
    assert mx.DeltaMetadataStore(tmp_path, layout="flat").table_uri("video/raw-x") == f"{tmp_path}/video__raw_x.delta"
    ours = pl.read_delta(str(tmp_path / "video" / "raw.delta")).schema
    theirs = pl.read_delta(str(tmp_path / "metaxy" / "video" / "raw.delta")).schema
    assert list(ours.items()) == [
        ("video_id", pl.String),
        ("path", pl.String),
        ("metaxy_provenance_by_field", pl.Struct({"audio": pl.String, "frames": pl.String})),
        ("metaxy_provenance", pl.String),
        ("metaxy_data_version_by_field", pl.Struct({"audio": pl.String, "frames": pl.String})),
        ("metaxy_data_version", pl.String),
        ("metaxy_feature_version", pl.String),
        ("metaxy_project_version", pl.String),
        ("metaxy_created_at", pl.Datetime("us", "UTC")),
        ("metaxy_updated_at", pl.Datetime("us", "UTC")),
        ("metaxy_deleted_at", pl.Datetime("us", "UTC")),
        ("metaxy_materialization_id", pl.String),
    ]
    assert dict(ours) == dict(theirs)
    def delta_types(path: Path) -> dict[str, str]:
        return {f.name: str(f.type) for f in DeltaTable(str(path)).schema().fields}

    assert delta_types(tmp_path / "video" / "raw.delta") == delta_types(tmp_path / "metaxy" / "video" / "raw.delta")
