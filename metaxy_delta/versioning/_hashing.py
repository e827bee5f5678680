"""Row-level string hashing with the ``polars-hash`` plugin (stable across processes).

Output forms match Metaxy 0.1.11: xxhash/wyhash integers as **decimal** strings, SHA-256 and MD5
as lowercase hex, then the first ``length`` characters. A null input hashes to null.

Example:
    >>> import polars as pl
    >>> from metaxy_delta import HashAlgorithm
    >>> s = "default|1|video.audio|video_audio_hash_1|video.frames|video_frame_hash_1"
    >>> pl.select(hash_expr(pl.lit(s), HashAlgorithm.XXHASH64, 8)).item()
    '96465930'
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl
import polars_hash  # noqa: F401  (registers the .nchash / .chash namespaces)

from metaxy_delta.errors import HashAlgorithmNotSupportedError
from metaxy_delta.models.constants import HashAlgorithm

SUPPORTED_ALGORITHMS = (
    HashAlgorithm.XXHASH64,
    HashAlgorithm.XXHASH32,
    HashAlgorithm.WYHASH,
    HashAlgorithm.SHA256,
    HashAlgorithm.MD5,
)


def check_algorithm(algorithm: HashAlgorithm | str) -> HashAlgorithm:
    """Coerce to :class:`HashAlgorithm` and refuse the ones this engine cannot compute."""
    try:
        algo = HashAlgorithm(algorithm)
    except ValueError:
        raise HashAlgorithmNotSupportedError(
            f"unknown hash algorithm {algorithm!r}; use one of "
            f"{[a.value for a in SUPPORTED_ALGORITHMS]}"
        ) from None
    if algo not in SUPPORTED_ALGORITHMS:
        raise HashAlgorithmNotSupportedError(
            f"hash algorithm {algo.value!r} is not supported by the Polars engine; use one of "
            f"{[a.value for a in SUPPORTED_ALGORITHMS]}"
        )
    return algo


def hash_expr(expr: pl.Expr, algorithm: HashAlgorithm, length: int) -> pl.Expr:
    """Hash a string expression and truncate the string form to ``length`` characters."""
    algo = check_algorithm(algorithm)
    if algo is HashAlgorithm.XXHASH64:
        return decimal_prefix(expr.nchash.xxhash64(), pl.UInt64(), length)
    if algo is HashAlgorithm.XXHASH32:
        return decimal_prefix(expr.nchash.xxhash32(), pl.UInt32(), length)
    if algo is HashAlgorithm.WYHASH:
        return decimal_prefix(expr.nchash.wyhash(), pl.UInt64(), length)
    if algo is HashAlgorithm.SHA256:
        return expr.chash.sha2_256().str.slice(0, length)
    return expr.nchash.md5().str.slice(0, length)


def decimal_prefix(value: pl.Expr, dtype: pl.DataType, length: int) -> pl.Expr:
    """The first ``length`` characters of the decimal form of ``value`` (unsigned, of ``dtype``).

    The same strings as ``value.cast(pl.String).str.slice(0, length)``, but the number is cut
    to its leading digits *before* it is formatted (divided by the power of ten that drops the
    rest), so no string is built twice: ~35 % less time for 32-bit hashes and ~20 % for 64-bit
    ones (10M rows; ``str.slice`` copies every string).

    Example:
        >>> n = pl.Series([0, 7, 12_345_678, 123_456_789, 4_294_967_295], dtype=pl.UInt32)
        >>> pl.select(decimal_prefix(pl.lit(n), pl.UInt32(), 8)).to_series().to_list()
        ['0', '7', '12345678', '12345678', '42949672']
    """
    digits = _DIGITS[type(dtype)]
    if length >= digits:
        return value.cast(pl.String)
    if length < 1:
        return value.cast(pl.String).str.slice(0, length)
    extra = pl.sum_horizontal([(value >= 10**j).cast(pl.UInt8) for j in range(length, digits)])
    return (value // pl.lit(10, dtype=dtype).pow(extra)).cast(pl.String)


_DIGITS = {pl.UInt32: len(str(2**32 - 1)), pl.UInt64: len(str(2**64 - 1))}


def hash_joined(parts: Sequence[pl.Expr], algorithm: HashAlgorithm, length: int) -> pl.Expr:
    """Hash of the ``"|"``-joined parts (null if any part is null), as Metaxy does."""
    return hash_expr(pl.concat_str(list(parts), separator="|"), algorithm, length)


def hash_struct_values(
    struct: pl.Expr, names: Sequence[str], algorithm: HashAlgorithm, length: int
) -> pl.Expr:
    """Sample-level hash: struct values joined by ``"|"`` in sorted field-name order."""
    values = [struct.struct.field(n).cast(pl.String) for n in sorted(names)]
    return hash_joined(values, algorithm, length)


_VALUE_HASHED = (
    pl.String, pl.Boolean, pl.Int8, pl.Int16, pl.Int32, pl.Int64,
    pl.UInt8, pl.UInt16, pl.UInt32, pl.UInt64,
)  # fmt: skip
"""Key dtypes whose Polars ``hash()`` depends on the value only (not, as for categoricals, on
a frame's physical encoding), so equal keys on both sides of a join hash alike."""


def hash_joinable(left: pl.LazyFrame, right: pl.LazyFrame, keys: Sequence[str]) -> bool:
    """Whether ``left`` and ``right`` can be joined on :func:`key_hash` of ``keys``: the keys
    have one dtype on both sides, and it is hashed by value."""
    mine, theirs = left.collect_schema(), right.collect_schema()
    return all(mine[c] == theirs[c] and isinstance(mine[c], _VALUE_HASHED) for c in keys)


def sample_key(keys: Sequence[str]) -> pl.Expr:
    """The key column, or a struct of the key columns: one value per sample."""
    return pl.col(keys[0]) if len(keys) == 1 else pl.struct(list(keys))


def key_hash(keys: Sequence[str]) -> pl.Expr:
    """A 64-bit hash of a row's ``keys`` (Polars ``hash()``, seed 0; within one process only).

    Joining on it instead of string keys is ~15 % cheaper on 10M rows; equal keys always hash
    alike, so a join on the hash finds every matching pair, plus pairs of different keys that
    collide, which the caller must drop or detect.
    """
    return sample_key(keys).hash()


def fresh_name(base: str, taken: Sequence[str] | set[str]) -> str:
    """A temporary column name that does not clash with ``taken`` (spec §7.12)."""
    taken = set(taken)
    name = f"__mxd_{base}"
    i = 0
    while name in taken:
        i += 1
        name = f"__mxd_{base}_{i}"
    return name
