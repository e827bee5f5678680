"""Partitioned features: reads, resolves and hard deletes of one partition touch only its files."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pytest
from deltalake import DeltaTable

import metaxy_delta as mx

N_PARTITIONS = 100
DAY = "2026-01-07"


def parquet_files(plan: str) -> set[str]:
    """Partitions of the Parquet files a Polars plan scans (``... N other sources`` counted)."""
    listed = set(re.findall(r"date=([0-9-]+)/", plan))
    others = sum(int(n) for n in re.findall(r"(\d+) other sources", plan))
    return listed | {f"<other {i}>" for i in range(others)}


@pytest.fixture
def partitioned(graph: mx.FeatureGraph, tmp_path: Path) -> mx.DeltaMetadataStore:
    class Raw(mx.BaseFeature, spec=mx.FeatureSpec(key="raw", id_columns=["sample_id"], fields=["a"], metadata={"partition_by": "date"})):
        sample_id: str
        date: str

    class Leaf(mx.BaseFeature, spec=mx.FeatureSpec(key="leaf", id_columns=["sample_id"], deps=[Raw], fields=["a"])):
        sample_id: str
        date: str

    store = mx.DeltaMetadataStore(tmp_path, partition_by={"leaf": ["date"]})
    days = [f"2026-{1 + i // 28:02d}-{1 + i % 28:02d}" for i in range(N_PARTITIONS)]
    samples = pl.DataFrame({
        "sample_id": [f"s{d}-{j}" for d in days for j in range(3)],
        "date": [d for d in days for _ in range(3)],
        "metaxy_provenance_by_field": [{"a": f"v{d}{j}"} for d in days for j in range(3)],
    })
    with store.open("w"):
        store.write("raw", samples)
        store.write("leaf", store.resolve_update("leaf").new)
    return store


def test_tables_are_partitioned(partitioned: mx.DeltaMetadataStore) -> None:
    for key in ("raw", "leaf"):
        table = DeltaTable(partitioned.table_uri(key))
        assert table.metadata().partition_columns == ["date"]
        assert len(table.partitions()) == N_PARTITIONS


def test_read_of_one_partition_scans_only_its_files(partitioned: mx.DeltaMetadataStore) -> None:
    with partitioned.open("r"):
        for filters in ([f"date = '{DAY}'"], [mx.parse_filter_string(f"date = '{DAY}'")]):
            lazy = partitioned.read("raw", filters=filters).to_native()
            assert parquet_files(lazy.explain()) == {DAY}
            assert set(lazy.collect()["date"]) == {DAY}
        assert len(parquet_files(partitioned.read("raw").to_native().explain())) == N_PARTITIONS


def test_resolve_of_one_partition_scans_only_its_files(partitioned: mx.DeltaMetadataStore) -> None:
    with partitioned.open("r"):
        inc = partitioned.resolve_update("leaf", global_filters=[f"date = '{DAY}'"], lazy=True)
        native = inc.to_polars()
        for frame in (native.new, native.stale, native.orphaned):
            assert parquet_files(frame.explain()) == {DAY}
        collected = inc.collect()
        assert (len(collected.new), len(collected.stale), len(collected.orphaned)) == (0, 0, 0)


def test_hard_delete_of_one_partition_rewrites_only_its_files(partitioned: mx.DeltaMetadataStore) -> None:
    uri = partitioned.table_uri("raw")
    before = set(DeltaTable(uri).file_uris())
    with partitioned.open("w"):
        result = partitioned.delete("raw", [f"date = '{DAY}'", f"sample_id = 's{DAY}-1'"], soft=False)
    after = set(DeltaTable(uri).file_uris())
    assert result.rows == 1
    changed = (before - after) | (after - before)
    assert changed and all(f"date={DAY}/" in path for path in changed)
    assert result.metrics["num_removed_files"] == len(before - after) == 1
