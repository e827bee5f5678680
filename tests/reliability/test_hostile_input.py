"""Guarantee 3: hostile input is rejected with a documented error, and nothing is written.

Hypothesis generates malformed frames, random and adversarial SQL filter strings (for reads,
soft and hard deletes), invalid feature keys and invalid configuration. Every call must either
succeed harmlessly or raise one of the package's documented errors (``metaxy_delta.errors``,
pydantic ``ValidationError``, or a ``ValueError``/``TypeError``/``KeyError`` raised by
metaxy_delta itself with a message) — never an exception raised from inside a dependency
(Polars, narwhals, deltalake, sqlglot) — and the Delta table version must not move.

Examples are bounded (``max_examples``) so the module runs in seconds; the ``@example``
decorators keep the cases that leaked a dependency error or wrote data before the fixes
(wrong dtypes were appended, type-mismatched / non-boolean / unknown-column filters raised
Polars errors and a bare integer column soft-deleted rows).
"""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Any

import polars as pl
import pydantic
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import metaxy_delta as mx
from metaxy_delta.errors import MetaxyError
from tests.reliability._workers import KEY, define_events, events, open_store

pytestmark = pytest.mark.slow

SETTINGS = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
TRIED: dict[str, int] = {}


def _raised_by_us(err: BaseException) -> bool:
    frames = traceback.extract_tb(err.__traceback__)
    return bool(frames) and "metaxy_delta" in Path(frames[-1].filename).parts


def assert_documented(err: BaseException) -> None:
    """The error is ours (or pydantic's validation error), not a dependency's internals."""
    if isinstance(err, (MetaxyError, pydantic.ValidationError)):
        return
    assert isinstance(err, (ValueError, TypeError, KeyError)) and _raised_by_us(err), (
        f"leaked {type(err).__module__}.{type(err).__qualname__}: {err}\n"
        + "".join(traceback.format_exception(err))
    )


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A store with 3 committed versions of ``reliability/events`` (40 live samples)."""
    graph = define_events()
    store = open_store(str(tmp_path_factory.mktemp("hostile") / "store"), None)
    with graph.use(), store.open("w"):
        store.write(KEY, events(0, list(range(20))))
        store.write(KEY, events(1, list(range(20))))
        store.write(KEY, events(2, list(range(5)), "doomed"))
        store.delete(KEY, ["kind = 'doomed'"], soft=False)
    return graph, store


def _call(store: Any, what: str, fn: Any) -> Any:
    """Run ``fn`` on the open store; return the error (checked) or ``None``; version unchanged."""
    TRIED[what] = TRIED.get(what, 0) + 1
    before = store.version(KEY)
    try:
        result = fn()
        if hasattr(result, "collect"):
            result = result.collect()
    except Exception as err:  # noqa: BLE001 - the point of the test
        assert_documented(err)
        assert store.version(KEY) == before, f"{what}: rejected call moved the table version"
        return err
    assert store.version(KEY) == before, f"{what}: call moved the table version ({result!r})"
    return None


# ----------------------------------------------------------------------------- frames


def _valid() -> pl.DataFrame:
    return events(3, [0, 1, 2, 3])


MUTATIONS = {
    "drop_writer": lambda f: f.drop("writer"),
    "drop_seq": lambda f: f.drop("seq"),
    "null_seq": lambda f: f.with_columns(pl.when(pl.col("seq") == 1).then(None).otherwise(pl.col("seq")).alias("seq")),
    "seq_as_string": lambda f: f.with_columns(pl.col("seq").cast(pl.String)),
    "seq_as_float": lambda f: f.with_columns(pl.col("seq").cast(pl.Float64) + 0.5),
    "writer_as_bool": lambda f: f.with_columns(pl.lit(True).alias("writer")),
    "part_as_int": lambda f: f.with_columns(pl.lit(7).alias("part")),
    "kind_as_list": lambda f: f.with_columns(pl.lit([1, 2]).alias("kind")),
    "drop_provenance": lambda f: f.drop("metaxy_provenance_by_field"),
    "provenance_as_string": lambda f: f.with_columns(pl.lit("x").alias("metaxy_provenance_by_field")),
    "provenance_extra_field": lambda f: f.with_columns(
        pl.struct(payload=pl.lit("a"), extra=pl.lit("b")).alias("metaxy_provenance_by_field")
    ),
    "provenance_missing_field": lambda f: f.with_columns(
        pl.struct(other=pl.lit("b")).alias("metaxy_provenance_by_field")
    ),
    "provenance_int_field": lambda f: f.with_columns(pl.struct(payload=pl.lit(1)).alias("metaxy_provenance_by_field")),
    "duplicate_ids": lambda f: pl.concat([f, f.head(1)]),
    "created_at_as_string": lambda f: f.with_columns(pl.lit("yesterday").alias("metaxy_created_at")),
}


@SETTINGS
@given(st.lists(st.sampled_from(sorted(MUTATIONS)), min_size=1, max_size=3, unique=True))
@example(["seq_as_string"])  # was appended (cast by delta-rs) before the stored-dtype check
@example(["writer_as_bool"])
@example(["kind_as_list"])
@example(["part_as_int"])
def test_malformed_frames_are_rejected(seeded: Any, mutations: list[str]) -> None:
    graph, store = seeded
    frame = _valid()
    for name in mutations:
        if {"seq", "writer", "metaxy_provenance_by_field"} <= set(frame.columns) or "drop" not in name:
            try:
                frame = MUTATIONS[name](frame)
            except pl.exceptions.PolarsError:
                pass  # a previous mutation dropped or re-typed the column: still malformed
    with graph.use(), store.open("w"):
        err = _call(store, "malformed frame", lambda: store.write(KEY, frame))
    assert err is not None, f"{mutations}: malformed frame was accepted"
    if isinstance(err, mx.MetadataSchemaError):
        assert err.feature == KEY and err.column, f"{mutations}: error names no column: {err}"


# ----------------------------------------------------------------------------- filters

NO_MATCH = ["kind = 'nope'", "seq = -5", "writer IN (-7, -8)", "part = 'p9' AND seq > 3", "seq BETWEEN -9 AND -8"]
INJECTIONS = [
    "; DROP TABLE t",
    "; DELETE FROM t",
    " -- comment",
    " /* comment */",
    " OR seq IN (SELECT 1)",
    " OR seq > (SELECT max(seq) FROM t)",
    " UNION SELECT 1",
    " OR f(seq) = 1",
    " AND nosuch = 1",
    " AND seq = 'a'",
    " OR kind = 1",
    " OR seq",
    " OR 1 = 1",
    "' OR '1'='1",
    " OR \"kind\" = \"x\"",
    " AND",
    ")",
]
ADVERSARIAL = st.builds(lambda base, tail: base + tail, st.sampled_from(NO_MATCH), st.sampled_from(INJECTIONS))
TOKENS = list("seqkindwrt_ =<>!'\"();-/*%,.0123456789")
TOKENS += [" AND ", " OR ", " NOT ", " IN ", " SELECT ", " NULL ", "seq", "kind", "part"]
SQLISH = st.lists(st.sampled_from(TOKENS), max_size=15).map("".join)


@SETTINGS
@given(st.one_of(ADVERSARIAL, SQLISH, st.text(max_size=30)))
@example("seq = 'a'")  # leaked polars ComputeError on collect
@example("nosuch = 1")  # leaked polars ColumnNotFoundError
@example('kind = "x"')  # double quotes are identifiers: unknown column x
@example("seq")  # a bare integer column: not a condition
@example("status = 'x'; DROP TABLE t")
@example("x IN (SELECT 1)")
def test_random_filters_on_read(seeded: Any, text: str) -> None:
    graph, store = seeded
    with graph.use(), store.open("r"):
        _call(store, "read filter", lambda: store.read(KEY, filters=[text]))


@SETTINGS
@given(ADVERSARIAL, st.booleans())
@example("seq = -5 OR seq", True)  # soft-deleted every live row before the fix
@example("kind = 'nope' AND seq = 'a'", True)
@example("kind = 'nope' AND nosuch = 1", False)
def test_adversarial_filters_on_delete(seeded: Any, text: str, soft: bool) -> None:
    graph, store = seeded
    with graph.use(), store.open("w"):
        err = _call(store, "delete filter", lambda: store.delete(KEY, [text], soft=soft))
        if err is None:  # parsed: it must have matched nothing (every base matches no row)
            assert store.read(KEY).collect().to_native().height == 40
    if err is not None and isinstance(err, mx.FilterParseError):
        assert err.source == text or text in str(err)


# ----------------------------------------------------------------------------- keys, config

KEYS = st.one_of(
    st.text(max_size=20),
    st.lists(st.text(max_size=6), max_size=3),
    st.sampled_from(["", "/", "a//b", "../x", "a/../b", "a__b", "A/B", "a b", "x/y", "reliability/"]),
    st.none(),
    st.integers(),
)


@SETTINGS
@given(KEYS, st.sampled_from(["read", "write", "delete", "version", "resolve"]))
def test_invalid_feature_keys(seeded: Any, key: Any, operation: str) -> None:
    graph, store = seeded
    calls = {
        "read": lambda: store.read(key),
        "write": lambda: store.write(key, _valid()),
        "delete": lambda: store.delete(key, ["seq = 1"]),
        "version": lambda: store.version(key),
        "resolve": lambda: store.resolve_update(key, samples=_valid()),
    }
    with graph.use(), store.open("w"):
        err = _call(store, "feature key", calls[operation])
    if operation in ("read", "write", "delete", "resolve"):
        assert err is not None, f"{operation} of unregistered key {key!r} succeeded"


STORE_OPTIONS = st.fixed_dictionaries(
    {},
    optional={
        "root_path": st.one_of(st.none(), st.integers(), st.text(max_size=10)),
        "layout": st.one_of(st.sampled_from(["nested", "flat", "deep", ""]), st.integers()),
        "hash_algorithm": st.one_of(st.sampled_from(["xxhash32", "md5x", "", "sha999"]), st.integers()),
        "max_commit_retries": st.one_of(st.integers(-5, 5), st.text(max_size=3)),
        "fallback_stores": st.one_of(st.lists(st.text(max_size=5), max_size=2), st.integers()),
        "unknown_option": st.integers(),
        "storage_options": st.one_of(st.integers(), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)),
    },
)


@SETTINGS
@given(STORE_OPTIONS, st.sampled_from(["delta", "metaxy_delta.DeltaMetadataStore", "nope", "os.path"]))
@example({"layout": "deep", "root_path": "/tmp/x"}, "delta")
@example({"max_commit_retries": -1, "root_path": "/tmp/x"}, "delta")
def test_invalid_store_config(options: dict[str, Any], store_type: str) -> None:
    TRIED["store config"] = TRIED.get("store config", 0) + 1
    config = None
    try:
        config = mx.MetaxyConfig(project="p", stores={"s": mx.StoreConfig(type=store_type, config=options)})
        config.get_store("s")
    except Exception as err:  # noqa: BLE001
        assert_documented(err)
        if config is not None:  # the config parsed: building the store must name the problem
            assert isinstance(err, mx.InvalidConfigError), repr(err)
        return
    valid_root = isinstance(options.get("root_path"), str)
    assert valid_root and store_type in ("delta", "metaxy_delta.DeltaMetadataStore"), options


@SETTINGS
@given(st.text(max_size=80))
@example('project = "p"\n[stores.s]\ntype = 1')
@example("[[[")
def test_invalid_toml_config(tmp_path: Path, text: str) -> None:
    TRIED["toml config"] = TRIED.get("toml config", 0) + 1
    path = tmp_path / "metaxy.toml"
    path.write_text(text)
    try:
        mx.MetaxyConfig.load(path)
    except Exception as err:  # noqa: BLE001
        assert_documented(err)


def test_report_counts() -> None:
    """Runs last in the module: print how many inputs each property tried (for the docs)."""
    print("hostile inputs tried:", dict(TRIED), "total", sum(TRIED.values()))
