"""Edge cases found by an audit of the store against the spec (each test failed before its fix)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

import metaxy_delta as mx
from metaxy_delta.errors import FeatureNotFoundError, MetadataSchemaError, StoreNotOpenError
from tests.store.conftest import ids, video_samples

PBF = "metaxy_provenance_by_field"


def _raw(fields: list[str] | None = None) -> type[mx.BaseFeature]:
    class Raw(
        mx.BaseFeature,
        spec=mx.FeatureSpec(key="raw", id_columns=["sid"], fields=fields or ["default"]),
    ):
        sid: str

    return Raw


def _rows(sids: list[str], **columns: list[object]) -> pl.DataFrame:
    return pl.DataFrame({"sid": sids, **columns, PBF: [{"default": f"p-{s}"} for s in sids]})


def test_feature_version_filters_across_versions_see_only_the_latest_rows(tmp_path: Path) -> None:
    """With ``with_feature_history`` a filter on metaxy_feature_version runs after the
    latest-row selection (spec §4.4 step 8), like every other non-partition filter."""
    store = mx.DeltaMetadataStore(tmp_path)
    with mx.FeatureGraph().use() as g1:
        _raw(["default"])
        v1 = g1.get_feature_version("raw")
        with store.open("w"):
            store.write("raw", _rows(["a", "b"]))
    with mx.FeatureGraph().use() as g2:
        _raw(["default", "extra"])
        assert g2.get_feature_version("raw") != v1
        with store.open("w"):
            store.write("raw", pl.DataFrame({"sid": ["a"], PBF: [{"default": "q", "extra": "e"}]}))
            old = store.read(
                "raw", with_feature_history=True, filters=[f"metaxy_feature_version = '{v1}'"]
            )
            assert ids(old.collect().to_native().rename({"sid": "video_id"})) == ["b"]
            # scoped to the old version, its rows are read as before
            assert store.read("raw", feature_version=v1).collect().to_native()[
                "sid"
            ].sort().to_list() == ["a", "b"]


def test_read_of_the_current_version_drops_removed_struct_fields(tmp_path: Path) -> None:
    """Delta keeps the union of the struct fields; a current-version read shows only the
    feature's fields, so read → modify → write round-trips after a field was removed (§7.9)."""
    store = mx.DeltaMetadataStore(tmp_path)
    with mx.FeatureGraph().use():
        _raw(["audio", "frames"])
        with store.open("w"):
            store.write("raw", pl.DataFrame({"sid": ["a"], PBF: [{"audio": "A1", "frames": "F1"}]}))
    with mx.FeatureGraph().use():
        _raw(["audio"])
        with store.open("w"):
            store.write("raw", pl.DataFrame({"sid": ["b"], PBF: [{"audio": "A2"}]}))
            current = store.read("raw").collect().to_native()
            assert current.schema[PBF] == pl.Struct({"audio": pl.String})
            assert current.schema["metaxy_data_version_by_field"] == pl.Struct({"audio": pl.String})
            store.write("raw", current.with_columns(pl.lit("edited").alias("note")))
            assert store.read("raw").collect().to_native()["note"].to_list() == ["edited"]
            history = store.read("raw", with_feature_history=True).collect().to_native()
            assert set(history.schema[PBF].to_schema()) == {"audio", "frames"}  # type: ignore[attr-defined]


def test_fallback_chains_recurse_on_read(tmp_path: Path) -> None:
    with mx.FeatureGraph().use():
        raw = _raw()
        last = mx.DeltaMetadataStore(tmp_path / "b")
        middle = mx.DeltaMetadataStore(tmp_path / "a", fallback_stores=[last])
        primary = mx.DeltaMetadataStore(tmp_path / "p", fallback_stores=[middle])
        with last.open("w"):
            last.write(raw, _rows(["x"]))
        with primary.open("r"):
            assert primary.read(raw).collect().to_native()["sid"].to_list() == ["x"]
            assert primary.find_store_for_feature(raw) is last
            assert primary.find_store_for_feature(raw, check_fallback=False) is None
        with primary.open("r"), pytest.raises(FeatureNotFoundError):
            primary.read(raw, allow_fallback=False)


def test_a_fallback_hashing_differently_is_refused_on_first_use(tmp_path: Path) -> None:
    with mx.FeatureGraph().use():
        raw = _raw()
        prod = mx.DeltaMetadataStore(tmp_path / "prod", hash_algorithm="sha256")
        dev = mx.DeltaMetadataStore(tmp_path / "dev", fallback_stores=[prod])
        with prod.open("w"):
            prod.write(raw, _rows(["x"]))
        with dev.open("r"), pytest.raises(ValueError, match="sha256"):
            dev.read(raw)


def test_an_all_null_data_version_struct_is_filled_from_provenance(tmp_path: Path) -> None:
    store = mx.DeltaMetadataStore(tmp_path)
    with mx.FeatureGraph().use():
        raw = _raw()
        frame = _rows(["a"]).with_columns(pl.lit(None).alias("metaxy_data_version_by_field"))
        assert frame.schema["metaxy_data_version_by_field"] == pl.Null
        with store.open("w"):
            assert store.resolve_update(raw, samples=frame).new.to_native().height == 1
            store.write(raw, frame)
            row = store.read(raw).collect().to_native().row(0, named=True)
    assert row["metaxy_data_version_by_field"] == row[PBF] == {"default": "p-a"}
    assert row["metaxy_data_version"] == row["metaxy_provenance"]


def test_maintenance_that_commits_or_deletes_needs_write_mode(tmp_path: Path) -> None:
    with mx.FeatureGraph().use():
        raw = _raw()
        store = mx.DeltaMetadataStore(tmp_path)
        with store.open("w"):
            store.write(raw, _rows(["a"]))
            store.write(raw, _rows(["b"]))
        with store.open("r"):
            for call in (
                lambda: store.optimize(raw),
                lambda: store.vacuum(raw, retention_hours=0, enforce_retention_duration=False),
                lambda: store.checkpoint(raw),
            ):
                with pytest.raises(StoreNotOpenError, match="read mode"):
                    call()
            assert store.vacuum(raw, dry_run=True)["raw"]["dry_run"] is True
            assert store.version(raw) == 1
            assert store.read(raw, version=0).collect().to_native()["sid"].to_list() == ["a"]


def test_appends_to_a_partitioned_table_need_its_partition_columns(tmp_path: Path) -> None:
    with mx.FeatureGraph().use():
        raw = _raw()
        store = mx.DeltaMetadataStore(tmp_path, partition_by={"raw": ["date"]})
        with store.open("w"):
            store.write(raw, _rows(["a"], date=["d1"]))
            with pytest.raises(MetadataSchemaError, match="partition column 'date' is missing"):
                store.write(raw, _rows(["b"]))
            assert store.version(raw) == 0


def test_all_null_user_columns_take_the_stored_dtype_or_are_refused(tmp_path: Path) -> None:
    with mx.FeatureGraph().use():
        raw = _raw()
        store = mx.DeltaMetadataStore(tmp_path)
        with store.open("w"):
            store.write(raw, _rows(["a"], note=["x"]))
            store.write(raw, _rows(["b"], note=[None]))  # dtype Null: cast to the stored String
            notes = store.read(raw).collect().to_native().sort("sid")["note"].to_list()
            assert notes == ["x", None]
            with pytest.raises(MetadataSchemaError, match="'other' holds only nulls") as info:
                store.write(raw, _rows(["c"], other=[None]))
            assert info.value.column == "other"
            assert store.version(raw) == 1


def test_partition_filters_pick_the_latest_row_within_the_partition(tmp_path: Path) -> None:
    """Documented semantics of the partition push-down (see ``read``): a sample re-written into
    another partition keeps its older row visible in reads of the first partition."""
    with mx.FeatureGraph().use():
        raw = _raw()
        store = mx.DeltaMetadataStore(tmp_path, partition_by=["date"])
        with store.open("w"):
            store.write(raw, _rows(["a", "b"], date=["d1", "d1"]))
            store.write(raw, _rows(["a"], date=["d2"]))
            whole = store.read(raw).collect().to_native().sort("sid")
            assert whole.select("sid", "date").rows() == [("a", "d2"), ("b", "d1")]
            d1 = store.read(raw, filters=["date = 'd1'"]).collect().to_native().sort("sid")
            assert d1["sid"].to_list() == ["a", "b"]
            # a filter that is not on partition columns alone sees the table's latest rows only
            latest = store.read(raw, filters=["date = 'd1' OR sid = 'zzz'"]).collect().to_native()
            assert latest["sid"].to_list() == ["b"]
            # a soft delete of the sample hides it in both partitions (one tombstone in each)
            assert store.delete(raw, ["sid = 'a'"]).rows == 2
            assert store.read(raw).collect().to_native()["sid"].to_list() == ["b"]
            d1 = store.read(raw, filters=["date = 'd1'"]).collect().to_native()
            assert d1["sid"].to_list() == ["b"]
            assert store.read(raw, filters=["date = 'd2'"]).collect().to_native().height == 0


def test_write_multi_validates_every_frame_before_the_first_commit(
    tmp_path: Path, pipeline: mx.FeatureGraph
) -> None:
    """Metaxy writes the dependents before finding the upstream frame malformed."""
    store = mx.DeltaMetadataStore(tmp_path)
    transcript = pl.DataFrame({"video_id": ["v0"], "text": ["hi"], PBF: [{"audio": "a"}]})
    broken = video_samples(2).drop(PBF)
    with store.open("w"):
        with pytest.raises(MetadataSchemaError, match="video/raw"):
            store.write_multi({"video/raw": broken, "video/transcript": transcript})
        assert store.list_features() == []
        results = store.write_multi({"video/raw": video_samples(2), "video/transcript": transcript})
        assert [str(k) for k in results] == ["video/transcript", "video/raw"]
        assert ids(store.read("video/raw")) == ["v0000", "v0001"]
