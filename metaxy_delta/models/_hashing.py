"""Truncation of definition-level hashes (SHA-256 hex digests)."""

from __future__ import annotations

DEFAULT_TRUNCATION_LENGTH = 8


def truncation_length() -> int:
    """The configured ``hash_truncation_length`` (default 8)."""
    from metaxy_delta.config import MetaxyConfig

    return MetaxyConfig.get().hash_truncation_length


def truncate_hash(digest: str, length: int | None = None) -> str:
    """Prefix of ``digest`` of the configured length (Metaxy's ``truncate_hash``)."""
    return digest[: truncation_length() if length is None else length]
