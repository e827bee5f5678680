"""Latest-row selection: skipped when the table is one validated write, exact otherwise."""

from __future__ import annotations

from pathlib import Path

import polars as pl

import metaxy_delta as mx
from tests.store.conftest import ids, video_samples


def _plan(store: mx.DeltaMetadataStore) -> str:
    return store.read("video/raw").to_native().explain()


def test_single_validated_write_skips_dedup_until_the_next_write(
    tmp_path: Path, pipeline: mx.FeatureGraph
) -> None:
    store = mx.DeltaMetadataStore(tmp_path)
    with store.open("w"):
        store.write("video/raw", video_samples(4))
        assert ".over(" not in _plan(store)
        assert ids(store.read("video/raw")) == [f"v{i:04d}" for i in range(4)]
        store.write("video/raw", video_samples(2, audio_suffix="-v2"))
        assert ".over(" in _plan(store)
        latest = store.read("video/raw").collect().to_native().sort("video_id")
        assert latest.height == 4
        audio = latest["metaxy_provenance_by_field"].struct.field("audio").to_list()
        assert audio == ["a-v0000-v2", "a-v0001-v2", "a-v0002", "a-v0003"]
        # time travel to the single-write version: no dedup needed, same rows as then
        assert ".over(" not in store.read("video/raw", version=0).to_native().explain()


def test_single_write_with_sample_history_is_still_deduplicated(
    tmp_path: Path, pipeline: mx.FeatureGraph
) -> None:
    store = mx.DeltaMetadataStore(tmp_path)
    rows = pl.concat([video_samples(2), video_samples(1, audio_suffix="-again")])
    with store.open("w"):
        store.write("video/raw", rows, with_sample_history=True)
        assert ".over(" in _plan(store)
        assert store.read("video/raw").collect().shape[0] == 2
        assert store.read("video/raw", with_sample_history=True).collect().shape[0] == 3
