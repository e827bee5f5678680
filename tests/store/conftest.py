"""Fixtures for store suites: a fresh graph with a small video pipeline and a store on it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import polars as pl
import pytest

import metaxy_delta as mx


@pytest.fixture
def graph() -> Iterator[mx.FeatureGraph]:
    with mx.FeatureGraph().use() as g:
        yield g


@pytest.fixture
def pipeline(graph: mx.FeatureGraph) -> mx.FeatureGraph:
    """``video/raw`` (audio, frames) → ``video/transcript`` (audio) and ``video/thumb`` (frames)."""

    class Video(mx.BaseFeature, spec=mx.FeatureSpec(key="video/raw", id_columns=["video_id"], fields=["audio", "frames"])):
        video_id: str
        path: str

    class Transcript(mx.BaseFeature, spec=mx.FeatureSpec(key="video/transcript", id_columns=["video_id"], deps=[mx.FeatureDep(feature=Video, select=())], fields=["audio"])):
        video_id: str
        text: str

    class Thumb(mx.BaseFeature, spec=mx.FeatureSpec(key="video/thumb", id_columns=["video_id"], deps=[mx.FeatureDep(feature=Video, select=())], fields=["frames"])):
        video_id: str

    return graph


def video_samples(n: int, *, audio_suffix: str = "", start: int = 0) -> pl.DataFrame:
    ids = [f"v{i:04d}" for i in range(start, start + n)]
    return pl.DataFrame({
        "video_id": ids,
        "path": [f"s3://videos/{i}.mp4" for i in ids],
        "metaxy_provenance_by_field": [{"audio": f"a-{i}{audio_suffix}", "frames": f"f-{i}"} for i in ids],
    })


@pytest.fixture
def store(root_and_options: tuple[str, dict[str, str] | None], pipeline: mx.FeatureGraph) -> mx.DeltaMetadataStore:
    root, options = root_and_options
    return mx.DeltaMetadataStore(root, storage_options=options, materialization_id="test-run")


def ids(frame: Any) -> list[str]:
    native = frame.to_native() if hasattr(frame, "to_native") else frame
    if isinstance(native, pl.LazyFrame):
        native = native.collect()
    return sorted(native["video_id"].to_list())
