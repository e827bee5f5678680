"""The same round-trip suite on a local path and on the moto S3 endpoint."""

from __future__ import annotations

import polars as pl
import pytest

import metaxy_delta as mx
from tests.store.conftest import ids, video_samples


def test_write_read_resolve_delete_timetravel_maintenance(store: mx.DeltaMetadataStore) -> None:
    with store.open("w"):
        inc = store.resolve_update("video/raw", samples=video_samples(6))
        assert (len(inc.new), len(inc.stale), len(inc.orphaned)) == (6, 0, 0)
        first = store.write("video/raw", inc.new)
        assert first.version == 0 and first.rows == 6
        assert ids(store.read("video/raw")) == [f"v{i:04d}" for i in range(6)]

        leaf = store.resolve_update("video/transcript")
        assert len(leaf.new) == 6
        store.write("video/transcript", leaf.new.to_native().with_columns(text=pl.lit("hello")))
        assert len(store.resolve_update("video/transcript").new) == 0

        # 2 samples change their audio upstream, one disappears, one is added
        changed = pl.concat([video_samples(2, audio_suffix="-v2"), video_samples(3, start=2), video_samples(1, start=6)])
        root = store.resolve_update("video/raw", samples=changed)
        assert ids(root.new) == ["v0006"] and ids(root.stale) == ["v0000", "v0001"] and ids(root.orphaned) == ["v0005"]
        store.write("video/raw", pl.concat([root.new.to_native(), root.stale.to_native()]))
        leaf = store.resolve_update("video/transcript")
        assert ids(leaf.stale) == ["v0000", "v0001"] and ids(leaf.new) == ["v0006"]
        assert len(store.resolve_update("video/thumb").new) == 7  # never written
        version_before_delete = store.version("video/raw")

        soft = store.delete("video/raw", ["video_id = 'v0003'"])
        assert soft.rows == 1 and soft.version == version_before_delete + 1
        assert "v0003" not in ids(store.read("video/raw"))
        assert "v0003" in ids(store.read("video/raw", include_soft_deleted=True))
        assert "v0003" in ids(store.read("video/raw", version=version_before_delete))

        hard = store.delete("video/raw", ["video_id = 'v0004'"], soft=False)
        assert hard.rows == 1 and not hard.soft
        all_rows = store.read("video/raw", with_sample_history=True, include_soft_deleted=True).collect()
        assert "v0004" not in all_rows["video_id"].to_list()
        assert "v0004" in ids(store.read("video/raw", version=version_before_delete))

        history = store.history("video/raw")
        assert [h["operation"] for h in history[:2]] == ["DELETE", "WRITE"]
        expected = ids(store.read("video/raw"))
        metrics = store.optimize("video/raw")["video/raw"]
        assert metrics["numFilesRemoved"] > metrics["numFilesAdded"] >= 1
        assert ids(store.read("video/raw")) == expected
        dry = store.vacuum("video/raw", retention_hours=0, enforce_retention_duration=False, dry_run=True)
        assert dry["video/raw"]["num_files"] >= 1
        store.vacuum("video/raw", retention_hours=0, enforce_retention_duration=False)
        assert ids(store.read("video/raw")) == expected
        assert store.checkpoint("video/raw")["version"] == store.version("video/raw")


def test_modes_and_missing_features(store: mx.DeltaMetadataStore) -> None:
    with pytest.raises(mx.StoreNotOpenError, match="not open"):
        store.read("video/raw")
    with store.open("r"):
        with pytest.raises(mx.StoreNotOpenError, match="read mode"):
            store.write("video/raw", video_samples(1))
        with pytest.raises(mx.FeatureNotFoundError, match="video/raw.delta"):
            store.read("video/raw")
        assert not store.has_feature("video/raw")
    with store.open("w"), store.open("r"):
        assert store.is_open


def test_bad_writes_raise_and_write_nothing(store: mx.DeltaMetadataStore) -> None:
    with store.open("w"):
        store.write("video/raw", video_samples(2))
        version = store.version("video/raw")
        bad_frames = {
            "video_id": video_samples(2).drop("video_id"),
            "metaxy_provenance_by_field": video_samples(2).drop("metaxy_provenance_by_field"),
        }
        for column, frame in bad_frames.items():
            with pytest.raises(mx.MetadataSchemaError, match=column) as err:
                store.write("video/raw", frame)
            assert err.value.feature == "video/raw" and err.value.column == column
        with pytest.raises(mx.MetadataSchemaError, match="null"):
            store.write("video/raw", video_samples(2).with_columns(video_id=pl.lit(None, pl.String)))
        with pytest.raises(mx.MetadataSchemaError, match="share ID values"):
            store.write("video/raw", pl.concat([video_samples(2), video_samples(2)]))
        wrong_struct = video_samples(1).with_columns(metaxy_provenance_by_field=pl.lit({"audio": "x"}))
        with pytest.raises(mx.MetadataSchemaError, match="missing: \\['frames'\\]"):
            store.write("video/raw", wrong_struct)
        null_field = video_samples(2).with_columns(
            metaxy_provenance_by_field=pl.struct(audio=pl.lit(None, pl.String), frames=pl.lit("f"))
        )
        with pytest.raises(mx.MetadataSchemaError, match="metaxy_provenance_by_field.audio is null"):
            store.write("video/raw", null_field)
        null_struct = video_samples(2).with_columns(
            metaxy_provenance_by_field=pl.when(pl.col("video_id") == "v0000").then(pl.col("metaxy_provenance_by_field"))
        )
        with pytest.raises(mx.MetadataSchemaError, match="metaxy_provenance_by_field is null in 1 row"):
            store.write("video/raw", null_struct)
        with pytest.raises(mx.FilterParseError):
            store.delete("video/raw", ["video_id = 'x'; DROP TABLE t"], soft=False)
        assert store.version("video/raw") == version
