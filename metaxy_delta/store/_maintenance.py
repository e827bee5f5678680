"""Table maintenance of :class:`~metaxy_delta.store._table.DeltaTableRef`: vacuum, optimize, checkpoint.

A mixin, so the maintenance calls stay next to each other and out of the read/write code; it
uses the table's ``_require``, ``_errors`` and ``_retrying`` helpers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, TypeVar

from metaxy_delta.store._commits import (
    DEFAULT_ATTEMPTS,
    DEFAULT_MAX_COMMIT_RETRIES,
    commit_properties,
)

if TYPE_CHECKING:
    from deltalake import DeltaTable, WriterProperties

_T = TypeVar("_T")


class MaintenanceMixin:
    """``vacuum``, ``optimize`` and ``checkpoint`` of one Delta table."""

    if TYPE_CHECKING:

        def _require(self, version: int | None = None) -> DeltaTable: ...
        def _errors(self, action: str) -> AbstractContextManager[None]: ...
        def _retrying(self, action: str, operation: Callable[[], _T], attempts: int) -> _T: ...

    def vacuum(
        self,
        *,
        retention_hours: float | None = None,
        dry_run: bool = True,
        enforce_retention_duration: bool = True,
        full: bool = True,
    ) -> dict[str, Any]:
        """Delete data files that no version inside the retention window references.

        Args:
            retention_hours: Keep files removed less than this long ago (rounded *up* to whole
                hours); default: the table's ``delta.deletedFileRetentionDuration`` (7 days).
            dry_run: Only list the files (default).
            enforce_retention_duration: Refuse a retention below the table's minimum.
            full: Also delete files no commit ever referenced (the parquet files of a writer
                that died before its commit), once older than the retention window. delta-rs's
                own default (``False``, "lite") only deletes files removed by a commit.

        Returns:
            ``{"dry_run", "files" (relative paths), "num_files", "version"}``. delta-rs lists
            tombstoned files again on later runs even if already deleted, so ``files`` is an
            upper bound of what was physically removed.
        """
        hours = None if retention_hours is None else math.ceil(retention_hours)
        table = self._require()
        with self._errors("vacuum"):
            files = table.vacuum(
                retention_hours=hours,
                dry_run=dry_run,
                enforce_retention_duration=enforce_retention_duration,
                commit_properties=commit_properties(None, DEFAULT_MAX_COMMIT_RETRIES),
                full=full,
            )
            relative = sorted({_relative_to(path, table.table_uri) for path in files})
            version = table.version()
        return {
            "dry_run": dry_run,
            "files": relative,
            "num_files": len(relative),
            "version": version,
        }

    def optimize(
        self,
        *,
        z_order: Sequence[str] | None = None,
        partition_filters: list[tuple[str, str, Any]] | None = None,
        target_size: int | None = None,
        max_commit_retries: int = DEFAULT_MAX_COMMIT_RETRIES,
        commit_metadata: Mapping[str, Any] | None = None,
        writer_properties: WriterProperties | None = None,
    ) -> dict[str, Any]:
        """Compact small files, or Z-order them by the ``z_order`` columns; rows are unchanged.

        Args:
            z_order: Columns to Z-order by; bin-packing compaction when ``None``.
            partition_filters: Only these partitions, e.g. ``[("date", "=", "2024-01-06")]``.
            target_size: Target file size in bytes (default: ``delta.targetFileSize``).
            max_commit_retries: delta-rs internal retries on concurrent commits.
            commit_metadata: Extra commit-info keys.
            writer_properties: Parquet settings of the new files (delta-rs's optimize
                defaults, zstd level 4 with dictionaries, if ``None``).

        Returns:
            delta-rs metrics (``numFilesAdded``, ``numFilesRemoved``, ...) plus ``version``
            (no commit is made when there is nothing to compact).
        """
        commit = commit_properties(commit_metadata, max_commit_retries)
        kwargs: dict[str, Any] = {
            "partition_filters": partition_filters,
            "target_size": target_size,
            "writer_properties": writer_properties,
        }

        def optimize_once() -> dict[str, Any]:
            table = self._require()
            if z_order:
                metrics = table.optimize.z_order(list(z_order), commit_properties=commit, **kwargs)
            else:
                metrics = table.optimize.compact(commit_properties=commit, **kwargs)
            return {**metrics, "version": table.version()}

        return self._retrying("optimize", optimize_once, DEFAULT_ATTEMPTS)

    def checkpoint(self) -> int:
        """Write ``_delta_log/<v>.checkpoint.parquet`` for the latest version; return ``v``."""
        table = self._require()
        with self._errors("checkpoint"):
            table.create_checkpoint()
            return table.version()


def _relative_to(path: str, root: str) -> str:
    """``path`` relative to the table root, whichever form (URI or absolute path) delta-rs used."""
    for prefix in sorted({root, root.removeprefix("file://")}, key=len, reverse=True):
        prefix = prefix.rstrip("/") + "/"
        if path.startswith(prefix):
            return path[len(prefix) :]
    return path
