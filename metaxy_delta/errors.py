"""Exception and warning types of metaxy_delta.

Names mirror Metaxy 0.1.11 (``metaxy.metadata_store.exceptions`` and friends) so user code
catching them keeps working. Every error raised on bad user input is one of these, so callers
can catch :class:`MetaxyError` (or the more specific type) and never a dependency's internals.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class MetaxyError(Exception):
    """Base class of every metaxy_delta error."""


class MetaxyInvariantViolationError(MetaxyError):
    """The feature graph violates an invariant (missing dependency, cycle, ...)."""


class MetaxyMissingFeatureDependency(MetaxyInvariantViolationError, KeyError):
    """A feature depends on a feature that is not registered in the graph.

    Example:
        >>> import metaxy_delta as mx
        >>> err = mx.MetaxyMissingFeatureDependency("a/b", "c/d")
        >>> print(err)
        feature 'a/b' depends on 'c/d', which is not registered in the active feature graph
    """

    def __init__(self, feature: Any, missing: Any) -> None:
        self.feature = str(feature)
        self.missing = str(missing)
        super().__init__(self.feature, self.missing)

    def __str__(self) -> str:
        return (
            f"feature {self.feature!r} depends on {self.missing!r}, "
            "which is not registered in the active feature graph"
        )


class FeatureGraphCycleError(MetaxyInvariantViolationError, ValueError):
    """The feature (or field) dependency graph has a cycle; ``cycle`` lists it in order."""

    def __init__(self, cycle: Sequence[str], kind: str = "feature") -> None:
        self.cycle = list(cycle)
        super().__init__(f"{kind} dependency cycle: {' -> '.join(self.cycle)}")


class FieldDependencyError(MetaxyInvariantViolationError, KeyError):
    """A field dependency names a feature or field that the feature does not depend on."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class NoUpstreamFieldsError(MetaxyInvariantViolationError, RuntimeError):
    """A field of a non-root feature resolved to no upstream field at all."""


class ColumnCollisionError(MetaxyError, ValueError):
    """Two upstream dependencies bring a column of the same name; ``rename`` one of them."""


class InvalidConfigError(MetaxyError, ValueError):
    """The Metaxy configuration (``metaxy.toml``, ``METAXY_*`` env) is invalid."""


class HashAlgorithmNotSupportedError(MetaxyError, ValueError):
    """The requested :class:`~metaxy_delta.HashAlgorithm` cannot be computed by this engine."""


class MetadataStoreError(MetaxyError):
    """Base class of metadata store errors."""


class FeatureNotFoundError(MetadataStoreError, KeyError):
    """No metadata is stored for the feature (names the feature and, when known, the table URI)."""

    def __init__(self, message: str, *, keys: Sequence[Any] | None = None) -> None:
        self.message = message
        self.keys = list(keys) if keys is not None else []
        super().__init__(message)

    def __str__(self) -> str:
        return self.message


class SystemDataNotFoundError(MetadataStoreError):
    """A system table (``metaxy-system/...``) is absent."""


class FieldNotFoundError(MetadataStoreError, KeyError):
    """A field key is not part of the feature."""


class MetadataSchemaError(MetadataStoreError, ValueError):
    """A frame given to the store does not have the shape the feature requires.

    ``feature`` and ``column`` name what is wrong; nothing has been written when it is raised.
    """

    def __init__(self, message: str, *, feature: Any = None, column: str | None = None) -> None:
        self.feature = None if feature is None else str(feature)
        self.column = column
        super().__init__(message)


class DependencyError(MetadataStoreError):
    """Upstream metadata needed to resolve a feature is missing."""


class StoreNotOpenError(MetadataStoreError):
    """The store is used outside ``with store.open(...)`` or in the wrong mode."""


class TableNotFoundError(MetadataStoreError):
    """The Delta table behind a feature does not exist."""


class VersioningEngineMismatchError(MetaxyError):
    """Kept for API parity with Metaxy; the Delta store always uses the Polars engine."""


class FilterParseError(MetaxyError, ValueError):
    """A SQL filter string cannot be turned into a filter expression.

    The message quotes the offending fragment; ``source`` keeps the whole text the user typed.
    """

    def __init__(self, message: str, *, source: str | None = None) -> None:
        self.source = source
        super().__init__(message)


class StoreConnectionError(MetadataStoreError, OSError):
    """The storage behind a store (local path or S3 endpoint) cannot be reached or used.

    The message names the table URI, and for S3 the bucket and the setting to fix.
    """


class CommitConflictError(MetadataStoreError):
    """A Delta commit kept conflicting with concurrent writers after every retry."""


class MetaxyColumnMissingWarning(UserWarning):
    """A system column was missing and has been recomputed."""


class InvalidStoredFeatureWarning(UserWarning):
    """Stored metadata does not match the current feature definition."""


__all__ = [
    "ColumnCollisionError",
    "CommitConflictError",
    "DependencyError",
    "FeatureGraphCycleError",
    "FeatureNotFoundError",
    "FieldDependencyError",
    "FieldNotFoundError",
    "FilterParseError",
    "HashAlgorithmNotSupportedError",
    "InvalidConfigError",
    "InvalidStoredFeatureWarning",
    "MetadataSchemaError",
    "MetadataStoreError",
    "MetaxyColumnMissingWarning",
    "MetaxyError",
    "MetaxyInvariantViolationError",
    "MetaxyMissingFeatureDependency",
    "NoUpstreamFieldsError",
    "StoreConnectionError",
    "StoreNotOpenError",
    "SystemDataNotFoundError",
    "TableNotFoundError",
    "VersioningEngineMismatchError",
]
