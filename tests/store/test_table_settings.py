"""Settings of the tables the store creates: checkpoint interval (default 10) and Parquet codec."""

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


def _codecs(root: Path) -> set[str]:
    import pyarrow.parquet as pq

    codecs = set()
    for path in (root / "video" / "raw.delta").rglob("*.parquet"):
        if "_delta_log" in path.parts:
            continue
        meta = pq.ParquetFile(path).metadata
        codecs |= {meta.row_group(0).column(i).compression for i in range(meta.num_columns)}
    return codecs


def test_data_files_are_zstd_by_default(tmp_path: Path, pipeline: mx.FeatureGraph) -> None:
    _write(mx.DeltaMetadataStore(tmp_path / "default"), 2)
    assert _codecs(tmp_path / "default") == {"ZSTD"}
    from deltalake import WriterProperties

    custom = mx.DeltaMetadataStore(
        tmp_path / "custom", delta_write_options={"writer_properties": WriterProperties(compression="SNAPPY")}
    )
    _write(custom, 1)
    assert _codecs(tmp_path / "custom") == {"SNAPPY"}
