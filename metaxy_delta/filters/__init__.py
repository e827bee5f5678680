"""SQL filter strings → Narwhals expressions and delta-rs predicates.

A filter is one SQL condition: comparisons (``=``, ``!=``/``<>``, ``<``, ``<=``, ``>``, ``>=``,
column-vs-column allowed), ``AND``/``OR``/``NOT``, parentheses, ``[NOT] IN (literals)``,
``IS [NOT] NULL``, ``[NOT] BETWEEN``, ``[NOT] LIKE``/``ILIKE``, bare boolean columns; literals are
strings, numbers (with unary minus), ``TRUE``/``FALSE``, ``NULL``, ``DATE 'YYYY-MM-DD'`` and
``TIMESTAMP 'YYYY-MM-DD HH:MM:SS[.ffffff][Z|±HH:MM]'`` (UTC unless an offset is given). As in
Metaxy, ``x = NULL`` means ``x IS NULL`` and ``x != NULL`` means ``x IS NOT NULL``. Anything else
(functions, arithmetic, casts, sub-queries, comments, ``;``) raises :class:`FilterParseError`.

Examples:
    >>> import polars as pl
    >>> import narwhals as nw
    >>> from metaxy_delta.filters import parse_filter, parse_filter_string
    >>> df = nw.from_native(pl.DataFrame({"path": ["a.wav", "b.mp3"], "size": [10, 20]}))
    >>> df.filter(parse_filter_string("path LIKE '%.wav' OR size > 15"))["size"].to_list()
    [10, 20]
    >>> print(parse_filter("path NOT IN ('x', 'y')").to_delta_predicate())
    NOT ("path" IN ('x', 'y'))
"""

from metaxy_delta.errors import FilterParseError

from ._api import (
    ParsedFilter,
    combine_filters,
    parse_filter,
    parse_filter_string,
    parse_filter_strings,
    to_delta_predicate,
)
from ._narwhals import like_to_regex

__all__ = [
    "FilterParseError",
    "ParsedFilter",
    "combine_filters",
    "like_to_regex",
    "parse_filter",
    "parse_filter_string",
    "parse_filter_strings",
    "to_delta_predicate",
]
