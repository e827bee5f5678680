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
    if (decimal := integer_hash(expr, algo)) is not None:
        return decimal_prefix(*decimal, length)
    if algo is HashAlgorithm.SHA256:
        return expr.chash.sha2_256().str.slice(0, length)
    return expr.nchash.md5().str.slice(0, length)


def integer_hash(expr: pl.Expr, algorithm: HashAlgorithm) -> tuple[pl.Expr, pl.DataType] | None:
    """The unsigned integer hash of ``expr`` and its dtype, for the algorithms whose string
    form is its decimal digits (xxhash32/64, wyhash); ``None`` for the hex ones."""
    algo = check_algorithm(algorithm)
    if algo is HashAlgorithm.XXHASH64:
        return expr.nchash.xxhash64(), pl.UInt64()
    if algo is HashAlgorithm.XXHASH32:
        return expr.nchash.xxhash32(), pl.UInt32()
    if algo is HashAlgorithm.WYHASH:
        return expr.nchash.wyhash(), pl.UInt64()
    return None


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
    return _leading_digits(value, dtype, length).cast(pl.String)


def _leading_digits(value: pl.Expr, dtype: pl.DataType, length: int) -> pl.Expr:
    """``value`` divided by the power of ten that leaves at most ``length`` decimal digits.

    Up to :data:`_BRANCHES` digits too many (32-bit hashes cut to 8 digits: 2), one comparison
    and division each (~4x faster than counting the digits first); 64-bit hashes count them
    (12 branches would be slower).
    """
    digits = _DIGITS[type(dtype)]
    if digits - length <= _BRANCHES:
        lead = pl.when(value >= 10 ** (digits - 1)).then(value // 10 ** (digits - length))
        for j in range(digits - 2, length - 1, -1):  # value has j + 1 digits
            lead = lead.when(value >= 10**j).then(value // 10 ** (j + 1 - length))
        return lead.otherwise(value)
    extra = pl.sum_horizontal([(value >= 10**j).cast(pl.UInt8) for j in range(length, digits)])
    return value // pl.lit(10, dtype=dtype).pow(extra)


_BRANCHES = 4


def is_decimal_prefix(
    text: pl.Expr, value: pl.Expr, dtype: pl.DataType, length: int
) -> pl.Expr | None:
    """``True`` where the string ``text`` is certainly :func:`decimal_prefix` of ``value``,
    decided by parsing ``text`` instead of formatting ``value`` (~0.04 s against ~0.14 s per 10M
    32-bit hashes): a string of ``length`` bytes that parses to the ``length``-digit leading
    part of ``value`` can only be those digits (a sign, a space or a leading zero would need a
    byte more). ``False`` where it is not, or where ``value`` has fewer than ``length`` digits
    (~0.2 % of 32-bit hashes at length 8; compare those with :func:`decimal_prefix`), and for
    nulls. ``None`` for lengths :func:`decimal_prefix` does not cut at.

    Example:
        >>> frame = pl.DataFrame({
        ...     "text": ["12345678", "+1234567", "12345679", "7", None],
        ...     "n": pl.Series([123_456_789, 1_234_567, 123_456_789, 7, 1], dtype=pl.UInt32),
        ... })
        >>> check = is_decimal_prefix(pl.col("text"), pl.col("n"), pl.UInt32(), 8)
        >>> frame.select(check).to_series().to_list()
        [True, False, False, False, False]
    """
    if not 1 <= length < _DIGITS[type(dtype)]:
        return None
    full = (text.str.len_bytes() == length) & (value >= 10 ** (length - 1))
    parsed = text.cast(dtype, strict=False)
    return (full & (parsed == _leading_digits(value, dtype, length))).fill_null(False)


_DIGITS = {pl.UInt32: len(str(2**32 - 1)), pl.UInt64: len(str(2**64 - 1))}


def hash_joined(parts: Sequence[pl.Expr], algorithm: HashAlgorithm, length: int) -> pl.Expr:
    """Hash of the ``"|"``-joined parts (null if any part is null), as Metaxy does."""
    return hash_expr(pl.concat_str(list(parts), separator="|"), algorithm, length)


def hash_struct_values(
    struct: pl.Expr, names: Sequence[str], algorithm: HashAlgorithm, length: int
) -> pl.Expr:
    """Sample-level hash: struct values joined by ``"|"`` in sorted field-name order."""
    return hash_expr(struct_values_joined(struct, names), algorithm, length)


def struct_values_joined(struct: pl.Expr, names: Sequence[str]) -> pl.Expr:
    """What :func:`hash_struct_values` hashes: the values of ``names`` joined by ``"|"`` in
    sorted name order (null if any is null)."""
    values = [struct.struct.field(n).cast(pl.String) for n in sorted(names)]
    return pl.concat_str(values, separator="|")


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
