"""Settings of the tables the store creates: checkpoint interval (default 10) and Parquet codec
(chosen with ``writer_properties``; a codec alone keeps Polars' encoder)."""

from __future__ import annotations

from pathlib import Path

import pytest
from deltalake import DeltaTable

import metaxy_delta as mx
from tests.store.conftest import video_samples


def _write(store: mx.DeltaMetadataStore, times: int) -> None:
    with store.open("w"):
        for i in range(times):
            store.write("video/raw", video_samples(1, start=i))


def _checkpoints(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "video" / "raw.delta" / "_delta_log").glob("*.checkpoint.parquet"))


def test_default_interval_writes_checkpoints(tmp_path: Path, pipeline: mx.FeatureGraph) -> None:
    store = mx.DeltaMetadataStore(tmp_path)
    _write(store, 12)
    table = DeltaTable(store.table_uri("video/raw"))
    assert table.metadata().configuration["delta.checkpointInterval"] == "10"
    assert _checkpoints(tmp_path), "no checkpoint after 12 commits"
    with store.open("r"):
        assert store.read("video/raw").collect().shape[0] == 12


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"checkpoint_interval": None}, None),
        ({"checkpoint_interval": 3}, "3"),
        ({"delta_write_options": {"configuration": {"delta.checkpointInterval": "50"}}}, "50"),
    ],
)
def test_interval_is_configurable(
    tmp_path: Path, pipeline: mx.FeatureGraph, kwargs: dict[str, object], expected: str | None
) -> None:
    store = mx.DeltaMetadataStore(tmp_path, **kwargs)  # type: ignore[arg-type]
    _write(store, 5)
    configuration = DeltaTable(store.table_uri("video/raw")).metadata().configuration
    assert configuration.get("delta.checkpointInterval") == expected
    assert bool(_checkpoints(tmp_path)) == (expected == "3")


def test_config_model_accepts_the_interval() -> None:
    config = mx.DeltaMetadataStoreConfig(root_path="/tmp/x", checkpoint_interval=25)
    assert mx.DeltaMetadataStore.from_config(config).checkpoint_interval == 25
    with pytest.raises(ValueError, match="checkpoint_interval"):
        mx.DeltaMetadataStoreConfig(root_path="/tmp/x", checkpoint_interval=0)


def _files(root: Path) -> list[Path]:
    return [p for p in (root / "video" / "raw.delta").rglob("*.parquet") if "_delta_log" not in p.parts]


def _codecs(root: Path) -> set[str]:
    import pyarrow.parquet as pq

    codecs = set()
    for path in _files(root):
        meta = pq.ParquetFile(path).metadata
        codecs |= {meta.row_group(0).column(i).compression for i in range(meta.num_columns)}
    return codecs


def test_data_files_are_lz4_on_a_local_disk_by_default(tmp_path: Path, pipeline: mx.FeatureGraph) -> None:
    _write(mx.DeltaMetadataStore(tmp_path / "default"), 2)
    assert _codecs(tmp_path / "default") == {"LZ4"}  # pyarrow's name of LZ4_RAW
    assert all(f.name.endswith(".lz4raw.parquet") for f in _files(tmp_path / "default"))
    from deltalake import WriterProperties

    custom = mx.DeltaMetadataStore(
        tmp_path / "custom", delta_write_options={"writer_properties": WriterProperties(compression="SNAPPY")}
    )
    _write(custom, 1)
    assert _codecs(tmp_path / "custom") == {"SNAPPY"}


def test_data_files_are_zstd_on_object_storage_by_default(store: mx.DeltaMetadataStore) -> None:
    """A store on S3 writes zstd (half the bytes of LZ4 to move), a local one LZ4_RAW (see
    ``_codecs``): the same code, the codec picked by the root URI."""
    _write(store, 2)
    table = DeltaTable(store.table_uri("video/raw"), storage_options=store.storage_options)
    names = [uri.rsplit("/", 1)[-1] for uri in table.file_uris()]
    suffix = ".zstd.parquet" if store.root_path.startswith("s3://") else ".lz4raw.parquet"
    assert len(names) == 2 and all(name.endswith(suffix) for name in names), names
    with store.open("r"):
        assert sorted(store.read("video/raw").collect().to_native()["video_id"]) == ["v0000", "v0001"]


@pytest.mark.parametrize(
    ("codec", "reported", "suffix"),
    [("LZ4_RAW", "LZ4", ".lz4raw.parquet"), ("UNCOMPRESSED", "UNCOMPRESSED", "-c000.parquet")],
)
def test_a_codec_only_writer_properties_keeps_polars_encoder(
    tmp_path: Path, pipeline: mx.FeatureGraph, codec: str, reported: str, suffix: str
) -> None:
    """Choosing a codec does not hand the write to delta-rs's single-threaded encoder."""
    import pyarrow.parquet as pq
    from deltalake import WriterProperties

    options = {"writer_properties": WriterProperties(compression=codec)}
    store = mx.DeltaMetadataStore(tmp_path, delta_write_options=options)
    _write(store, 2)
    files = _files(tmp_path)
    assert len(files) == 2 and all(f.name.endswith(suffix) for f in files)
    assert {pq.ParquetFile(f).metadata.created_by.split()[0] for f in files} == {"Polars"}
    assert _codecs(tmp_path) == {reported}
    with store.open("r"):
        assert sorted(store.read("video/raw").collect().to_native()["video_id"]) == ["v0000", "v0001"]


def test_other_writer_properties_go_to_delta_rs(tmp_path: Path, pipeline: mx.FeatureGraph) -> None:
    import pyarrow.parquet as pq
    from deltalake import WriterProperties

    properties = WriterProperties(compression="ZSTD", compression_level=3, max_row_group_size=1000)
    _write(mx.DeltaMetadataStore(tmp_path, delta_write_options={"writer_properties": properties}), 1)
    (file,) = _files(tmp_path)
    assert not pq.ParquetFile(file).metadata.created_by.startswith("Polars")
    assert _codecs(tmp_path) == {"ZSTD"}


def _live_codecs(store: mx.DeltaMetadataStore) -> set[str]:
    """Codecs of the files in the table's latest version (not the ones a rewrite removed)."""
    import pyarrow.parquet as pq

    table = DeltaTable(store.table_uri("video/raw"))
    codecs = set()
    for uri in table.file_uris():
        meta = pq.ParquetFile(uri.removeprefix("file://")).metadata
        codecs |= {meta.row_group(0).column(i).compression for i in range(meta.num_columns)}
    return codecs


@pytest.mark.parametrize(("codec", "reported"), [(None, "LZ4"), ("ZSTD", "ZSTD")])
def test_optimize_and_hard_deletes_rewrite_files_with_the_store_codec(
    tmp_path: Path, pipeline: mx.FeatureGraph, codec: str | None, reported: str
) -> None:
    """delta-rs would rewrite with its own default (snappy with dictionaries, twice the size of
    zstd on hash columns); the store passes its writer properties to every rewrite."""
    from deltalake import WriterProperties

    options = {} if codec is None else {"writer_properties": WriterProperties(compression=codec)}
    store = mx.DeltaMetadataStore(tmp_path, delta_write_options=options)
    with store.open("w"):
        for i in range(3):
            store.write("video/raw", video_samples(2, start=2 * i))
        assert store.optimize("video/raw")["video/raw"]["numFilesAdded"] == 1
        assert _live_codecs(store) == {reported}
        store.delete("video/raw", filters=["video_id = 'v0001'"], soft=False)
        assert _live_codecs(store) == {reported}
        ids = store.read("video/raw").collect().to_native()["video_id"].sort().to_list()
    assert ids == ["v0000", "v0002", "v0003", "v0004", "v0005"]


def test_writer_properties_from_metaxy_toml(tmp_path: Path, pipeline: mx.FeatureGraph, monkeypatch: pytest.MonkeyPatch) -> None:
    """A TOML table for ``writer_properties`` (delta-rs would fail on a dict) becomes a
    ``WriterProperties``; with only a codec the write keeps Polars' encoder."""
    (tmp_path / "metaxy.toml").write_text(
        f"""
store = "dev"
[stores.dev]
type = "delta"
[stores.dev.config]
root_path = "{tmp_path / 'store'}"
[stores.dev.config.delta_write_options.writer_properties]
compression = "LZ4_RAW"
"""
    )
    monkeypatch.chdir(tmp_path)
    config = mx.MetaxyConfig.load()
    try:
        store = config.get_store()
        _write(store, 1)
    finally:
        mx.MetaxyConfig.reset()
    assert _codecs(tmp_path / "store") == {"LZ4"}


def test_malformed_writer_properties_are_refused_when_the_store_is_built(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="writer_properties.*compresion"):
        mx.DeltaMetadataStore(tmp_path, delta_write_options={"writer_properties": {"compresion": "ZSTD"}})
    with pytest.raises(ValueError, match="writer_properties.*NOPE"):
        mx.DeltaMetadataStore(tmp_path, delta_write_options={"writer_properties": {"compression": "NOPE"}})
    with pytest.raises(ValueError, match="WriterProperties or a mapping"):
        mx.DeltaMetadataStore(tmp_path, delta_write_options={"writer_properties": "zstd"})
    assert not any(tmp_path.iterdir())
