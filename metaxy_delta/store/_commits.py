"""Commit settings shared by every Delta operation of the store: retry budgets and commit info."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deltalake import CommitProperties

DEFAULT_MAX_COMMIT_RETRIES = 100
"""delta-rs internal commit retries per operation (delta-rs's own default is 15)."""
UNIQUE_IDS_KEY = "metaxy_delta.unique_ids"
"""Commit-info flag of a write whose rows were validated to have distinct IDs."""
DEFAULT_ATTEMPTS = 5
"""Whole-operation attempts when ``CommitFailedError`` escapes the internal retries."""


def commit_properties(metadata: Mapping[str, Any] | None, retries: int) -> CommitProperties:
    """``CommitProperties`` with a copy of ``metadata`` and the retry budget."""
    custom = None if metadata is None else dict(metadata)
    return CommitProperties(custom_metadata=custom, max_commit_retries=retries)
