"""Configuration model of :class:`~metaxy_delta.store.DeltaMetadataStore` (``[stores.X.config]``).

Field names are Metaxy's (``root_path``, ``storage_options``, ``layout``, ``hash_algorithm``,
``fallback_stores``, ``delta_write_options``), so a Metaxy ``metaxy.toml`` validates unchanged;
``partition_by``, ``max_commit_retries`` and ``checkpoint_interval`` are ours.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from metaxy_delta.models.constants import HashAlgorithm


class DeltaMetadataStoreConfig(BaseModel):
    """Options of a Delta metadata store.

    Example:
        >>> DeltaMetadataStoreConfig(root_path="s3://bucket/metaxy", layout="flat").layout
        'flat'
    """

    model_config = ConfigDict(extra="forbid")

    root_path: str | Path
    """Local directory or ``s3://bucket/prefix`` under which every feature gets a table."""
    storage_options: dict[str, str] | None = None
    """delta-rs / object_store options, e.g. ``AWS_ENDPOINT_URL``, ``AWS_REGION``."""
    layout: Literal["nested", "flat"] = "nested"
    """``nested``: ``root/a/b.delta``; ``flat``: ``root/a__b.delta``."""
    hash_algorithm: HashAlgorithm | None = None
    """Sample hash algorithm (default ``xxhash32``, as Metaxy's Delta store)."""
    fallback_stores: list[str] = Field(default_factory=list)
    """Names of stores (in the same config) read when a feature's table is absent here."""
    versioning_engine: Literal["auto", "native", "polars"] = "auto"
    """Accepted for Metaxy compatibility; the Delta store always uses the Polars engine."""
    delta_write_options: dict[str, object] | None = None
    """Extra keyword arguments for ``deltalake.write_deltalake`` (e.g. ``writer_properties``)."""
    partition_by: list[str] | dict[str, list[str]] | None = None
    """Delta partition columns: a list for every feature that has them, or per feature key."""
    max_commit_retries: int = Field(default=100, ge=0)
    """Commit-conflict retries per write (concurrent writers on one table)."""
    checkpoint_interval: int | None = Field(default=10, ge=1)
    """``delta.checkpointInterval`` of tables this store creates (``None``: delta-rs's 100)."""
