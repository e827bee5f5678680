"""Randomised differential test: the same random graph and data through Metaxy 0.1.11 and us.

Every seed generates a small feature DAG (2-4 features: roots with 1-3 fields, downstream
features with 1-2 deps and random field mappings, renames, selects, filters, optional deps and
identity / aggregation / expansion lineage), defines it through both libraries, and checks:

* definition-level versions (feature, by-field, code, spec and definition versions, topological
  order) are identical, and both libraries accept or reject the same features;
* random root samples are resolved and written through both Delta stores, then every downstream
  feature is resolved (``new``) and written in topological order; some root rows then change
  (``stale``; rows that leave / enter a dep filter; a few new samples) and everything is
  resolved again; every third seed then bumps one field's code version (a new graph in both);
* every increment (new / stale / orphaned) carries the same IDs, columns and system hash values;
* every stored table reads back identically, and our store opened on Metaxy's root (and Metaxy's
  on ours) reads and resolves to the same results.

Nothing is hard-coded: both sides compute their own values from the same inputs.  Two
documented, deliberate differences (aggregation increments reduced to one row per sample,
expansion ``orphaned`` listing child rows) are normalised in ``increment_view``; leaked
``metaxy_deleted_at*`` columns (Metaxy) are ignored.  Genuine mismatches are excluded from the
generator behind ``Gen.mismatch_*`` switches and pinned by tests at the end.
"""

from __future__ import annotations

import copy
import random
import types
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import metaxy_delta as mx

mxo = pytest.importorskip("metaxy", reason="differential tests need the `compare` extra")
pytestmark = [
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore:Global Metaxy configuration not initialized"),
]

N_SEEDS = 26


@dataclass(frozen=True)
class Gen:
    """Generator switches (coverage switches default on).

    The ``mismatch_*`` switches enable a generator choice that exposed a genuine mismatch between
    the two libraries.  They are off here; each has a minimal test at the end of the module.  They never consume randomness, so a seed builds the same graph with the switch on
    or off, apart from that one choice (seeds 5 and 17 are affected in ``range(N_SEEDS)``).
    """

    optional_deps: bool = True
    aggregation: bool = True
    expansion: bool = True
    filters: bool = True
    multipart_fields: bool = True
    invalid_choices: bool = True  # occasionally generate graphs both libraries must reject
    # An aggregation dep with explicit `on` and an explicit `select` that drops the upstream's
    # other ID columns (`chunk`): Metaxy orders a group's rows only by the selected IDs before
    # `str.join("|")`, a tie its unstable sort resolves differently per thread pool, so there is
    # no fixed value to compare with; we order by every upstream ID (a total order).  Off: such
    # a `select` keeps the upstream ID columns; the last test pins our side.
    mismatch_agg_select_drops_upstream_ids: bool = False


GEN = Gen()

SYSTEM_HASH_COLUMNS = (
    "metaxy_provenance_by_field",
    "metaxy_provenance",
    "metaxy_data_version_by_field",
    "metaxy_data_version",
)
VOLATILE_COLUMNS = {
    "metaxy_created_at",
    "metaxy_updated_at",
    "metaxy_deleted_at",
    "metaxy_materialization_id",
}
HASHES = ["XXHASH32", "XXHASH64", "SHA256", "MD5", "WYHASH"]
FIELD_POOL = ["audio", "frames", "text", "default", "score"]
MULTIPART_FIELD_POOL = ["x/audio", "clip/frames", "meta/text"]


# --------------------------------------------------------------------------------------------
# generator: a library-independent plan
# --------------------------------------------------------------------------------------------


@dataclass
class DepPlan:
    upstream: int
    lineage: str = "identity"  # identity | aggregation | expansion
    on: list[str] | None = None
    rename: dict[str, str] | None = None
    select: tuple[str, ...] | None = None
    mapping: tuple[Any, ...] = ("default",)
    optional: bool = False
    filters: tuple[str, ...] | None = None


@dataclass
class FieldPlan:
    key: str
    code_version: str | None = None
    deps: Any = None  # None (automatic) | "ALL" | list[(upstream index, list[str] | "ALL")]


@dataclass
class FeaturePlan:
    index: int
    key: str
    id_columns: list[str]
    fields: list[FieldPlan]
    deps: list[DepPlan] = field(default_factory=list)
    own_str: list[str] = field(default_factory=list)  # user string columns (roots)
    own_int: list[str] = field(default_factory=list)  # user int columns
    carried: dict[str, str] = field(default_factory=dict)  # stored user columns -> "str"/"int"

    @property
    def is_root(self) -> bool:
        return not self.deps

    @property
    def lineage(self) -> str:
        """aggregation if any dep aggregates, expansion if the (single) dep expands, else identity."""
        kinds = {d.lineage for d in self.deps}
        return "aggregation" if "aggregation" in kinds else "expansion" if "expansion" in kinds else "identity"

    @property
    def cls_name(self) -> str:
        return f"F{self.index}"


@dataclass
class Plan:
    seed: int
    hash_algorithm: str
    features: list[FeaturePlan]
    n_pool: int


def _prepared_columns(up: FeaturePlan, dep: DepPlan) -> dict[str, str]:
    """Non-ID user columns the prepared upstream frame of ``dep`` carries (post rename/select)."""
    cols = {(dep.rename or {}).get(c, c): t for c, t in up.carried.items()}
    if dep.select is not None:
        cols = {c: t for c, t in cols.items() if c in dep.select}
    return cols


def _random_mapping(rng: random.Random, up: FeaturePlan, down_fields: list[str]) -> tuple[Any, ...]:
    up_fields = [f.key for f in up.fields]
    kind = rng.choices(["default", "suffix", "exclude", "all", "none", "specific"], [5, 1, 2, 1, 1, 3])[0]
    if kind == "default":
        return ("default",)
    if kind == "suffix":
        return ("default", {"match_suffix": True})
    if kind == "exclude":
        return ("default", {"exclude_fields": rng.sample(up_fields, rng.randint(1, len(up_fields)))})
    if kind == "specific":
        mapping = {}
        for f in rng.sample(down_fields, rng.randint(1, len(down_fields))):
            targets = set(rng.sample(up_fields, rng.randint(1, len(up_fields))))
            if rng.random() < 0.15:
                targets.add("nonexistent")
            mapping[f] = targets
        return ("specific", mapping)
    return (kind,)


def _may_map_nothing(dep: DepPlan, down_field: str) -> bool:
    kind = dep.mapping[0]
    if kind == "none":
        return True
    if kind == "specific":
        return down_field not in dep.mapping[1]
    return kind == "default" and len(dep.mapping) > 1 and "exclude_fields" in dep.mapping[1]


def generate(seed: int, gen: Gen = GEN) -> Plan:
    rng = random.Random(seed)
    n_features = rng.choice([2, 3, 3, 4, 4, 4])
    key_style = rng.choice(["f{i}", "grp/f{i}", "grp/sub-x/f{i}"])
    feats: list[FeaturePlan] = []
    for i in range(n_features):
        key = key_style.format(i=i)
        root = i == 0 or (i == 1 and n_features > 2 and rng.random() < 0.4)
        if root:
            ids = ["sample_id"] if rng.random() < 0.6 else ["sample_id", "chunk"]
            pool = FIELD_POOL + (MULTIPART_FIELD_POOL if gen.multipart_fields else [])
            names = rng.sample(pool, rng.randint(1, 3))
            names = list(dict.fromkeys(names))
            fields = [FieldPlan(n, rng.choice([None, None, "1", "2", "v3"])) for n in names]
            f = FeaturePlan(i, key, ids, fields, own_str=[f"p{i}"], own_int=[f"n{i}"])
            f.carried = {f"p{i}": "str", f"n{i}": "int"}
            feats.append(f)
            continue

        # downstream
        ups = rng.sample(range(i), min(i, 1 if rng.random() < 0.4 else 2))
        first = feats[ups[0]]
        lineage = "identity"
        if gen.aggregation and first.id_columns == ["sample_id", "chunk"] and rng.random() < 0.35:
            lineage = "aggregation"
            ids = ["sample_id"]
        elif gen.expansion and rng.random() < 0.2 and "child" not in first.id_columns:
            lineage = "expansion"
            ids = [*first.id_columns, "child"]
            ups = ups[:1]
        else:
            ids = list(first.id_columns)
        # further deps must be joinable on the downstream IDs with identity lineage
        ups = [ups[0]] + [u for u in ups[1:] if feats[u].id_columns == ids or (
            gen.aggregation and lineage != "expansion" and ids == ["sample_id"]
            and feats[u].id_columns == ["sample_id", "chunk"])]

        names = list(dict.fromkeys(rng.sample(FIELD_POOL, rng.randint(1, 3))))
        deps: list[DepPlan] = []
        taken: set[str] = set()
        for j, u in enumerate(ups):
            up = feats[u]
            if j == 0:
                lin = lineage
            else:
                lin = "identity" if up.id_columns == ids else "aggregation"
            dep = DepPlan(u, lin)
            if lin == "aggregation":
                dep.on = ["sample_id"] if rng.random() < 0.7 else None
            elif lin == "expansion":
                dep.on = list(up.id_columns)
            # column treatment
            cols = list(up.carried)
            treat = rng.choices(["none", "rename", "select", "empty"], [2, 3, 2, 1])[0]
            if treat == "rename" and cols:
                dep.rename = {c: f"{c}_r{i}" for c in rng.sample(cols, rng.randint(1, len(cols)))}
            if treat == "select":
                post = [(dep.rename or {}).get(c, c) for c in cols]
                dep.select = tuple(rng.sample(post, rng.randint(0, len(post))))
            if treat == "empty":
                dep.select = ()
            prepared = _prepared_columns(up, dep)
            clash = set(prepared) & taken
            if clash and not (gen.invalid_choices and rng.random() < 0.1):
                # avoid the collision both libraries reject: rename or drop the clashing columns
                if rng.random() < 0.5:
                    dep.rename = {**(dep.rename or {}), **{
                        c: f"{c}_r{i}{j}" for c, c2 in ((c, (dep.rename or {}).get(c, c)) for c in cols)
                        if c2 in clash}}
                    if dep.select is not None:
                        dep.select = tuple((f"{s}_r{i}{j}" if s in clash else s) for s in dep.select)
                else:
                    dep.select = tuple(c for c in prepared if c not in clash)
                prepared = _prepared_columns(up, dep)
            if (lin == "aggregation" and dep.on and dep.select is not None
                    and not gen.mismatch_agg_select_drops_upstream_ids):
                keep = [(dep.rename or {}).get(c, c) for c in up.id_columns]
                dep.select = tuple(dict.fromkeys([*dep.select, *keep]))
            taken |= set(prepared)
            if gen.filters and rng.random() < 0.4:
                ints = [c for c, t in prepared.items() if t == "int"]
                if not ints and dep.select is None:
                    ints = [c for c, t in _prepared_columns(up, DepPlan(u, rename=dep.rename)).items() if t == "int"]
                if ints:
                    dep.filters = (f"{rng.choice(ints)} {rng.choice(['>', '>=', '<', '!='])} {rng.randint(0, 99)}",)
            if gen.optional_deps and lin == "identity" and rng.random() < 0.3:
                dep.optional = True
            dep.mapping = _random_mapping(rng, up, names)
            deps.append(dep)

        fields = []
        for n in names:
            cv = rng.choice([None, None, "1", "7"])
            kind = rng.choices(["auto", "all", "explicit"], [6, 1, 2])[0]
            fdeps: Any = None
            if kind == "all":
                fdeps = "ALL"
            elif kind == "explicit":
                fdeps = []
                for d in rng.sample(deps, rng.randint(1, len(deps))):
                    upf = [f.key for f in feats[d.upstream].fields]
                    if rng.random() < 0.3:
                        fdeps.append((d.upstream, "ALL"))
                    else:
                        chosen = rng.sample(upf, rng.randint(1, len(upf)))
                        if gen.invalid_choices and rng.random() < 0.05:
                            chosen.append("nonexistent")
                        fdeps.append((d.upstream, chosen))
            if fdeps is None and all(_may_map_nothing(d, n) for d in deps) and rng.random() < 0.85:
                fdeps = "ALL"  # mostly avoid "no upstream fields" (both libraries reject it)
            fields.append(FieldPlan(n, cv, fdeps))
        f = FeaturePlan(i, key, ids, fields, deps=deps, own_int=[f"d{i}"])
        carried: dict[str, str] = {}
        if all(d.lineage != "aggregation" for d in deps):
            for d in deps:
                carried.update(_prepared_columns(feats[d.upstream], d))
        carried[f"d{i}"] = "int"
        f.carried = carried
        feats.append(f)
    n_pool = rng.choice([3, 8, 20, 60, 150, 200])
    return Plan(seed, rng.choice(HASHES), feats, n_pool)


# --------------------------------------------------------------------------------------------
# building the plan through one library
# --------------------------------------------------------------------------------------------


def _mapping(lib: Any, m: tuple[Any, ...]) -> Any:
    if m[0] == "default":
        return lib.FieldsMapping.default(**(m[1] if len(m) > 1 else {}))
    if m[0] == "specific":
        return lib.FieldsMapping.specific({k: set(v) for k, v in m[1].items()})
    return getattr(lib.FieldsMapping, m[0])()


def _lineage(lib: Any, dep: DepPlan) -> Any:
    if dep.lineage == "aggregation":
        return lib.LineageRelationship.aggregation(on=dep.on)
    if dep.lineage == "expansion":
        return lib.LineageRelationship.expansion(on=dep.on)
    return lib.LineageRelationship.identity()


def build(lib: Any, plan: Plan) -> tuple[Any, dict[int, Any]]:
    graph = lib.FeatureGraph()
    classes: dict[int, Any] = {}
    with graph.use():
        for f in plan.features:
            fields = []
            for fp in f.fields:
                kwargs: dict[str, Any] = {"key": fp.key}
                if fp.code_version is not None:
                    kwargs["code_version"] = fp.code_version
                if fp.deps == "ALL":
                    kwargs["deps"] = lib.SpecialFieldDep.ALL
                elif fp.deps is not None:
                    kwargs["deps"] = [
                        lib.FieldDep(
                            feature=plan.features[u].key,
                            fields=lib.SpecialFieldDep.ALL if fs == "ALL" else list(fs),
                        )
                        for u, fs in fp.deps
                    ]
                fields.append(lib.FieldSpec(**kwargs) if len(kwargs) > 1 else fp.key)
            deps = []
            for d in f.deps:
                kwargs = {"feature": classes[d.upstream], "fields_mapping": _mapping(lib, d.mapping),
                          "lineage": _lineage(lib, d)}
                if d.rename is not None:
                    kwargs["rename"] = dict(d.rename)
                if d.select is not None:
                    kwargs["select"] = d.select
                if d.filters is not None:
                    kwargs["filters"] = list(d.filters)
                if d.optional:
                    kwargs["optional"] = True
                deps.append(lib.FeatureDep(**kwargs))
            spec = lib.FeatureSpec(key=f.key, id_columns=f.id_columns, fields=fields, deps=deps)
            annotations: dict[str, Any] = {c: str for c in f.id_columns}
            annotations.update({c: str for c in f.own_str})

            def body(ns: dict[str, Any], f: FeaturePlan = f, annotations: dict[str, Any] = annotations) -> None:
                ns["__module__"] = __name__
                ns["__qualname__"] = f.cls_name
                ns["__annotations__"] = annotations
                for c in f.own_int:
                    ns["__annotations__"][c] = int | None
                    ns[c] = None

            classes[f.index] = types.new_class(f.cls_name, (lib.BaseFeature,), {"spec": spec}, body)
    return graph, classes


def _attempt(fn: Any) -> tuple[str, Any]:
    try:
        return ("ok", fn())
    except Exception as exc:  # both sides must fail alike; the type is library specific
        return ("error", f"{type(exc).__name__}: {str(exc)[:300]}")


def definition_versions(graph: Any, key: str) -> dict[str, Any]:
    d = graph.get_feature_definition(key)
    return {
        "feature_version": graph.get_feature_version(key),
        "by_field": graph.get_feature_version_by_field(key),
        "code_version": d.spec.code_version,
        "spec_version": d.spec.feature_spec_version,
        "definition_version": d.feature_definition_version,
    }


# --------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------


def _rand_id(rng: random.Random) -> str:
    return "".join(rng.choices("abcdefghijklmnopqrstuvwxyz0123456789", k=rng.randint(3, 8)))


def root_samples(rng: random.Random, f: FeaturePlan, pool: list[str]) -> pl.DataFrame:
    ids = sorted(rng.sample(pool, max(1, int(len(pool) * rng.uniform(0.6, 1.0)))))
    rows: list[dict[str, Any]] = []
    for sid in ids:
        chunks = [f"c{k}" for k in range(rng.randint(1, 3))] if "chunk" in f.id_columns else [None]
        for ch in chunks:
            row: dict[str, Any] = {"sample_id": sid}
            if ch is not None:
                row["chunk"] = ch
            row[f"p{f.index}"] = f"path/{sid}/{ch}"
            row[f"n{f.index}"] = rng.randint(0, 99)
            row["metaxy_provenance_by_field"] = {
                fp.key.replace("/", "_"): f"h{rng.getrandbits(32):x}" for fp in f.fields
            }
            rows.append(row)
    rng.shuffle(rows)  # physical row order must not matter
    return pl.DataFrame(rows)


def change_rows(rng: random.Random, f: FeaturePlan, df: pl.DataFrame, new_ids: list[str]) -> pl.DataFrame:
    """Change the provenance of one field on ~10-30 % of the rows (and sometimes their int
    column, which can move a row across a dep filter); sometimes add a few new samples."""
    rows = df.to_dicts()
    if rng.random() < 0.5:
        extra = root_samples(rng, f, new_ids)
        rows += extra.to_dicts()
    for row in rng.sample(rows, max(1, int(len(rows) * rng.uniform(0.1, 0.3)))):
        prov = dict(row["metaxy_provenance_by_field"])
        k = rng.choice(sorted(prov))
        prov[k] = prov[k] + "-changed"
        row["metaxy_provenance_by_field"] = prov
        if rng.random() < 0.7:
            row[f"n{f.index}"] = rng.randint(0, 99)
    return pl.DataFrame(rows, schema=df.schema)


def _native(frame: Any) -> pl.DataFrame:
    df = frame.to_native() if hasattr(frame, "to_native") else frame
    if isinstance(df, pl.LazyFrame):
        df = df.collect()
    return df


def _canon(df: pl.DataFrame, ids: list[str], reduce_to: list[str] | None = None) -> tuple[list[str], list[dict[str, Any]]]:
    """Columns (sorted) and rows sorted by ID, without timestamps / materialization ids.

    ``reduce_to``: compare only these ID columns and the system hash columns, one row per
    distinct value (for the documented granularity differences, see ``increment_view``).
    """
    df = df.drop([c for c in df.columns if c in VOLATILE_COLUMNS or c.startswith("metaxy_deleted_at")])
    cols = sorted(df.columns)
    if reduce_to is not None:
        ids = reduce_to
        df = df.select([*ids, *[c for c in SYSTEM_HASH_COLUMNS if c in df.columns]]).unique()
        return cols, df.sort(df.columns).to_dicts()
    sort_cols = [c for c in ids if c in df.columns] + ["metaxy_provenance"]
    return cols, df.select(cols).sort(sort_cols, nulls_last=True).to_dicts()


def to_write(f: FeaturePlan, inc: Any) -> pl.DataFrame:
    """What a user writes for ``new`` + ``stale`` of ``f`` (identical procedure in both libs)."""
    df = pl.concat([_native(inc.new), _native(inc.stale)], how="diagonal_relaxed")
    df = df.drop([c for c in df.columns if c.startswith("metaxy_deleted_at")])
    lin = f.lineage
    if lin == "aggregation":
        # one row per downstream sample; every upstream row of a group carries the same values
        df = df.unique(subset=f.id_columns, keep="first")
        df = df.select([*f.id_columns, *[c for c in df.columns if c in SYSTEM_HASH_COLUMNS]])
    elif lin == "expansion":
        parents = [c for c in f.id_columns if c != "child"]
        df = df.with_columns(
            pl.concat_str(parents, separator="/").map_elements(
                lambda s: [f"k{j}" for j in range(1 + zlib.crc32(s.encode()) % 3)],
                return_dtype=pl.List(pl.String),
            ).alias("child")
        ).explode("child")
    if not f.is_root:
        df = df.with_columns(
            pl.concat_str(f.id_columns, separator="/").map_elements(
                lambda s: zlib.crc32(s.encode()) % 100, return_dtype=pl.Int64
            ).alias(f"d{f.index}")
        )
    return df


# --------------------------------------------------------------------------------------------
# the pipeline, run in lock-step through both libraries
# --------------------------------------------------------------------------------------------


def metaxy_store(root: Path, hash_algorithm: Any = None) -> Any:
    from metaxy.ext.polars.handlers.delta import DeltaMetadataStore

    return DeltaMetadataStore(str(root), hash_algorithm=hash_algorithm)


class Side:
    """One library: its graph and classes for the plan, and its Delta store on ``root``."""

    def __init__(self, lib: Any, plan: Plan, root: Path) -> None:
        self.lib = lib
        self.graph, self.classes = build(lib, plan)
        algo = lib.HashAlgorithm[plan.hash_algorithm]
        if lib is mxo:
            self.store = metaxy_store(root, algo)
        else:
            self.store = mx.DeltaMetadataStore(root, hash_algorithm=algo)

    def run(self, fn: Any, mode: str = "w") -> Any:
        with warnings.catch_warnings(), self.graph.use(), self.store.open(mode):
            warnings.simplefilter("ignore")
            return fn(self.store)


def increment_view(inc: Any, f: FeaturePlan) -> dict[str, Any]:
    """Comparable view of an increment.

    Two documented, deliberate differences of ours (README "Compatibility", spec §7.15) are
    normalised away, everything else is compared as is:

    * aggregation: Metaxy returns one ``new``/``stale`` row per *upstream* row (all rows of a
      group carry the same hashes), we return one row per aggregated sample with the upstream
      user columns as lists -> compare the distinct (downstream IDs, hash columns) rows;
    * expansion: Metaxy's ``orphaned`` is collapsed to one arbitrary child per parent, ours lists
      every stored child -> compare the distinct (parent IDs, hash columns) rows.
    """
    lin = f.lineage
    out = {}
    for k in ("new", "stale", "orphaned"):
        reduce_to = None
        if lin == "aggregation" and k != "orphaned":
            reduce_to = f.id_columns
        if lin == "expansion" and k == "orphaned":
            reduce_to = [c for c in f.id_columns if c != "child"]
        out[k] = _canon(_native(getattr(inc, k)), f.id_columns, reduce_to)
        if lin == "aggregation" and k != "orphaned":
            out[k] = ([c for c in out[k][0] if c in f.id_columns or c.startswith("metaxy_")], out[k][1])
    return out


def _diff_msg(label: str, a: Any, b: Any) -> str:
    return f"{label}:\n metaxy={a!r}\n ours  ={b!r}"[:4000]


@dataclass
class Sides:
    theirs: Side  # Metaxy on its root
    ours: Side  # us on our root
    cross: Side  # us on Metaxy's root (read / resolve only)
    rcross: Side  # Metaxy on our root (read only)


def make_sides(plan: Plan, tmp_path: Path) -> Sides:
    return Sides(
        Side(mxo, plan, tmp_path / "metaxy"),
        Side(mx, plan, tmp_path / "ours"),
        Side(mx, plan, tmp_path / "metaxy"),
        Side(mxo, plan, tmp_path / "ours"),
    )


def compare_definitions(sides: Sides, plan: Plan, stats: dict[str, Any]) -> list[FeaturePlan]:
    """Both accept / reject the same features with identical versions; return the accepted ones."""
    alive: list[FeaturePlan] = []
    for f in plan.features:
        a = _attempt(lambda: definition_versions(sides.theirs.graph, f.key))
        b = _attempt(lambda: definition_versions(sides.ours.graph, f.key))
        assert a[0] == b[0], _diff_msg(f"accept/reject of {f.key}", a, b)
        assert a == b or a[0] == "error", _diff_msg(f"definition versions of {f.key}", a, b)
        if a[0] == "ok" and all(any(x.index == d.upstream for x in alive) for d in f.deps):
            alive.append(f)
        else:
            stats["rejected"].append((f.key, a[1], b[1]))
    order = [k.to_string() for k in sides.theirs.graph.topological_sort_features()]
    assert order == [k.to_string() for k in sides.ours.graph.topological_sort_features()]
    return alive


def resolve_all(sides: Sides, alive: list[FeaturePlan], samples: dict[int, pl.DataFrame],
                round_name: str, check_cross: bool, stats: dict[str, Any]) -> None:
    """Resolve every feature in topological order in both stores, compare, write the increments."""
    broken: set[int] = set()
    for f in alive:
        if any(d.upstream in broken for d in f.deps):
            broken.add(f.index)
            continue
        kw = {"samples": samples[f.index]} if f.is_root else {}

        def resolve(side: Side) -> Any:
            def go(s: Any) -> Any:
                inc = s.resolve_update(side.classes[f.index], **kw)
                return inc, increment_view(inc, f)

            return side.run(go, "r")

        a = _attempt(lambda: resolve(sides.theirs))
        b = _attempt(lambda: resolve(sides.ours))
        label = f"{round_name} resolve_update({f.key})"
        assert a[0] == b[0], _diff_msg(f"accept/reject of {label}", a, b)
        if a[0] == "error":
            broken.add(f.index)
            stats["rejected"].append((f"{f.key}@{round_name}", a[1], b[1]))
            continue
        stats["resolves"] += 1
        for kind in ("new", "stale", "orphaned"):
            assert a[1][1][kind] == b[1][1][kind], _diff_msg(f"{label}.{kind}", a[1][1][kind], b[1][1][kind])
            stats["rows"][kind] += len(a[1][1][kind][1])
        if check_cross:
            c = resolve(sides.cross)
            assert c[1] == a[1][1], _diff_msg(f"{label} ours on metaxy's tables", a[1][1], c[1])
        sides.theirs.run(lambda s: s.write(sides.theirs.classes[f.index], to_write(f, a[1][0])))
        sides.ours.run(lambda s: s.write(sides.ours.classes[f.index], to_write(f, b[1][0])))


def compare_final_state(sides: Sides, alive: list[FeaturePlan], samples: dict[int, pl.DataFrame]) -> None:
    """Every table reads back identically, also across the two stores, and resolves alike."""

    def read(side: Side, f: FeaturePlan) -> Any:
        return side.run(lambda s: _canon(_native(s.read(side.classes[f.index])), f.id_columns), "r")

    for f in alive:
        a = _attempt(lambda: read(sides.theirs, f))
        b = _attempt(lambda: read(sides.ours, f))
        assert a[0] == b[0], _diff_msg(f"read({f.key}) accept/reject", a, b)
        if a[0] == "error":  # never written (its resolve was rejected by both)
            continue
        assert b == a, _diff_msg(f"stored {f.key}", a, b)
        assert read(sides.cross, f) == a[1], f"ours reading metaxy's {f.key} differs"
        assert read(sides.rcross, f) == a[1], f"metaxy reading our {f.key} differs"
        assert {r["metaxy_feature_version"] for r in a[1][1]} <= {sides.theirs.graph.get_feature_version(f.key)}

    # resolving the final state on Metaxy's tables: ours gives Metaxy's (empty) increments
    for f in alive:
        kw = {"samples": samples[f.index]} if f.is_root else {}

        def resolve(side: Side) -> Any:
            return side.run(lambda s: increment_view(s.resolve_update(side.classes[f.index], **kw), f), "r")

        a = _attempt(lambda: resolve(sides.theirs))
        c = _attempt(lambda: resolve(sides.cross))
        assert a[0] == c[0], _diff_msg(f"final resolve_update({f.key}) accept/reject", a, c)
        assert a[0] == "error" or a == c, _diff_msg(f"final resolve_update({f.key}) ours on metaxy's tables", a, c)


def bump_code_version(rng: random.Random, plan: Plan, alive: list[FeaturePlan]) -> Plan:
    """The same plan with one field's code version changed (a new feature version downstream)."""
    bumped = copy.deepcopy(plan)
    f = bumped.features[rng.choice(alive).index]
    fp = rng.choice(f.fields)
    fp.code_version = (fp.code_version or "") + "-bumped"
    return bumped


def run_seed(seed: int, tmp_path: Path, gen: Gen = GEN) -> dict[str, Any]:
    plan = generate(seed, gen)
    stats: dict[str, Any] = {"plan": plan, "rejected": [], "resolves": 0,
                             "rows": {"new": 0, "stale": 0, "orphaned": 0}}
    sides = make_sides(plan, tmp_path)
    alive = compare_definitions(sides, plan, stats)

    rng = random.Random(seed * 7919 + 1)
    pool = list(dict.fromkeys(_rand_id(rng) for _ in range(plan.n_pool)))
    samples = {f.index: root_samples(rng, f, pool) for f in alive if f.is_root}
    resolve_all(sides, alive, samples, "initial", seed % 2 == 0, stats)

    # change ~10-30 % of every root's rows (plus a few new samples) -> stale / new / orphaned
    new_ids = [f"new-{_rand_id(rng)}" for _ in range(rng.randint(1, 4))]
    for f in alive:
        if f.is_root:
            samples[f.index] = change_rows(rng, f, samples[f.index], new_ids)
    resolve_all(sides, alive, samples, "changed", True, stats)
    compare_final_state(sides, alive, samples)

    # a code-version bump: both see a new graph, new feature versions, everything below is new
    if alive and seed % 3 == 0:
        plan = bump_code_version(rng, plan, alive)
        sides = make_sides(plan, tmp_path)
        bumped_alive = compare_definitions(sides, plan, stats)
        assert [f.index for f in bumped_alive] == [f.index for f in alive]
        alive = bumped_alive
        resolve_all(sides, alive, samples, "bumped", True, stats)
        compare_final_state(sides, alive, samples)
    return stats


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(N_SEEDS))
def test_random_graph_and_data_match_metaxy(seed: int, tmp_path: Path) -> None:
    stats = run_seed(seed, tmp_path)
    # the data path must actually have been exercised (or every feature rejected by both)
    assert stats["resolves"] >= 1 or stats["rejected"]


def _aggregation_of_parts(lib: Any, select: tuple[str, ...] | None) -> tuple[Any, Any, Any]:
    graph = lib.FeatureGraph()
    with graph.use():

        class Parts(lib.BaseFeature, spec=lib.FeatureSpec(key="fz/parts", id_columns=["sample_id", "chunk"], fields=["default"])):
            sample_id: str
            chunk: str

        class Whole(lib.BaseFeature, spec=lib.FeatureSpec(key="fz/whole", id_columns=["sample_id"], deps=[
            lib.FeatureDep(feature=Parts, select=select, lineage=lib.LineageRelationship.aggregation(on=["sample_id"])),
        ])):
            sample_id: str

    return graph, Parts, Whole


def _aggregated(lib: Any, store: Any, samples: pl.DataFrame, select: tuple[str, ...] | None) -> list[tuple[Any, ...]]:
    graph, parts, whole = _aggregation_of_parts(lib, select)
    with warnings.catch_warnings(), graph.use(), store.open("w"):
        warnings.simplefilter("ignore")
        store.write(parts, _native(store.resolve_update(parts, samples=samples).new).drop("metaxy_deleted_at", strict=False))
        new = _native(store.resolve_update(whole).new)
        return sorted(new.select("sample_id", "metaxy_provenance").unique().rows())


def test_aggregation_order_is_total_when_select_drops_upstream_ids(tmp_path: Path) -> None:
    """``Gen.mismatch_agg_select_drops_upstream_ids``: an aggregation whose ``select=()`` drops
    the upstream ID ``chunk`` joins each group's values in upstream-ID order anyway, so its hash
    is Metaxy's for ``select=None`` (where Metaxy's order is total too) and does not depend on
    the stored row order. Metaxy 0.1.11 sorted by the selected IDs only: a tie left the order to
    Polars' unstable sort, so its hash changed with the thread count (no fixed value to match)."""
    rng = random.Random(0)
    rows = [
        {"sample_id": f"s{g:02d}", "chunk": f"c{c}", "metaxy_provenance_by_field": {"default": f"v{g}-{c}-{rng.random():.6f}"}}
        for g in range(40) for c in range(rng.randint(2, 5))
    ]
    orders = []
    for attempt in range(2):
        rng.shuffle(rows)
        orders.append(_aggregated(mx, mx.DeltaMetadataStore(tmp_path / f"ours{attempt}"), pl.DataFrame(rows), ()))
    assert orders[0] == orders[1]
    reference = _aggregated(mxo, metaxy_store(tmp_path / "metaxy"), pl.DataFrame(rows), None)
    assert orders[0] == reference
    assert _aggregated(mx, mx.DeltaMetadataStore(tmp_path / "ours_all"), pl.DataFrame(rows), None) == reference
