"""Parquet settings of the data files the store encodes with Polars, and the ``writer_properties``
Polars can honour.

Appends encode their files with Polars (see ``_files``): in a local store with
:data:`LOCAL_PARQUET_OPTIONS` (LZ4_RAW), on object storage with :data:`PARQUET_OPTIONS` (zstd
level 1); null counts only in the footers (:func:`default_writer_properties` picks).
``delta_write_options={"writer_properties": ...}`` that only chooses a codec
(``WriterProperties(compression="LZ4_RAW")``, ``"ZSTD"`` with a level, ``"SNAPPY"``, ``"GZIP"``,
``"BROTLI"``, ``"UNCOMPRESSED"``) keeps that path with the chosen codec; any other setting (page
or row-group sizes, column properties, statistics, the legacy Hadoop ``"LZ4"`` framing Polars
cannot write) hands the write to delta-rs, which encodes on one thread.

Example:
    >>> from deltalake import WriterProperties
    >>> polars_options(WriterProperties(compression="LZ4_RAW"))["compression"]
    'lz4'
    >>> zstd3 = WriterProperties(compression="ZSTD", compression_level=3)
    >>> polars_options(zstd3)["compression_level"]
    3
    >>> polars_options(WriterProperties(compression="ZSTD", max_row_group_size=1000)) is None
    True
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from deltalake import BloomFilterProperties, ColumnProperties, WriterProperties

DEFAULT_WRITER_PROPERTIES = WriterProperties(
    compression="ZSTD",
    compression_level=1,
    default_column_properties=ColumnProperties(dictionary_enabled=False),
)
"""Parquet settings of a store on object storage (``s3://``, ...): zstd level 1 without
dictionaries.

Metadata columns are mostly high-cardinality hash strings, where dictionaries are wasted work.
On 1M rows of the benchmark's root feature this writes files 2.3x smaller than delta-rs's
default (snappy, dictionaries) in about 25 % less time; where every byte crosses a network,
half the bytes are worth zstd's CPU time. Files written by Polars use the same codec and level.
"""

LOCAL_WRITER_PROPERTIES = WriterProperties(
    compression="LZ4_RAW",
    default_column_properties=ColumnProperties(dictionary_enabled=False),
)
"""Parquet settings of a store on a local disk: LZ4_RAW without dictionaries.

On a local disk writes and reads are bound by the CPU, not by the bytes: zstd spends ~65 % of
the Parquet encoding in compression of the hash columns (decimal digits with a length prefix
each, which zstd compresses at ~220 MB/s a core here), LZ4 about a third of that. Through the
store, 10M rows, codecs interleaved (2 cores, benchmarks README, 2026-12-06): the leaf write
1.84-1.94 s instead of 2.22-2.38 s (wide: mostly 2.6-2.7 s instead of 3.0-3.2 s), the root
write 4-14 % faster, resolves up to 5 % faster; the files are 2.1x zstd's size, about as large
as Metaxy's (delta-rs's snappy with dictionaries). Every current Parquet reader reads LZ4_RAW
(Polars, delta-rs, pyarrow, DuckDB, Spark 3.4+); ``delta_write_options={"writer_properties":
WriterProperties(compression="ZSTD", compression_level=1)}`` makes a local store write zstd.
"""

PARQUET_STATISTICS = {"min": False, "max": False, "distinct_count": False, "null_count": True}
"""Row-group statistics Polars writes into the Parquet footers: null counts only.

Readers of the store skip data through the Delta log instead: partition values and the file
statistics of ``_stats`` (min/max per file) are what Polars' ``scan_delta`` and delta-rs's
``DELETE`` prune with. Row-group min/max would be a second copy, per row group, of bounds that
rarely prune inside a file of one write, and cost ~10 % of the encoding (10M rows: ~0.2-0.3 s).
Pass ``delta_write_options={"writer_properties": ...}`` with more than a codec to have delta-rs
write the files, with its own statistics, instead.
"""

PARQUET_OPTIONS: dict[str, Any] = {
    "compression": "zstd",
    "compression_level": 1,
    "statistics": PARQUET_STATISTICS,
}
"""``write_parquet`` options of :data:`DEFAULT_WRITER_PROPERTIES` (plus each file's
``row_group_size``)."""

LOCAL_PARQUET_OPTIONS: dict[str, Any] = {"compression": "lz4", "statistics": PARQUET_STATISTICS}
"""``write_parquet`` options of :data:`LOCAL_WRITER_PROPERTIES`."""


LOCAL_SCHEMES = ("file://", "local://")
"""URI schemes of local paths (a store's root path drops them, see ``_base.normalise_root``)."""


def default_writer_properties(uri: str) -> WriterProperties:
    """The Parquet settings of a store or table at ``uri`` that sets none of its own:
    :data:`LOCAL_WRITER_PROPERTIES` on a local disk, :data:`DEFAULT_WRITER_PROPERTIES` on
    object storage.

    Example:
        >>> default_writer_properties("/data/metaxy").compression
        'LZ4_RAW'
        >>> default_writer_properties("s3://bucket/metaxy").compression
        'ZSTD(1)'
    """
    local = "://" not in uri or uri.startswith(LOCAL_SCHEMES)
    return LOCAL_WRITER_PROPERTIES if local else DEFAULT_WRITER_PROPERTIES

_CODECS = {
    # delta-rs name: (Polars name, levels Polars accepts, file-name suffix as delta-rs writes it)
    "UNCOMPRESSED": ("uncompressed", None, ""),
    "SNAPPY": ("snappy", None, ".snappy"),
    "LZ4_RAW": ("lz4", None, ".lz4raw"),
    "GZIP": ("gzip", range(0, 10), ".gz"),
    "BROTLI": ("brotli", range(0, 12), ".br"),
    "ZSTD": ("zstd", range(1, 23), ".zstd"),
}
_SUFFIXES = {polars: suffix for polars, _, suffix in _CODECS.values()}
_CODEC = re.compile(r"([A-Z0-9_]+)(?:\((-?\d+)\))?")


def writer_properties_from(value: Any) -> WriterProperties:
    """``delta_write_options["writer_properties"]`` as a :class:`deltalake.WriterProperties`.

    A mapping (as a ``metaxy.toml`` store's ``delta_write_options`` gives it) is turned into
    one, with nested mappings for ``default_column_properties``, ``column_properties`` and
    their ``bloom_filter_properties``; delta-rs itself would fail on it with an
    ``AttributeError`` at the first write.

    Raises:
        ValueError: An unknown setting or value, naming it.

    Example:
        >>> writer_properties_from({"compression": "LZ4_RAW"}).compression
        'LZ4_RAW'
        >>> writer_properties_from({"compresion": "ZSTD"})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ValueError: delta_write_options.writer_properties: ...unexpected keyword argument...
    """
    if isinstance(value, WriterProperties):
        return value
    if not isinstance(value, Mapping):
        msg = (
            "delta_write_options.writer_properties must be a deltalake.WriterProperties or a "
            f"mapping of its settings, got {type(value).__name__}"
        )
        raise ValueError(msg)
    settings = dict(value)
    try:
        if isinstance(default := settings.get("default_column_properties"), Mapping):
            settings["default_column_properties"] = _column_properties(default)
        if isinstance(columns := settings.get("column_properties"), Mapping):
            settings["column_properties"] = {
                name: _column_properties(c) if isinstance(c, Mapping) else c
                for name, c in columns.items()
            }
        return WriterProperties(**settings)
    except (TypeError, ValueError) as err:
        raise ValueError(f"delta_write_options.writer_properties: {err}") from None


def _column_properties(value: Mapping[str, Any]) -> ColumnProperties:
    settings = dict(value)
    if isinstance(bloom := settings.get("bloom_filter_properties"), Mapping):
        settings["bloom_filter_properties"] = BloomFilterProperties(**bloom)
    return ColumnProperties(**settings)


def polars_options(writer_properties: WriterProperties | None) -> dict[str, Any] | None:
    """The ``write_parquet`` options for ``writer_properties``; ``None`` if only delta-rs can
    honour them.

    ``None`` and :data:`DEFAULT_WRITER_PROPERTIES` give :data:`PARQUET_OPTIONS`,
    :data:`LOCAL_WRITER_PROPERTIES` :data:`LOCAL_PARQUET_OPTIONS`; properties that set nothing
    but ``compression`` (and its level) give those options with that codec.
    """
    if writer_properties is None or writer_properties is DEFAULT_WRITER_PROPERTIES:
        return PARQUET_OPTIONS
    if writer_properties is LOCAL_WRITER_PROPERTIES:
        return LOCAL_PARQUET_OPTIONS
    if not isinstance(writer_properties, WriterProperties):
        return None  # e.g. a mapping from a config file: delta-rs decides what it means
    try:
        settings = {k: v for k, v in vars(writer_properties).items() if v is not None}
    except TypeError:  # a deltalake whose WriterProperties has no __dict__: let it write
        return None
    codec = settings.pop("compression", None)
    if settings or not isinstance(codec, str):
        return None
    match = _CODEC.fullmatch(codec.upper())
    if match is None or match[1] not in _CODECS:
        return None
    name, levels, _ = _CODECS[match[1]]
    options: dict[str, Any] = {"compression": name, "statistics": PARQUET_STATISTICS}
    if match[2] is not None:
        level = int(match[2])
        if levels is None or level not in levels:
            return None
        options["compression_level"] = level
    return options


def file_suffix(options: dict[str, Any]) -> str:
    """The codec part of a data file's name, as delta-rs names its files (``.zstd``, ``""``).

    Example:
        >>> file_suffix(PARQUET_OPTIONS), file_suffix({"compression": "uncompressed"})
        ('.zstd', '')
    """
    return _SUFFIXES[options["compression"]]


def options_key(options: dict[str, Any]) -> tuple[str, int | None]:
    """The codec and level of ``options``: hashable, for per-codec caches.

    Example:
        >>> options_from_key(options_key(PARQUET_OPTIONS)) == PARQUET_OPTIONS
        True
    """
    return options["compression"], options.get("compression_level")


def options_from_key(key: tuple[str, int | None]) -> dict[str, Any]:
    """The options :func:`options_key` summarised."""
    options: dict[str, Any] = {"compression": key[0], "statistics": PARQUET_STATISTICS}
    if key[1] is not None:
        options["compression_level"] = key[1]
    return options
