"""Property tests: the engine against a brute-force reference written in plain Python.

The reference below follows the recipe of spec §3.2–§3.5 with dicts, ``xxhash`` and
``hashlib`` only; it never calls the code under test to obtain expected values:

- field provenance = ``trunc(hash("|".join([F.key, F.code_version] + [P, V(P)] for P sorted
  by "<feature>.<field>")))``, where ``V(P)`` is the upstream row's *data version* of ``P``
  (``""`` when an optional upstream has no row);
- sample provenance = ``trunc(hash("|".join(field values sorted by struct key))))``;
- expected ids = inner join over required deps, left join for optional ones (full outer if
  every dep is optional), a missing optional value hashing as ``""``;
- new = expected − stored, stale = stored ∩ expected with a different sample provenance,
  orphaned = stored − expected.

A second property covers aggregation lineage (N:1, spec §3.4 aggregation vector; this engine
yields one row per downstream group).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import polars as pl
import pytest
import xxhash
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import metaxy_delta as mx
from metaxy_delta import versioning

ALGORITHMS = [
    mx.HashAlgorithm.XXHASH64,
    mx.HashAlgorithm.XXHASH32,
    mx.HashAlgorithm.SHA256,
    mx.HashAlgorithm.MD5,
]
FIELD_POOL = ["a", "b", "c/d"]  # "c/d": to_string "c/d" in the hash, struct key "c_d"
DOWN_FIELD_POOL = ["a", "b", "c/d", "e"]  # "e" matches no upstream field → default = all
CODE_VERSIONS = ["__metaxy_initial__", "1", "2"]
IDS = ["a", "b", "c", "ab", "ba", "cc", "d"]
GONE_IDS = ["zz", "zy", "q"]  # never upstream: stored rows with these ids are orphans
VALUE = st.text(alphabet="xy|é", min_size=0, max_size=4)

SETTINGS = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# --------------------------------------------------------------------------- reference
def ref_hash(text: str, algorithm: mx.HashAlgorithm, length: int) -> str:
    data = text.encode("utf-8")
    if algorithm == mx.HashAlgorithm.XXHASH64:
        out = str(xxhash.xxh64_intdigest(data, seed=0))
    elif algorithm == mx.HashAlgorithm.XXHASH32:
        out = str(xxhash.xxh32_intdigest(data, seed=0))
    elif algorithm == mx.HashAlgorithm.SHA256:
        out = hashlib.sha256(data).hexdigest()
    elif algorithm == mx.HashAlgorithm.MD5:
        out = hashlib.md5(data).hexdigest()
    else:  # pragma: no cover
        raise AssertionError(algorithm)
    return out[:length]


def struct_key(name: str) -> str:
    return name.replace("/", "_")


def test_reference_matches_spec_vectors() -> None:
    """The reference hash reproduces the verified vectors of spec §3.2."""
    concat = "default|1|video.audio|video_audio_hash_1|video.frames|video_frame_hash_1"
    x64 = mx.HashAlgorithm.XXHASH64
    assert ref_hash(concat, x64, 8) == "96465930"
    assert ref_hash("96465930", x64, 8) == "81606296"
    assert ref_hash(concat, mx.HashAlgorithm.SHA256, 8) == "b350736a"
    assert ref_hash(concat, mx.HashAlgorithm.MD5, 8) == "d50d88fd"
    assert ref_hash(concat, mx.HashAlgorithm.XXHASH32, 8) == "18761839"
    assert ref_hash("10273147|57677343", x64, 8) == "35194752"
    # aggregation vector
    assert ref_hash("t1|t2", x64, 8) == "24422777"
    assert ref_hash("temp|__metaxy_initial__|readings.temp|24422777", x64, 8) == "59128442"
    assert ref_hash("59128442", x64, 8) == "90728582"


# --------------------------------------------------------------------------- scenario model
@dataclass
class Upstream:
    key: str
    fields: list[tuple[str, str]]  # (name, code_version)
    optional: bool
    rows: dict[str, dict[str, str]]  # id -> {field name: data version}
    sample_dv: dict[str, str]  # id -> metaxy_data_version (arbitrary)

    @property
    def field_names(self) -> list[str]:
        return [n for n, _ in self.fields]


@dataclass
class DownField:
    name: str
    code_version: str
    # "default" | "all" | list of (upstream index, None for ALL or list of field names)
    deps: Any


@dataclass
class Scenario:
    algorithm: mx.HashAlgorithm
    length: int
    upstreams: list[Upstream]
    fields: list[DownField]
    stored: dict[str, tuple[str, str]] | None = None  # id -> (kind, sample provenance)
    stored_by_field_garbage: set[str] = field(default_factory=set)


def parents_of(sc: Scenario, f: DownField) -> list[tuple[str, str]]:
    """Reference field-level lineage: [(upstream key, upstream field name)] (spec §2.4/2.5)."""
    out: set[tuple[str, str]] = set()
    if f.deps == "all":
        out = {(u.key, n) for u in sc.upstreams for n in u.field_names}
    elif f.deps == "default":
        for u in sc.upstreams:
            hits = [n for n in u.field_names if n == f.name]
            out |= {(u.key, n) for n in (hits or u.field_names)}
    else:
        for index, names in f.deps:
            u = sc.upstreams[index]
            out |= {(u.key, n) for n in (u.field_names if names is None else names)}
    return sorted(out, key=lambda p: f"{p[0]}.{p[1]}")


def reference_expected(sc: Scenario) -> dict[str, tuple[dict[str, str], str]]:
    """id -> (provenance_by_field keyed by struct key, sample provenance)."""
    required = [u for u in sc.upstreams if not u.optional]
    if required:
        ids = set(required[0].rows)
        for u in required[1:]:
            ids &= set(u.rows)
    else:
        ids = set().union(*(set(u.rows) for u in sc.upstreams))
    by_key = {u.key: u for u in sc.upstreams}
    out = {}
    for sample in ids:
        by_field = {}
        for f in sc.fields:
            parts = [f.name, f.code_version]
            for up_key, up_field in parents_of(sc, f):
                row = by_key[up_key].rows.get(sample)
                parts += [f"{up_key}.{up_field}", "" if row is None else row[up_field]]
            by_field[struct_key(f.name)] = ref_hash("|".join(parts), sc.algorithm, sc.length)
        sample_prov = ref_hash(
            "|".join(by_field[k] for k in sorted(by_field)), sc.algorithm, sc.length
        )
        out[sample] = (by_field, sample_prov)
    return out


# --------------------------------------------------------------------------- strategies
@st.composite
def field_lists(draw: st.DrawFn, pool: list[str]) -> list[tuple[str, str]]:
    names = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3, unique=True))
    return [(n, draw(st.sampled_from(CODE_VERSIONS))) for n in names]


@st.composite
def upstreams(draw: st.DrawFn, key: str) -> Upstream:
    fields = draw(field_lists(FIELD_POOL))
    ids = draw(st.lists(st.sampled_from(IDS), max_size=6, unique=True))
    rows = {i: {n: draw(VALUE) for n, _ in fields} for i in ids}
    sample_dv = {i: draw(st.text(alphabet="0123456789abc|", max_size=6)) for i in ids}
    return Upstream(key, fields, draw(st.booleans()), rows, sample_dv)


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    ups = [draw(upstreams(draw(st.sampled_from(["r", "up/r"]))))]
    if draw(st.booleans()):
        ups.append(draw(upstreams(draw(st.sampled_from(["s", "a/s"])))))
    # each dep may be optional: one optional of two → left join; all optional → full outer
    # join (a single optional dep alone is just that frame)
    names = draw(st.lists(st.sampled_from(DOWN_FIELD_POOL), min_size=1, max_size=3, unique=True))
    fields = []
    for name in names:
        kind = draw(st.sampled_from(["default", "all", "explicit"]))
        deps: Any = kind
        if kind == "explicit":
            deps = []
            for _ in range(draw(st.integers(1, 2))):
                index = draw(st.integers(0, len(ups) - 1))
                chosen = draw(
                    st.none()
                    | st.lists(
                        st.sampled_from(ups[index].field_names), min_size=1, unique=True
                    )
                )
                deps.append((index, chosen))
        fields.append(DownField(name, draw(st.sampled_from(CODE_VERSIONS)), deps))
    sc = Scenario(
        draw(st.sampled_from(ALGORITHMS)), draw(st.sampled_from([8, 8, 12])), ups, fields
    )
    if draw(st.integers(0, 9)) == 0:
        return sc  # no stored table at all
    expected = reference_expected(sc)
    stored: dict[str, tuple[str, str]] = {}
    for sample in sorted(expected):
        kind = draw(st.sampled_from(["absent", "correct", "wrong"]))
        if kind == "correct":
            stored[sample] = ("correct", expected[sample][1])
        elif kind == "wrong":
            # never a valid hash string (neither decimal nor hex)
            stored[sample] = ("wrong", "wrong-" + draw(st.text(alphabet="xyz", max_size=3)))
    for sample in draw(st.lists(st.sampled_from(GONE_IDS + IDS), max_size=3, unique=True)):
        if sample not in expected:
            stored[sample] = ("gone", draw(st.sampled_from(["wrong-", "12345678"])))
    sc.stored = stored
    # a stored per-field struct that disagrees with the sample provenance must not matter
    sc.stored_by_field_garbage = set(
        draw(st.lists(st.sampled_from(sorted(stored) or ["-"]), max_size=2))
    )
    return sc


# --------------------------------------------------------------------------- frames
def upstream_frame(u: Upstream) -> pl.DataFrame:
    ids = sorted(u.rows)
    keys = [struct_key(n) for n in u.field_names]
    dtype = pl.Struct({k: pl.String for k in keys})
    dv = [{struct_key(n): u.rows[i][n] for n in u.field_names} for i in ids]
    return pl.DataFrame(
        {
            "id": ids,
            f"user_{struct_key(u.key)}": [f"{u.key}:{i}" for i in ids],
            # provenance deliberately differs from the data version: V(P) must be the latter
            "metaxy_provenance_by_field": pl.Series(
                [{k: f"prov-{v}" for k, v in row.items()} for row in dv], dtype=dtype
            ),
            "metaxy_provenance": [f"p{i}" for i in ids],
            "metaxy_data_version_by_field": pl.Series(dv, dtype=dtype),
            "metaxy_data_version": [u.sample_dv[i] for i in ids],
            "metaxy_feature_version": ["fv"] * len(ids),
            "metaxy_deleted_at": pl.Series([None] * len(ids), dtype=pl.Datetime("us", "UTC")),
        },
        schema_overrides={"id": pl.String},
    )


def stored_frame(sc: Scenario) -> pl.DataFrame:
    assert sc.stored is not None
    ids = sorted(sc.stored)
    keys = [struct_key(f.name) for f in sc.fields]
    dtype = pl.Struct({k: pl.String for k in keys})
    by_field = [
        {k: ("garbage" if i in sc.stored_by_field_garbage else sc.stored[i][1]) for k in keys}
        for i in ids
    ]
    return pl.DataFrame(
        {
            "id": ids,
            "metaxy_provenance_by_field": pl.Series(by_field, dtype=dtype),
            "metaxy_provenance": [sc.stored[i][1] for i in ids],
            "metaxy_data_version_by_field": pl.Series(by_field, dtype=dtype),
            "metaxy_data_version": [sc.stored[i][1] for i in ids],
            "metaxy_feature_version": ["fv"] * len(ids),
        },
        schema_overrides={"id": pl.String},
    )


def define(name: str, spec: mx.FeatureSpec) -> type:
    return type(name, (mx.BaseFeature,), {"__annotations__": {"id": str}}, spec=spec)


def build_plan(sc: Scenario) -> Any:
    classes = []
    for n, u in enumerate(sc.upstreams):
        spec = mx.FeatureSpec(
            key=u.key,
            id_columns=["id"],
            fields=[mx.FieldSpec(key=name, code_version=cv) for name, cv in u.fields],
        )
        classes.append(define(f"Up{n}", spec))
    fields = []
    for f in sc.fields:
        if f.deps == "default":
            deps: Any = []
        elif f.deps == "all":
            deps = mx.SpecialFieldDep.ALL
        else:
            deps = [
                mx.FieldDep(
                    feature=classes[index],
                    fields=mx.SpecialFieldDep.ALL if names is None else list(names),
                )
                for index, names in f.deps
            ]
        fields.append(mx.FieldSpec(key=f.name, code_version=f.code_version, deps=deps))
    spec = mx.FeatureSpec(
        key="down",
        id_columns=["id"],
        deps=[
            mx.FeatureDep(feature=c, optional=u.optional)
            for c, u in zip(classes, sc.upstreams, strict=True)
        ],
        fields=fields,
    )
    define("Down", spec)
    return mx.FeatureKey("down")


def check_rows(frame: pl.DataFrame, expected: dict[str, tuple[dict[str, str], str]]) -> None:
    for row in frame.select(
        "id", "metaxy_provenance_by_field", "metaxy_provenance", "metaxy_data_version",
        "metaxy_data_version_by_field",
    ).iter_rows(named=True):
        by_field, sample = expected[row["id"]]
        assert row["metaxy_provenance_by_field"] == by_field, row["id"]
        assert row["metaxy_provenance"] == sample, row["id"]
        assert row["metaxy_data_version"] == sample, row["id"]
        assert row["metaxy_data_version_by_field"] == by_field, row["id"]


def ids_of(frame: pl.DataFrame) -> list[str]:
    return sorted(frame["id"].to_list())


# --------------------------------------------------------------------------- property 1
@SETTINGS
@given(sc=scenarios())
def test_identity_increment_matches_reference(sc: Scenario) -> None:
    expected = reference_expected(sc)
    with mx.FeatureGraph().use() as graph:
        key = build_plan(sc)
        plan = graph.get_feature_plan(key)
        upstream = {mx.FeatureKey(u.key): upstream_frame(u) for u in sc.upstreams}
        current = None if sc.stored is None else stored_frame(sc)
        increments = []
        # four joins, or one (stored rows unique per sample) collected in one pass or lazily
        for unique in (False, True):
            lazy = versioning.resolve(
                plan,
                upstream=upstream,
                current=current,
                hash_algorithm=sc.algorithm,
                hash_length=sc.length,
                current_unique=unique,
            ).to_polars()
            increments.append(lazy.collect())
            increments.append(versioning.PolarsIncrement(*pl.collect_all([lazy.new, lazy.stale, lazy.orphaned])))

    stored = sc.stored or {}
    want_new = sorted(set(expected) - set(stored))
    want_stale = sorted(i for i in expected if i in stored and stored[i][1] != expected[i][1])
    want_orphaned = sorted(set(stored) - set(expected))

    for inc in increments:
        assert ids_of(inc.new) == want_new
        assert ids_of(inc.stale) == want_stale
        assert ids_of(inc.orphaned) == want_orphaned
        check_rows(inc.new, expected)
        check_rows(inc.stale, expected)
        assert inc.new.columns == increments[0].new.columns
        assert inc.orphaned.schema == increments[0].orphaned.schema
    # the whole expected frame, too (compute_expected is the engine's other entry point)
    with mx.FeatureGraph().use() as graph:
        plan = graph.get_feature_plan(build_plan(sc))
        full = versioning.compute_expected(
            plan, upstream, hash_algorithm=sc.algorithm, hash_length=sc.length
        ).collect().to_native()
    assert ids_of(full) == sorted(expected)
    check_rows(full, expected)
    # no bookkeeping columns leak into new / stale; orphaned keeps the stored schema
    for frame in (inc.new, inc.stale):
        assert "metaxy_deleted_at" not in frame.columns
        assert "metaxy_feature_version" not in frame.columns
    if current is not None:
        assert inc.orphaned.columns == current.columns


# --------------------------------------------------------------------------- property 2
@dataclass
class AggScenario:
    algorithm: mx.HashAlgorithm
    length: int
    up_fields: list[tuple[str, str]]
    down_fields: list[tuple[str, str]]
    rows: dict[tuple[str, str], dict[str, str]]  # (group, uid) -> field -> data version
    stored: dict[str, str] | None


@st.composite
def agg_scenarios(draw: st.DrawFn) -> AggScenario:
    up_fields = draw(field_lists(["temp", "hum"]))
    down_fields = draw(field_lists(["temp", "mean"]))
    keys = draw(
        st.lists(
            st.tuples(st.sampled_from(["g1", "g2", "g3"]), st.sampled_from(IDS)),
            max_size=8,
            unique=True,
        )
    )
    rows = {k: {n: draw(VALUE) for n, _ in up_fields} for k in keys}
    sc = AggScenario(
        draw(st.sampled_from(ALGORITHMS)), 8, up_fields, down_fields, rows, None
    )
    if draw(st.booleans()):
        expected = agg_reference(sc)
        stored = {}
        for group in sorted(expected):
            kind = draw(st.sampled_from(["absent", "correct", "wrong"]))
            if kind != "absent":
                stored[group] = expected[group][1] if kind == "correct" else "wrong"
        if draw(st.booleans()):
            stored["g9"] = "12345678"
        sc.stored = stored
    return sc


def agg_reference(sc: AggScenario) -> dict[str, tuple[dict[str, str], str]]:
    """Group -> (provenance_by_field, sample provenance) for ``aggregation(on=["g"])``."""
    a, n = sc.algorithm, sc.length
    out = {}
    for group in sorted({g for g, _ in sc.rows}):
        members = sorted(uid for g, uid in sc.rows if g == group)
        # the aggregated upstream data version per field (hash of the joined values)
        agg = {
            f: ref_hash("|".join(sc.rows[(group, uid)][f] for uid in members), a, n)
            for f, _ in sc.up_fields
        }
        up_names = sorted(f for f, _ in sc.up_fields)
        by_field = {}
        for name, cv in sc.down_fields:
            parents = [name] if name in up_names else up_names  # default mapping
            parts = [name, cv]
            for p in sorted(parents, key=lambda p: f"readings.{p}"):
                parts += [f"readings.{p}", agg[p]]
            by_field[name] = ref_hash("|".join(parts), a, n)
        out[group] = (by_field, ref_hash("|".join(by_field[k] for k in sorted(by_field)), a, n))
    return out


@SETTINGS
@given(sc=agg_scenarios())
def test_aggregation_increment_matches_reference(sc: AggScenario) -> None:
    expected = agg_reference(sc)
    keys = sorted(sc.rows)
    dtype = pl.Struct({f: pl.String for f, _ in sc.up_fields})
    dv = pl.Series([sc.rows[k] for k in keys], dtype=dtype)
    readings = pl.DataFrame(
        {
            "sensor_id": [g for g, _ in keys],
            "reading_id": [u for _, u in keys],
            "metaxy_provenance_by_field": dv,
            "metaxy_provenance": ["p"] * len(keys),
            "metaxy_data_version_by_field": dv,
            "metaxy_data_version": ["d"] * len(keys),
        },
        schema_overrides={"sensor_id": pl.String, "reading_id": pl.String},
    )
    current = None
    if sc.stored is not None:
        groups = sorted(sc.stored)
        sdtype = pl.Struct({f: pl.String for f, _ in sc.down_fields})
        struct = pl.Series(
            [{f: sc.stored[g] for f, _ in sc.down_fields} for g in groups], dtype=sdtype
        )
        current = pl.DataFrame(
            {
                "sensor_id": groups,
                "metaxy_provenance_by_field": struct,
                "metaxy_provenance": [sc.stored[g] for g in groups],
                "metaxy_data_version_by_field": struct,
                "metaxy_data_version": [sc.stored[g] for g in groups],
            },
            schema_overrides={"sensor_id": pl.String},
        )
    with mx.FeatureGraph().use() as graph:
        readings_cls = type(
            "Readings",
            (mx.BaseFeature,),
            {"__annotations__": {"sensor_id": str, "reading_id": str}},
            spec=mx.FeatureSpec(
                key="readings",
                id_columns=["sensor_id", "reading_id"],
                fields=[mx.FieldSpec(key=f, code_version=cv) for f, cv in sc.up_fields],
            ),
        )
        type(
            "Stats",
            (mx.BaseFeature,),
            {"__annotations__": {"sensor_id": str}},
            spec=mx.FeatureSpec(
                key="stats",
                id_columns=["sensor_id"],
                deps=[
                    mx.FeatureDep(
                        feature=readings_cls,
                        lineage=mx.LineageRelationship.aggregation(on=["sensor_id"]),
                    )
                ],
                fields=[mx.FieldSpec(key=f, code_version=cv) for f, cv in sc.down_fields],
            ),
        )
        plan = graph.get_feature_plan(mx.FeatureKey("stats"))
        inc = versioning.resolve(
            plan,
            upstream={mx.FeatureKey("readings"): readings},
            current=current,
            hash_algorithm=sc.algorithm,
            hash_length=sc.length,
        ).to_polars().collect()

    stored = sc.stored or {}
    new_groups = inc.new["sensor_id"].to_list()
    stale_groups = inc.stale["sensor_id"].to_list()
    # one row per downstream group (deliberate difference from Metaxy's N rows)
    assert sorted(new_groups) == sorted(set(expected) - set(stored))
    assert len(new_groups) == len(set(new_groups))
    assert sorted(stale_groups) == sorted(
        g for g in expected if g in stored and stored[g] != expected[g][1]
    )
    assert len(stale_groups) == len(set(stale_groups))
    assert sorted(inc.orphaned["sensor_id"].to_list()) == sorted(set(stored) - set(expected))
    for frame in (inc.new, inc.stale):
        for row in frame.iter_rows(named=True):
            by_field, sample = expected[row["sensor_id"]]
            assert row["metaxy_provenance_by_field"] == by_field
            assert row["metaxy_provenance"] == sample
            assert row["metaxy_data_version"] == sample


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_spec_aggregation_vector_through_engine(algorithm: mx.HashAlgorithm) -> None:
    """The aggregation vector of spec §3.4, for every algorithm, via the reference."""
    sc = AggScenario(
        algorithm, 8, [("temp", "__metaxy_initial__")], [("temp", "__metaxy_initial__")],
        {("s1", "r1"): {"temp": "t1"}, ("s1", "r2"): {"temp": "t2"}}, None,
    )
    expected = agg_reference(sc)
    if algorithm == mx.HashAlgorithm.XXHASH64:
        assert expected == {"s1": ({"temp": "59128442"}, "90728582")}
    test_aggregation_increment_matches_reference.hypothesis.inner_test(sc)  # type: ignore[attr-defined]
