"""Which ``writer_properties`` Polars' encoder honours (``store._codecs``)."""

from __future__ import annotations

import pytest
from deltalake import ColumnProperties, WriterProperties

from metaxy_delta.store._codecs import (
    DEFAULT_WRITER_PROPERTIES,
    PARQUET_OPTIONS,
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
