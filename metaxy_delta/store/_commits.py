"""Commits shared by every Delta operation of the store: retry budgets, commit info, finding
and logging an append's commit."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from deltalake import CommitProperties
from deltalake.fs import DeltaStorageHandler

from metaxy_delta.errors import MetadataStoreError

logger = logging.getLogger(__name__)

DEFAULT_MAX_COMMIT_RETRIES = 100
"""delta-rs internal commit retries per operation (delta-rs's own default is 15)."""
UNIQUE_IDS_KEY = "metaxy_delta.unique_ids"
"""Commit-info flag of a write whose rows were validated to have distinct IDs."""
DEFAULT_ATTEMPTS = 5
"""Whole-operation attempts when ``CommitFailedError`` escapes the internal retries."""
DEFAULT_APPEND_ATTEMPTS = 10
"""Whole-write attempts of an append. delta-rs 1.6 counts every file of a writer's snapshot as
read, so an append loses to any delete (or compaction) that commits while it writes, although
appended rows never depend on other rows; re-committing on a fresh snapshot is always correct, so
appends get a bigger budget than operations that read the table."""


def commit_properties(metadata: Mapping[str, Any] | None, retries: int) -> CommitProperties:
    """``CommitProperties`` with a copy of ``metadata`` and the retry budget."""
    custom = None if metadata is None else dict(metadata)
    return CommitProperties(custom_metadata=custom, max_commit_retries=retries)


def log_append(uri: str, snapshot_version: int, version: int) -> None:
    """Debug-log an append that raced other writers (committed past its snapshot's next version).

    delta-rs retried the commit internally then; commits made through the transaction API carry
    no ``num_retries`` metric, so this record is how both write paths report contention.
    """
    if version > snapshot_version + 1:
        logger.debug(
            "append to %s: committed at version %d, after %d concurrent commits",
            uri, version, version - snapshot_version - 1,
        )  # fmt: skip


def find_commit(
    table_uri: str, storage_options: dict[str, str] | None, txn_id: str, *, after: int
) -> int:
    """Version of the last commit carrying ``txn_id``, searching from version ``after + 1``.

    ``create_write_transaction`` does not return its version and concurrent writers may have
    committed in between, so the commit files after the snapshot are read in order (usually
    one, plus a probe of the next version). If S3 applied a commit but its response was lost,
    delta-rs commits the same actions again at a later version (no row is duplicated: the data
    files are the same); then the later of two consecutive commits is the write's version, as
    ``write_deltalake`` reports it.
    """
    handler = DeltaStorageHandler(table_uri, storage_options)
    version, found = after + 1, None
    while True:
        try:
            with handler.open_input_file(f"_delta_log/{version:020d}.json") as commit:
                ours = txn_id.encode() in commit.read()
        except FileNotFoundError as err:
            if found is not None:
                return found
            msg = f"commit {txn_id} not found in the log of Delta table {table_uri}"
            raise MetadataStoreError(msg) from err
        if ours:
            found = version
        elif found is not None:
            return found
        version += 1
