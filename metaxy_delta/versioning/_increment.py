"""Increments: which expected samples are new or stale, and which stored ones are orphaned.

``new`` = expected but not stored; ``stale`` = stored with a different sample provenance (or
matching a staleness predicate); ``orphaned`` = stored but no longer expected (stored schema).
Comparison is on the plan's join columns (``input_id_columns`` or the feature's ID columns).
For expansion lineage the stored rows are children of the expected parent rows: a parent is
stale if any stored child disagrees with its provenance, and ``orphaned`` lists the stored
*child* rows whose parent disappeared (Metaxy reports parents, spec §7.15).
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import narwhals as nw
import polars as pl

from metaxy_delta.models.constants import METAXY_PROVENANCE
from metaxy_delta.versioning._hashing import fresh_name


class PolarsIncrement(NamedTuple):
    """Collected increment as Polars DataFrames."""

    new: pl.DataFrame
    stale: pl.DataFrame
    orphaned: pl.DataFrame


class Increment(NamedTuple):
    """Collected increment as narwhals DataFrames (backed by Polars)."""

    new: nw.DataFrame[Any]
    stale: nw.DataFrame[Any]
    orphaned: nw.DataFrame[Any]

    def collect(self) -> Increment:
        """Already collected: returns itself."""
        return self

    def to_polars(self) -> PolarsIncrement:
        """The three frames as Polars DataFrames."""
        return PolarsIncrement(*(f.to_native() for f in self))


@dataclass(frozen=True)
class PolarsLazyIncrement:
    """Lazy increment as Polars LazyFrames; ``collect`` runs all three in one pass."""

    new: pl.LazyFrame
    stale: pl.LazyFrame
    orphaned: pl.LazyFrame
    input: pl.LazyFrame | None = None

    def collect(self, **kwargs: Any) -> PolarsIncrement:
        """Collect the three frames together (``pl.collect_all``, shared sub-plans once)."""
        new, stale, orphaned = pl.collect_all([self.new, self.stale, self.orphaned], **kwargs)
        return PolarsIncrement(new, stale, orphaned)


@dataclass(frozen=True)
class LazyIncrement:
    """Lazy increment as narwhals LazyFrames (backed by Polars).

    Example:
        >>> import polars as pl, narwhals as nw
        >>> lf = nw.from_native(pl.LazyFrame({"id": [1]}))
        >>> inc = LazyIncrement(new=lf, stale=lf.head(0), orphaned=lf.head(0))
        >>> len(inc.collect().new)
        1
    """

    new: nw.LazyFrame[Any]
    stale: nw.LazyFrame[Any]
    orphaned: nw.LazyFrame[Any]
    input: nw.LazyFrame[Any] | None = None

    def to_polars(self) -> PolarsLazyIncrement:
        """The frames as Polars LazyFrames."""
        return PolarsLazyIncrement(
            self.new.to_native(),
            self.stale.to_native(),
            self.orphaned.to_native(),
            None if self.input is None else self.input.to_native(),
        )

    def collect(self, **kwargs: Any) -> Increment:
        """Collect all three frames in one ``pl.collect_all`` call."""
        new, stale, orphaned = self.to_polars().collect(**kwargs)
        return Increment(*(nw.from_native(f, eager_only=True) for f in (new, stale, orphaned)))


def resolve_increment(
    expected: pl.LazyFrame,
    current: pl.LazyFrame | None,
    join_columns: Sequence[str],
    *,
    staleness_predicates: Sequence[nw.Expr] = (),
    skip_comparison: bool = False,
) -> PolarsLazyIncrement:
    """Compare expected samples with the stored ones (pure, lazy)."""
    join = list(join_columns)
    if current is None or skip_comparison:
        empty_current = expected.head(0) if current is None else current.head(0)
        return PolarsLazyIncrement(expected, expected.head(0), empty_current, expected)
    taken = set(expected.collect_schema()) | set(current.collect_schema())
    current_provenance = fresh_name("current_provenance", taken)
    by_predicate = fresh_name("stale_by_predicate", taken)
    keep = [*join, pl.col(METAXY_PROVENANCE).alias(current_provenance)]
    condition = pl.col(current_provenance).is_null() | (
        pl.col(METAXY_PROVENANCE) != pl.col(current_provenance)
    )
    if staleness_predicates:
        predicate = functools.reduce(operator.or_, staleness_predicates)
        current = (
            nw.from_native(current)
            .with_columns(predicate.fill_null(value=False).alias(by_predicate))
            .to_native()
        )
        keep.append(pl.col(by_predicate))
        condition = condition | pl.col(by_predicate)
    compared = (
        expected.select([*join, METAXY_PROVENANCE])
        .join(current.select(keep), on=join, how="inner")
        .filter(condition)
        .select(join)
        .unique()
    )
    stored_keys = current.select(join)
    new = expected.join(stored_keys, on=join, how="anti")
    stale = expected.join(compared, on=join, how="semi")
    orphaned = current.join(expected.select(join), on=join, how="anti")
    if staleness_predicates:
        orphaned = orphaned.drop(by_predicate)
    return PolarsLazyIncrement(new, stale, orphaned, expected)
