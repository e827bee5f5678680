"""Store semantics where we deliberately differ from (improve on) Metaxy 0.1.11, spec §7."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import metaxy_delta as mx
from tests.store.conftest import ids, video_samples


@pytest.fixture
def local(tmp_path: Path, pipeline: mx.FeatureGraph) -> mx.DeltaMetadataStore:
    return mx.DeltaMetadataStore(tmp_path / "dev")


def test_fallback_read_and_soft_delete_never_copies_fallback_rows(tmp_path: Path, pipeline: mx.FeatureGraph) -> None:
    prod = mx.DeltaMetadataStore(tmp_path / "prod")
    dev = mx.DeltaMetadataStore(tmp_path / "dev", fallback_stores=[prod])
    with prod.open("w"):
        prod.write("video/raw", video_samples(3))
    with dev.open("w"):
        frame, source = dev.read("video/raw", with_store_info=True)
        assert ids(frame) == ["v0000", "v0001", "v0002"] and source is prod
        with pytest.raises(mx.FeatureNotFoundError, match="dev/video/raw.delta"):
            dev.read("video/raw", allow_fallback=False)
        assert dev.has_feature("video/raw", check_fallback=True) and not dev.has_feature("video/raw")
        # leaf resolved in dev from prod's upstream (the "dev pulls prod upstream" workflow)
        assert len(dev.resolve_update("video/transcript").new) == 3
        with pytest.raises(mx.FeatureNotFoundError):
            dev.delete("video/raw", ["video_id = 'v0000'"])
    assert not (tmp_path / "dev" / "video" / "raw.delta").exists()


def test_soft_delete_keeps_each_rows_feature_version(local: mx.DeltaMetadataStore, graph: mx.FeatureGraph) -> None:
    with local.open("w"):
        local.write("video/raw", video_samples(2))
        old_version = graph.get_feature_version("video/raw")
        # a new code version of the feature: rows of both versions are live in the table
        graph.remove_feature("video/raw")

        class Video(mx.BaseFeature, spec=mx.FeatureSpec(key="video/raw", id_columns=["video_id"], fields=[mx.FieldSpec(key="audio", code_version="2"), "frames"])):
            video_id: str
            path: str

        new_version = graph.get_feature_version("video/raw")
        local.write("video/raw", video_samples(2))
        result = local.delete("video/raw", ["video_id = 'v0000'"], with_feature_history=True)
        assert result.rows == 2  # one tombstone per live (sample, feature version)
        for version in (old_version, new_version):
            assert ids(local.read("video/raw", feature_version=version)) == ["v0001"]
        tombstones = local.read("video/raw", with_feature_history=True, with_sample_history=True, include_soft_deleted=True).collect().to_native().filter(pl.col("metaxy_deleted_at").is_not_null())
        assert sorted(tombstones["metaxy_feature_version"]) == sorted([old_version, new_version])


def test_rewrite_restores_soft_deleted_sample_and_timestamps_are_monotonic(local: mx.DeltaMetadataStore) -> None:
    with local.open("w"):
        local.write("video/raw", video_samples(1))
        local.delete("video/raw", ["video_id = 'v0000'"])
        assert ids(local.read("video/raw")) == []
        local.write("video/raw", video_samples(1))
        assert ids(local.read("video/raw")) == ["v0000"]
        rows = local.read("video/raw", with_sample_history=True, include_soft_deleted=True).collect().to_native()
        order = pl.coalesce("metaxy_deleted_at", "metaxy_updated_at")
        stamps = rows.select(order).to_series().sort().to_list()
        assert len(set(stamps)) == 3  # write, tombstone, rewrite: strictly increasing


def test_read_columns_history_time_travel_and_drop(local: mx.DeltaMetadataStore) -> None:
    with local.open("w"):
        local.write("video/raw", video_samples(2))
        time.sleep(0.05)
        middle = datetime.now(timezone.utc)
        time.sleep(0.05)
        local.write("video/raw", video_samples(1, start=5))
        assert local.read("video/raw", columns=["video_id"]).collect().to_native().columns == ["video_id"]
        assert ids(local.read("video/raw", as_of=middle)) == ["v0000", "v0001"]
        assert ids(local.read("video/raw", version=0)) == ["v0000", "v0001"]
        with pytest.raises(mx.MetadataStoreError, match="version"):
            local.read("video/raw", version=99)
        dropped = local.drop_feature_metadata("video/raw")
        assert dropped.rows == 3 and ids(local.read("video/raw")) == []


def test_write_multi_writes_dependents_first(local: mx.DeltaMetadataStore) -> None:
    with local.open("w"):
        local.write("video/raw", video_samples(2))
        leaf = local.resolve_update("video/transcript").new.to_native().with_columns(text=pl.lit("x"))
        results = local.write_multi({"video/raw": video_samples(1, start=9), "video/transcript": leaf})
        assert [k.to_string() for k in results] == ["video/transcript", "video/raw"]
        assert all(r.version is not None for r in results.values())


def test_increment_frames_carry_no_bookkeeping_columns(local: mx.DeltaMetadataStore) -> None:
    with local.open("w"):
        local.write("video/raw", video_samples(2))
        local.delete("video/raw", ["video_id = 'v0001'"])
        new = local.resolve_update("video/transcript").new.to_native()
        assert ids(new) == ["v0000"]
        assert not {"metaxy_deleted_at", "metaxy_updated_at", "metaxy_feature_version"} & set(new.columns)
        assert not [c for c in new.columns if c.startswith("__")]
        local.write("video/transcript", new.with_columns(text=pl.lit("t")))
        stored = local.read("video/transcript").collect().to_native()
        assert stored.columns[:2] == ["video_id", "text"]


def test_written_data_versions_keep_given_values_and_fill_only_nulls(local: mx.DeltaMetadataStore, graph: mx.FeatureGraph) -> None:
    """Complete data-version columns are stored as given (no hash recomputed); a null member or
    a null sample data version is filled as Metaxy does (from provenance / the struct's hash)."""
    samples = video_samples(3)
    prov = samples["metaxy_provenance_by_field"]
    overrides = pl.Series(
        [{"audio": "A0", "frames": "F0"}, {"audio": None, "frames": "F1"}, {"audio": "A2", "frames": "F2"}],
        dtype=prov.dtype,
    )
    written = samples.with_columns(
        overrides.alias("metaxy_data_version_by_field"),
        pl.Series(["dv0", "dv1", None], dtype=pl.String).alias("metaxy_data_version"),
    )
    plan = graph.get_feature_plan("video/raw")
    reference = mx.versioning.finalize_versions(written.lazy(), plan, local.hash_algorithm, local.hash_truncation_length).collect()
    full = pl.Series([{"audio": a or "x", "frames": f} for a, f in zip(["A0", None, "A2"], ["F0", "F1", "F2"])], dtype=prov.dtype)
    complete = samples.with_columns(full.alias("metaxy_data_version_by_field"), pl.lit("dv").alias("metaxy_data_version"))
    with local.open("w"):
        local.write("video/raw", written)
        stored = local.read("video/raw").collect().to_native().sort("video_id")
        columns = ["metaxy_provenance", "metaxy_data_version_by_field", "metaxy_data_version"]
        assert stored.select(columns).equals(reference.sort("video_id").select(columns))
        assert stored["metaxy_data_version_by_field"].struct.field("audio").to_list()[1] == prov[1]["audio"]
        assert stored["metaxy_data_version"].to_list()[:2] == ["dv0", "dv1"]
        local.write("video/raw", complete)  # no nulls: stored exactly as given
        again = local.read("video/raw").collect().to_native().sort("video_id")
        assert again["metaxy_data_version"].to_list() == ["dv"] * 3
        assert again["metaxy_data_version_by_field"].equals(complete.sort("video_id")["metaxy_data_version_by_field"])


def test_soft_delete_rereads_when_a_writer_commits_before_its_tombstones(
    local: mx.DeltaMetadataStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sample re-written between the delete's read and its commit (here: moved to a path
    the filter no longer matches) stays visible; the delete reads the rows again."""
    from metaxy_delta.store import _writes

    real = _writes.next_timestamp
    moved = video_samples(1, start=1).with_columns(path=pl.lit("s3://videos/moved.mp4"))
    raced: list[int] = []

    def racing_writer(table: Any, *args: Any) -> Any:
        if not raced:  # once: another writer commits right after the delete's first read
            raced.append(1)
            local.write("video/raw", moved)
        return real(table, *args)

    with local.open("w"):
        local.write("video/raw", video_samples(3))
        monkeypatch.setattr(_writes, "next_timestamp", racing_writer)
        result = local.delete("video/raw", ["path = 's3://videos/v0001.mp4'"])
        assert raced and result.rows == 0  # the second read found nothing to delete
        rows = local.read("video/raw").collect().to_native().sort("video_id")
        assert rows["video_id"].to_list() == ["v0000", "v0001", "v0002"]
        assert rows["path"].to_list()[1] == "s3://videos/moved.mp4"


def test_resolve_update_takes_one_sql_string_per_feature(local: mx.DeltaMetadataStore) -> None:
    """``filters={feature: "sql"}`` is one filter (it used to be split into characters)."""
    with local.open("w"):
        local.write("video/raw", video_samples(6))
        one = local.resolve_update("video/transcript", filters={"video/raw": "video_id < 'v0002'"})
        listed = local.resolve_update(
            "video/transcript", filters={"video/raw": ["video_id < 'v0002'"]}
        )
    assert ids(one.new) == ids(listed.new) == ["v0000", "v0001"]


@pytest.mark.parametrize("algorithm", [mx.HashAlgorithm.XXHASH32, mx.HashAlgorithm.XXHASH64, mx.HashAlgorithm.SHA256])
def test_written_provenance_is_the_structs_hash_whatever_the_frame_carries(tmp_path: Path, pipeline: mx.FeatureGraph, algorithm: mx.HashAlgorithm) -> None:
    """Metaxy stores a given ``metaxy_provenance`` unchecked (spec §7.13); we store the struct's
    hash. A frame whose column already is that hash (as ``resolve_update`` gives it) keeps it
    without formatting the hashes again; one wrong row makes the write recompute the column."""
    from metaxy_delta.store._frames import provenance_is_current
    from metaxy_delta.versioning._hashing import hash_struct_values

    store = mx.DeltaMetadataStore(tmp_path / "dev", hash_algorithm=algorithm)
    plan = pipeline.get_feature_plan("video/raw")
    names = ["audio", "frames"]
    samples = video_samples(300)
    if algorithm is mx.HashAlgorithm.XXHASH32:  # a row whose hash has 7 digits: checked exactly
        short = next(f"s{i}" for i in range(10_000) if pl.select(pl.lit(f"a|s{i}").nchash.xxhash32()).item() < 10**7)
        samples = samples.with_columns(pl.Series([{"audio": "a", "frames": short}] + samples["metaxy_provenance_by_field"].to_list()[1:]).alias("metaxy_provenance_by_field"))
    right = samples.with_columns(hash_struct_values(pl.col("metaxy_provenance_by_field"), names, algorithm, 8).alias("metaxy_provenance"))
    if algorithm is mx.HashAlgorithm.XXHASH32:
        assert len(right["metaxy_provenance"][0]) == 7
    wrong = right.with_columns(pl.when(pl.int_range(pl.len()) == 150).then(pl.lit("12345678")).otherwise(pl.col("metaxy_provenance")).alias("metaxy_provenance"))
    assert provenance_is_current(right, plan, algorithm, 8) is (algorithm is not mx.HashAlgorithm.SHA256)
    assert provenance_is_current(wrong, plan, algorithm, 8) is False
    assert provenance_is_current(right.drop("metaxy_provenance"), plan, algorithm, 8) is False
    with store.open("w"):
        for frame in (wrong, right):
            store.write("video/raw", frame)
            stored = store.read("video/raw").collect().to_native().sort("video_id")
            assert stored["metaxy_provenance"].equals(right.sort("video_id")["metaxy_provenance"])
