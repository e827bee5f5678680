"""Time travel past a vacuum: tell it at load time, not at ``collect()``.

A past version's log entries outlive its data files: ``vacuum`` deletes the files that later
commits removed (once they are older than the retention window), while the commits that added
them stay in the log until log cleanup. Opening such a version succeeds, and the lazy scan only
fails when it is collected, with Polars' bare ``FileNotFoundError`` naming a Parquet path.

:func:`check_files_present` runs when a past version is opened. It compares the version's files
with the latest version's: files still in the latest version are never vacuumed, so when nothing
was removed since (appends only) it costs no storage request. Otherwise the removed files are
looked up, one HEAD request each, or one listing of the table when there are many, and a
:class:`~metaxy_delta.errors.MetadataStoreError` names the version, how many files are gone and
the latest version.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote

import pyarrow.fs as pafs
from deltalake import DeltaTable
from deltalake.fs import DeltaStorageHandler

from metaxy_delta.errors import MetadataStoreError

log = logging.getLogger(__name__)

HEAD_LIMIT = 32
"""Up to this many removed files are looked up one by one; more are found by one listing."""


@dataclass(frozen=True)
class TableFiles:
    """A version of a table and its data files (paths relative to the table root)."""

    version: int
    paths: frozenset[str]

    @classmethod
    def of(cls, table: DeltaTable) -> TableFiles:
        return cls(table.version(), frozenset(_paths(table)))


def check_files_present(
    past: DeltaTable, latest: TableFiles, uri: str, storage_options: Mapping[str, str] | None
) -> None:
    """Raise if data files of the ``past`` version were deleted (by a vacuum).

    Args:
        past: The table opened at a past version.
        latest: The files of the same table's latest version.
        uri: Table URI, for the storage requests and the message.
        storage_options: object_store options of the table.

    Raises:
        MetadataStoreError: Some files of ``past`` no longer exist.
    """
    if past.version() >= latest.version:
        return
    removed = _paths(past) - latest.paths
    if not removed:
        return
    handler = DeltaStorageHandler(uri, dict(storage_options) if storage_options else None)
    missing = sorted(removed - _existing(handler, removed))
    if not missing:
        return
    msg = (
        f"version {past.version()} of Delta table {uri} cannot be read: {len(missing)} of its "
        f"data files were deleted by a vacuum (for example {missing[0]!r}); time travel reaches "
        f"back only as far as the vacuum retention window; the latest version is {latest.version}"
    )
    raise MetadataStoreError(msg)


def _paths(table: DeltaTable) -> set[str]:
    """Data-file paths relative to the table root, as the storage handler addresses them."""
    paths = table.get_add_actions(flatten=False).column("path").to_pylist()
    return {unquote(path) for path in paths}


def _existing(handler: DeltaStorageHandler, paths: set[str]) -> set[str]:
    if len(paths) <= HEAD_LIMIT:
        infos = handler.get_file_info(sorted(paths))
    else:
        infos = handler.get_file_info_selector(pafs.FileSelector("", recursive=True))
    log.debug("checked %d removed data files for a time-travel read", len(paths))
    return {info.path for info in infos if info.type == pafs.FileType.File} & paths
