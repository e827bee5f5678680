"""Which ``writer_properties`` Polars' encoder honours (``store._codecs``)."""

from __future__ import annotations

import pytest
from deltalake import ColumnProperties, WriterProperties

from metaxy_delta.store._codecs import (
    DEFAULT_WRITER_PROPERTIES,
    LOCAL_PARQUET_OPTIONS,
    LOCAL_WRITER_PROPERTIES,
    PARQUET_OPTIONS,
    default_writer_properties,
    file_suffix,
    polars_options,
)


@pytest.mark.parametrize(
    ("properties", "compression", "level", "suffix"),
    [
        (WriterProperties(compression="SNAPPY"), "snappy", None, ".snappy"),
        (WriterProperties(compression="lz4_raw"), "lz4", None, ".lz4raw"),
        (WriterProperties(compression="UNCOMPRESSED"), "uncompressed", None, ""),
        (WriterProperties(compression="ZSTD"), "zstd", 1, ".zstd"),
        (WriterProperties(compression="ZSTD", compression_level=7), "zstd", 7, ".zstd"),
        (WriterProperties(compression="GZIP", compression_level=4), "gzip", 4, ".gz"),
        (WriterProperties(compression="BROTLI", compression_level=5), "brotli", 5, ".br"),
    ],
)
def test_a_codec_alone_maps_to_polars_options(
    properties: WriterProperties, compression: str, level: int | None, suffix: str
) -> None:
    options = polars_options(properties)
    assert options is not None
    assert options["compression"] == compression
    assert options.get("compression_level") == level
    assert options["statistics"] == PARQUET_OPTIONS["statistics"]
    assert file_suffix(options) == suffix


@pytest.mark.parametrize(
    "properties",
    [
        WriterProperties(compression="LZ4"),  # Hadoop framing: Polars writes LZ4_RAW only
        WriterProperties(compression="ZSTD", max_row_group_size=10_000),
        WriterProperties(compression="SNAPPY", data_page_size_limit=2**20),
        WriterProperties(compression="ZSTD", default_column_properties=ColumnProperties(dictionary_enabled=True)),
        WriterProperties(),  # delta-rs's own defaults (snappy with dictionaries), asked for explicitly
        {"compression": "ZSTD"},  # not a WriterProperties: left to write_deltalake to judge
    ],
)
def test_anything_more_than_a_codec_is_left_to_delta_rs(properties: object) -> None:
    assert polars_options(properties) is None


def test_the_default_properties_are_the_store_defaults() -> None:
    assert polars_options(None) is PARQUET_OPTIONS
    assert polars_options(DEFAULT_WRITER_PROPERTIES) is PARQUET_OPTIONS
    assert PARQUET_OPTIONS["compression"] == "zstd" and PARQUET_OPTIONS["compression_level"] == 1
    assert polars_options(LOCAL_WRITER_PROPERTIES) is LOCAL_PARQUET_OPTIONS
    assert LOCAL_PARQUET_OPTIONS["compression"] == "lz4" and file_suffix(LOCAL_PARQUET_OPTIONS) == ".lz4raw"
    assert LOCAL_PARQUET_OPTIONS["statistics"] == PARQUET_OPTIONS["statistics"]


@pytest.mark.parametrize(
    ("uri", "local"),
    [("/data/metaxy/a.delta", True), ("file:///data/metaxy", True), ("relative/dir", True), ("local:///x", True),
     ("s3://bucket/prefix", False), ("gs://bucket/x", False), ("az://container/x", False),
     ("abfss://c@account.dfs.core.windows.net/x", False)],
)  # fmt: skip
def test_local_stores_default_to_lz4_and_object_stores_to_zstd(uri: str, local: bool) -> None:
    expected = LOCAL_WRITER_PROPERTIES if local else DEFAULT_WRITER_PROPERTIES
    assert default_writer_properties(uri) is expected
