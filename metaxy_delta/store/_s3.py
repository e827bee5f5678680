"""Storage access for Delta tables: S3 option defaults and translation of storage errors.

* :func:`with_s3_defaults` fills in ``AWS_ALLOW_HTTP=true`` when an ``s3://`` table is served by
  a plain-``http://`` endpoint (MinIO, moto, LocalStack). Without it delta-rs refuses the endpoint
  with "URL scheme is not allowed".
* :func:`describe_storage_error` turns the multi-line delta-rs/object_store error text of a failed
  request into one actionable sentence (unreachable endpoint, rejected or missing credentials,
  missing bucket, ``http://`` not allowed), or returns ``None`` when the error is not a storage
  connection problem. It works on strings only, so it is testable without a network.
* :func:`translate_errors` is the context manager every deltalake call of
  :class:`~metaxy_delta.store._table.DeltaTableRef` runs in: it re-raises deltalake and storage
  errors as metaxy_delta errors that name the table URI, chained with ``from``.
* :func:`retry_commits` re-runs an operation whose commit lost to concurrent writers even after
  delta-rs's internal retries, with exponential backoff and full jitter, then raises
  :class:`~metaxy_delta.errors.CommitConflictError`.
"""

from __future__ import annotations

import logging
import os
import random
import re
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TypeVar
from urllib.parse import urlsplit

from deltalake.exceptions import CommitFailedError, DeltaError, SchemaMismatchError
from deltalake.exceptions import TableNotFoundError as DeltaTableNotFoundError

from metaxy_delta.errors import (
    CommitConflictError,
    MetadataSchemaError,
    MetadataStoreError,
    MetaxyError,
    StoreConnectionError,
    TableNotFoundError,
)

logger = logging.getLogger(__name__)
_T = TypeVar("_T")
_BACKOFF_BASE_S = 0.05
_BACKOFF_CAP_S = 2.0

S3_SCHEMES = frozenset({"s3", "s3a"})

# object_store / delta-rs accept several spellings of the same key, case-insensitively.
_ENDPOINT_KEYS = (
    "aws_endpoint_url",
    "aws_endpoint_url_s3",
    "aws_endpoint",
    "endpoint_url",
    "endpoint",
)
_ALLOW_HTTP_KEYS = ("aws_allow_http", "allow_http")
_ENDPOINT_ENV = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_REQUEST_URL = re.compile(r"Error performing \w+ (https?://[^/\s]+)")
_S3_CODE = re.compile(r"<Code>([A-Za-z]+)</Code>")

_CREDENTIAL_CODES = frozenset(
    {
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "AccessDenied",
        "ExpiredToken",
        "InvalidToken",
        "InvalidClientTokenId",
    }
)
_UNREACHABLE_MARKERS = (
    "Connection refused",
    "tcp connect error",
    "operation timed out",
    "dns error",
    "failed to lookup address",
    "error sending request",
    "Connection reset",
)
_CREDENTIALS_HINT = (
    "set AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary "
    "credentials) in storage_options or the environment"
)


def is_s3_uri(uri: str) -> bool:
    """Whether ``uri`` addresses S3 (``s3://`` or ``s3a://``)."""
    return urlsplit(uri).scheme.lower() in S3_SCHEMES


def bucket_of(uri: str) -> str | None:
    """The bucket of an S3 URI (``s3://bucket/key`` -> ``"bucket"``), else ``None``."""
    parts = urlsplit(uri)
    if parts.scheme.lower() not in S3_SCHEMES:
        return None
    return parts.netloc or None


def endpoint_of(storage_options: Mapping[str, str] | None) -> str | None:
    """The S3 endpoint URL configured in ``storage_options`` or, failing that, the environment."""
    value = _lookup(storage_options, _ENDPOINT_KEYS)
    if value:
        return value
    for name in _ENDPOINT_ENV:
        if os.environ.get(name):
            return os.environ[name]
    return None


def with_s3_defaults(uri: str, storage_options: Mapping[str, str] | None) -> dict[str, str] | None:
    """Return a copy of ``storage_options`` with the S3 defaults metaxy_delta relies on.

    For ``s3://`` / ``s3a://`` URIs whose endpoint (from ``storage_options`` or the
    ``AWS_ENDPOINT_URL`` environment variable) is a plain ``http://`` URL, ``AWS_ALLOW_HTTP`` is
    set to ``"true"`` unless the caller (or ``AWS_ALLOW_HTTP`` in the environment) already
    decided. Other URIs and options pass through unchanged; the caller's mapping is never mutated.

    Args:
        uri: Table URI.
        storage_options: Options given by the user (object_store keys), or ``None``.

    Returns:
        The options to hand to delta-rs, or ``None`` when there are none.
    """
    options = dict(storage_options) if storage_options is not None else None
    if not is_s3_uri(uri):
        return options
    endpoint = endpoint_of(options)
    if endpoint is None or not endpoint.lower().startswith("http://"):
        return options
    if _lookup(options, _ALLOW_HTTP_KEYS) is not None or "AWS_ALLOW_HTTP" in os.environ:
        return options
    return {**(options or {}), "AWS_ALLOW_HTTP": "true"}


def clean_error_text(message: str) -> str:
    """One-line form of a delta-rs error: ANSI colours and the ``↳`` cause arrows removed."""
    text = _ANSI.sub("", message).replace("↳", " ")
    return re.sub(r"\s+", " ", text).strip()


def describe_storage_error(
    message: str, *, uri: str, storage_options: Mapping[str, str] | None
) -> str | None:
    """Explain a failed storage request in one actionable sentence.

    Args:
        message: ``str(exc)`` of the delta-rs / polars error.
        uri: The table URI being accessed.
        storage_options: Effective storage options (used to name the endpoint).

    Returns:
        The message for a :class:`~metaxy_delta.errors.StoreConnectionError`, or ``None`` if
        ``message`` does not describe an unreachable/unauthorised/misconfigured store.
    """
    text = clean_error_text(message)
    bucket = bucket_of(uri)
    endpoint = endpoint_of(storage_options) or _request_endpoint(text) or "the default AWS endpoint"
    where = f"Delta table {uri}" + (f" (bucket {bucket!r}, endpoint {endpoint})" if bucket else "")
    code_match = _S3_CODE.search(text)
    code = code_match.group(1) if code_match else None

    if code == "NoSuchBucket":
        return (
            f"bucket {bucket!r} does not exist at {endpoint} ({where}): create it first "
            "(delta-rs never creates buckets)"
        )
    if "URL scheme is not allowed" in text:
        return (
            f"cannot use {where}: the endpoint is plain http:// but http is not allowed; "
            "set AWS_ALLOW_HTTP=true in storage_options or the environment"
        )
    if "169.254.169.254" in text:
        return (
            f"no AWS credentials found for {where} (delta-rs fell back to the EC2 instance "
            f"metadata service, which is not reachable); {_CREDENTIALS_HINT}"
        )
    if (
        code in _CREDENTIAL_CODES
        or "403 Forbidden" in text
        or "lacked the necessary privileges" in text
    ):
        reason = code or "403 Forbidden"
        return (
            f"S3 rejected the credentials for {where} ({reason}); {_CREDENTIALS_HINT}, "
            "and check that they may access the bucket"
        )
    if any(marker in text for marker in _UNREACHABLE_MARKERS):
        cause = "connection refused" if "Connection refused" in text else "no response"
        if bucket is None:
            return f"cannot reach the storage of Delta table {uri} ({cause}): {text}"
        return (
            f"could not reach the S3 endpoint {endpoint} for {where} ({cause}); check that the "
            "endpoint is running and that AWS_ENDPOINT_URL in storage_options or the environment "
            "points to it"
        )
    return None


@contextmanager
def translate_errors(
    action: str, *, uri: str, storage_options: Mapping[str, str] | None
) -> Iterator[None]:
    """Re-raise deltalake / storage errors of the block as metaxy_delta errors naming ``uri``.

    * unreachable, unauthorised or misconfigured storage -> :class:`StoreConnectionError`;
    * deltalake ``TableNotFoundError`` -> :class:`TableNotFoundError`;
    * schema mismatches and Arrow cast failures -> :class:`MetadataSchemaError`;
    * any other ``DeltaError`` -> :class:`MetadataStoreError`.

    ``CommitFailedError`` passes through untouched (the caller retries it), as do metaxy_delta
    errors and other ``OSError`` s (e.g. a data file removed by vacuum).

    Args:
        action: Verb phrase for messages, e.g. ``"append to"``.
        uri: Table URI.
        storage_options: Effective storage options (to name the endpoint).
    """
    try:
        yield
    except (MetaxyError, CommitFailedError):
        raise
    except DeltaTableNotFoundError as err:
        msg = f"cannot {action} Delta table {uri}: it does not exist"
        raise TableNotFoundError(msg) from err
    except SchemaMismatchError as err:
        msg = f"cannot {action} Delta table {uri}: {clean_error_text(str(err))}"
        raise MetadataSchemaError(msg) from err
    except (DeltaError, OSError) as err:
        connection = _connection_error(err, uri=uri, storage_options=storage_options)
        if connection is not None:
            raise connection from err
        if isinstance(err, OSError):
            raise
        msg = f"cannot {action} Delta table {uri}: {clean_error_text(str(err))}"
        if "Cast error" in msg:  # the data does not fit the table schema
            raise MetadataSchemaError(msg) from err
        raise MetadataStoreError(msg) from err
    except Exception as err:
        # Arrow cast failures during a schema merge can surface as a bare ``Exception``.
        text = str(err)
        if type(err) is Exception and text.startswith(("Cast error", "Schema error")):
            msg = f"cannot {action} Delta table {uri}: {clean_error_text(text)}"
            raise MetadataSchemaError(msg) from err
        raise


def retry_commits(
    operation: Callable[[], _T],
    attempts: int,
    *,
    action: str,
    uri: str,
    storage_options: Mapping[str, str] | None,
) -> _T:
    """Run ``operation`` (errors translated); re-run it while its commit conflicts.

    ``operation`` must load a fresh table snapshot itself. Between attempts it sleeps a random
    time in ``[0, min(2 s, 0.05 s * 2**attempt)]`` (exponential backoff, full jitter).

    Raises:
        CommitConflictError: ``CommitFailedError`` in all ``attempts``; carries ``table_uri`` and
            ``attempts`` attributes.
    """
    attempt = 0
    while True:
        attempt += 1
        try:
            with translate_errors(action, uri=uri, storage_options=storage_options):
                return operation()
        except CommitFailedError as err:
            if attempt >= attempts:
                msg = (
                    f"could not {action} Delta table {uri}: the commit conflicted with concurrent "
                    f"writers in all {attempt} attempts ({clean_error_text(str(err))})"
                )
                conflict = CommitConflictError(msg)
                conflict.table_uri = uri  # type: ignore[attr-defined]
                conflict.attempts = attempt  # type: ignore[attr-defined]
                raise conflict from err
            delay = random.uniform(0, min(_BACKOFF_CAP_S, _BACKOFF_BASE_S * 2**attempt))
            logger.debug(
                "%s %s: commit conflict in attempt %d of %d, retry in %.2fs",
                action, uri, attempt, attempts, delay,
            )  # fmt: skip
            time.sleep(delay)


def _connection_error(
    err: BaseException, *, uri: str, storage_options: Mapping[str, str] | None
) -> StoreConnectionError | None:
    """A :class:`StoreConnectionError` for unreachable or unauthorised storage, else ``None``."""
    if isinstance(err, PermissionError):
        return StoreConnectionError(f"permission denied for Delta table {uri}: {err}")
    message = describe_storage_error(str(err), uri=uri, storage_options=storage_options)
    return None if message is None else StoreConnectionError(message)


def _lookup(options: Mapping[str, str] | None, keys: tuple[str, ...]) -> str | None:
    """Case-insensitive lookup of the first of ``keys`` present in ``options``."""
    if not options:
        return None
    lowered = {k.lower(): v for k, v in options.items()}
    for key in keys:
        if key in lowered:
            return lowered[key]
    return None


def _request_endpoint(text: str) -> str | None:
    """The ``scheme://host:port`` of the request quoted in an object_store error, if any."""
    match = _REQUEST_URL.search(text)
    return match.group(1) if match else None
