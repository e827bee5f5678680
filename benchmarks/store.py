"""Metadata-store benchmark: ``DeltaMetadataStore`` vs Metaxy 0.1.11's Delta store vs raw Polars.

Usage::

    .venv/bin/python benchmarks/store.py                                  # sizes 100k,1M
    .venv/bin/python benchmarks/store.py --sizes 1M,10M --scenarios simple,wide
    .venv/bin/python benchmarks/store.py --sizes 10M --scenarios partition --impls ours

Scenarios (data generated in memory; ids ``"v{i}"``; provenance strings derived from ``i``):

- ``simple``: root ``video`` (fields ``audio``, ``frames``) → ``leaf`` (field ``default``).
- ``wide``: roots ``video`` (``audio``, ``frames``, ``captions``, ``thumbs``) and ``sensor``
  (``gps``, ``imu``, ``lidar``, ``radar``) → ``leaf`` (``audio``, ``frames``; default field
  mapping).
- ``partition``: ``simple`` plus a ``part`` column with 100 values (``p00``..``p99``); both
  tables are Delta-partitioned by ``part`` (Metaxy: ``delta_write_options={"partition_by":
  ["part"]}``) and the leaf selects ``part`` from ``video``.

Steps (the paper's four), each timed separately:

1. ``write-roots``: ``store.write(root, samples)`` for every root.
2. ``resolve-new``: ``store.resolve_update("leaf")`` (eager: collected), nothing stored yet.
3. ``write-leaf``: ``store.write("leaf", increment.new)``. With ``--leaf-repeats K``, the same
   frame is written K more times, each into a fresh store root (the same first write of the
   leaf's table): ``write-leaf-again`` is their median, held to step 3's target. One 10M-row
   write per run is a single noisy sample (±15 % between runs here, for both stores).
4. ``resolve-stale``: after re-writing 10 % of the ``video`` rows with a new ``audio`` value
   (timed apart as ``rewrite-10%``), ``store.resolve_update("leaf")``.

The ``partition`` scenario adds ``resolve-1-part``: ``resolve_update("leaf",
global_filters=["part = 'p07'"])`` (Metaxy: ``nw.col("part") == "p07"``) on the same state
as step 4, to be compared with step 4 (the whole-table resolve). It runs in the open store of
the earlier steps, which (ours) reuses each table's snapshot while nothing commits;
``resolve-1-part-cold`` (ours only) resolves the same partition in a freshly opened store each
time, as the first resolve of a new process (a Dagster step) does.

``bound`` is a hand-written raw-Polars lower bound of the resolve steps, run in the same
process as ``ours`` against the same Delta tables: ``pl.scan_delta`` + latest row per sample
+ ``polars_hash`` xxhash32 + one full join, computing the same new/stale/orphaned rows (the
counts are checked against the store's; at sizes ≤ 1M the frames are compared too). It knows
the benchmark's data (one row per sample in each write) but not the store's read plan: for
resolve-stale the store is faster than it, because the store proves the first write unique
and finds the re-written samples with hash lookups (``store/_frames.py``) where the bound
anti-joins the ID strings.

Every (scenario, size, implementation) runs in a fresh subprocess. Peak RSS per step is the
kernel's ``VmHWM`` reset before the step (``/proc/self/clear_refs``; psutil sampling every
50 ms where that is unavailable); ``run peak`` is the subprocess's ``ru_maxrss`` (including
data generation). Tables live in ``benchmarks/.data/`` and are removed after each run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import polars as pl
import polars_hash  # noqa: F401  (registers .nchash)
import psutil
from _common import SCENARIOS as BASE_SCENARIOS
from _common import PeakMemory, fmt_size, parse_size, status_kb

HERE = Path(__file__).resolve().parent
DATA_DIR = HERE / ".data"

PBF = "metaxy_provenance_by_field"
PROV = "metaxy_provenance"
DVBF = "metaxy_data_version_by_field"
DV = "metaxy_data_version"
UPDATED = "metaxy_updated_at"
DELETED = "metaxy_deleted_at"
FVERSION = "metaxy_feature_version"
ID = "video_id"
LENGTH = 8  # default hash truncation of both stores
CODE_VERSION = "__metaxy_initial__"
PARTITION = "p07"

SCENARIOS: dict[str, dict[str, Any]] = {
    **{name: {**spec, "partitioned": False} for name, spec in BASE_SCENARIOS.items()},
    "partition": {**BASE_SCENARIOS["simple"], "partitioned": True},
}
STEPS = (
    "write-roots", "resolve-new", "write-leaf", "write-leaf-again", "rewrite-10%", "resolve-stale",
    "resolve-1-part", "resolve-1-part-cold",
)
RESOLVE_STEPS = ("resolve-new", "resolve-stale", "resolve-1-part")

# Issue targets: Metaxy 0.1.11 on a 2-core box (seconds; peak GB).
METAXY_REFERENCE: dict[tuple[str, int], dict[str, float]] = {
    ("simple", 10_000_000): {"write-roots": 5.5, "resolve-new": 8.3, "write-leaf": 2.7,
                             "resolve-stale": 25.6, "peak_gb": 11.3},
    ("wide", 10_000_000): {"write-roots": 15.5, "resolve-new": 22.0, "write-leaf": 3.8,
                           "resolve-stale": 48.6, "peak_gb": 16.5},
    ("simple", 1_000_000): {"write-roots": 1.0, "resolve-new": 0.78, "write-leaf": 0.56,
                            "resolve-stale": 2.16},
}  # fmt: skip


# ----------------------------------------------------------------------------- sizes
# ----------------------------------------------------------------------------- data
def _index(n: int) -> pl.Expr:
    return pl.int_range(n, dtype=pl.Int64)


def make_samples(fields: list[str], n: int, salt: int, partitioned: bool) -> pl.DataFrame:
    """Root samples: ids (+ ``part``) and a provenance struct of decimal hash-like strings."""
    i = _index(n)
    values = {
        f: ((i * 2654435761 + (salt * 97 + k) * 40503) % 1_000_000_007).cast(pl.String)
        for k, f in enumerate(fields)
    }
    columns: dict[str, pl.Expr] = {ID: pl.format("v{}", i)}
    if partitioned:
        columns["part"] = pl.format("p{}", (i % 100).cast(pl.String).str.zfill(2))
    return pl.select(**columns, **{PBF: pl.struct(**values)})


def changed_rows(samples: pl.DataFrame) -> pl.DataFrame:
    """10 % of the rows (every partition has some), with a new ``audio`` value."""
    i = pl.int_range(pl.len(), dtype=pl.Int64)
    new_audio = pl.concat_str(pl.lit("x"), pl.col(PBF).struct.field("audio")).alias("audio")
    return samples.filter((i // 100) % 10 == 0).with_columns(
        pl.col(PBF).struct.with_fields(new_audio)
    )


# ----------------------------------------------------------------------------- features
def define(mx: Any, scenario: str) -> dict[str, Any]:
    """Feature classes of a scenario, built with ``mx`` (metaxy_delta or metaxy)."""
    spec = SCENARIOS[scenario]
    partitioned = spec["partitioned"]
    annotations: dict[str, Any] = {ID: str, **({"part": str} if partitioned else {})}
    classes: dict[str, Any] = {}
    for key, fields in spec["roots"].items():
        metadata = {"partition_by": "part"} if partitioned and mx.__name__ == "metaxy_delta" else {}
        classes[key] = type(
            key.title(),
            (mx.BaseFeature,),
            {"__annotations__": dict(annotations)},
            spec=mx.FeatureSpec(key=key, id_columns=[ID], fields=fields, **({"metadata": metadata} if metadata else {})),
        )
    select = ("part",) if partitioned else ()
    deps = [mx.FeatureDep(feature=c, select=select if k == "video" else ()) for k, c in classes.items()]
    leaf_metadata = {"metadata": {"partition_by": "part"}} if partitioned and mx.__name__ == "metaxy_delta" else {}
    classes["leaf"] = type(
        "Leaf",
        (mx.BaseFeature,),
        {"__annotations__": dict(annotations)},
        spec=mx.FeatureSpec(key="leaf", id_columns=[ID], deps=deps, fields=list(spec["leaf"]), **leaf_metadata),
    )
    return classes


# ----------------------------------------------------------------------------- bound
def _hash(expr: pl.Expr) -> pl.Expr:
    return expr.nchash.xxhash32().cast(pl.String).str.slice(0, LENGTH)


def _latest(lf: pl.LazyFrame, columns: list[str], feature_version: str | None) -> pl.LazyFrame:
    """Newest live row per sample (current feature version), reading only ``columns``.

    The cheapest correct plan for these tables: the first write holds one row per sample
    (``make_samples``), so only the rows written later (10 % here) need the per-sample window;
    a first-write row is kept unless a later row of the same sample exists. The plain window
    over every row (``max().over(ID)``) takes ~4× longer at 1M.
    """
    if feature_version is not None:
        lf = lf.filter(pl.col(FVERSION) == feature_version)
    ts = pl.coalesce(DELETED, UPDATED)
    lf = lf.select(*columns, ts.alias("__ts"), pl.col(DELETED).is_null().alias("__live"))
    first = pl.col("__ts") == pl.col("__ts").min()
    later = lf.filter(~first)
    later = later.filter(pl.col("__ts") == pl.col("__ts").max().over(ID)).unique(ID, keep="any")
    base = lf.filter(first).join(later.select(ID), on=ID, how="anti")
    return pl.concat([base, later]).filter("__live").drop("__ts", "__live")


def bound_resolve(
    scenario: str,
    tables: dict[str, Any],
    versions: dict[str, str],
    leaf_exists: bool,
    part: str | None = None,
) -> list[pl.DataFrame]:
    """new / stale / orphaned of ``leaf`` straight from the Delta tables."""
    spec = SCENARIOS[scenario]
    roots = list(spec["roots"])

    def scan(key: str) -> pl.LazyFrame:
        lf = pl.scan_delta(tables[key])
        return lf.filter(pl.col("part") == part) if part is not None else lf

    extra = ["part"] if spec["partitioned"] else []
    expected: pl.LazyFrame | None = None
    for key in roots:
        cols = [ID, *(extra if key == "video" else [])]
        frame = _latest(scan(key), [*cols, pl.col(DVBF).alias(f"dv_{key}")], versions[key])
        expected = frame if expected is None else expected.join(frame, on=ID)
    assert expected is not None
    members = []
    for field, parents in spec["leaf"].items():
        parts: list[pl.Expr] = [pl.lit(field), pl.lit(CODE_VERSION)]
        for parent in parents:
            key, name = parent.split(".")
            parts += [pl.lit(parent), pl.col(f"dv_{key}").struct.field(name)]
        members.append(_hash(pl.concat_str(parts, separator="|")).alias(field))
    sample = _hash(pl.concat_str([pl.col(PBF).struct.field(f) for f in sorted(spec["leaf"])], separator="|"))
    expected = (
        expected.select(*extra, ID, pl.struct(members).alias(PBF))
        .with_columns(sample.alias(PROV))
        .with_columns(pl.col(PBF).alias(DVBF), pl.col(PROV).alias(DV))
    )
    if not leaf_exists:
        return [expected.collect(), pl.DataFrame(), pl.DataFrame()]
    stored = _latest(scan("leaf"), [ID, pl.col(PROV).alias("__cur")], versions["leaf"]).with_columns(
        pl.lit(True).alias("__in")
    )
    # one full join labels every sample (a left join plus an anti join took ~1.5x as long)
    columns = expected.collect_schema().names()
    status = (
        pl.when(pl.col("__in").is_null()).then(0)
        .when(pl.col("__exp").is_null()).then(2)
        .when(pl.col(PROV) != pl.col("__cur")).then(1)
    )  # fmt: skip
    joined = (
        expected.with_columns(pl.lit(True).alias("__exp"))
        .join(stored, on=ID, how="full", coalesce=True)
        .with_columns(status.alias("__status"))
        .filter(pl.col("__status").is_not_null())
        .collect()
    )
    parts = joined.partition_by("__status", as_dict=True, include_key=False)
    empty = joined.head(0).drop("__status")
    new, stale, orphaned = (parts.get((s,), empty) for s in (0, 1, 2))
    return [new.select(columns), stale.select(columns), orphaned.select(ID)]


# ----------------------------------------------------------------------------- measuring
@contextmanager
def measure(results: dict[str, Any], step: str):
    """Time a step and record its peak RSS (bytes)."""
    gc.collect()
    with PeakMemory() as memory:
        t0 = time.perf_counter()
        yield
        elapsed = time.perf_counter() - t0
    peak = memory.peak
    results[step] = {"s": elapsed, "peak": peak}


def timed(results: dict[str, Any], step: str, fn: Any, repeat: int) -> Any:
    """Run ``fn`` ``repeat`` times: best time, largest peak; returns the last result."""
    runs: list[dict[str, Any]] = []
    out = None
    for _ in range(repeat):
        out = None
        one: dict[str, Any] = {}
        with measure(one, step):
            out = fn()
        runs.append(one[step])
    results[step] = {
        "s": min(r["s"] for r in runs),
        "times": [r["s"] for r in runs],
        "peak": max(r["peak"] for r in runs),
    }
    return out


def _counts(inc: Any) -> list[int]:
    return [len(f) for f in inc]


def _native(frame: Any) -> pl.DataFrame:
    return frame.to_native() if hasattr(frame, "to_native") else frame


def _same(ours: Any, bound: pl.DataFrame, what: str) -> None:
    ours = _native(ours)
    cols = [c for c in bound.columns if c in ours.columns]
    a = ours.select(cols).sort(ID)
    b = bound.select(cols).sort(ID)
    if not a.equals(b):
        raise AssertionError(f"bound differs from the store on {what}")


# ----------------------------------------------------------------------------- worker
def worker(args: dict[str, Any]) -> dict[str, Any]:
    warnings.filterwarnings("ignore")
    import logging

    logging.disable(logging.WARNING)
    scenario, n, impl = args["scenario"], args["n"], args["impl"]
    spec = SCENARIOS[scenario]
    partitioned = spec["partitioned"]
    root = Path(args["root"])
    shutil.rmtree(root, ignore_errors=True)
    if impl == "metaxy":
        import metaxy as mx
        import narwhals as nw
        from metaxy.ext.polars.handlers.delta import DeltaMetadataStore

        options: dict[str, Any] = {"delta_write_options": {"partition_by": ["part"]}} if partitioned else {}
        part_filter: list[Any] = [nw.col("part") == PARTITION]
    else:
        import metaxy_delta as mx
        from metaxy_delta import DeltaMetadataStore

        options = {}
        if args.get("codec"):  # a codec of our own store's files (default: LZ4_RAW on a local disk)
            from deltalake import WriterProperties

            name = args["codec"].upper()
            level = {"compression_level": 1} if name == "ZSTD" else {}  # the S3 default: zstd 1
            codec = WriterProperties(compression=name, **level)
            options["delta_write_options"] = {"writer_properties": codec}
        part_filter = [f"part = '{PARTITION}'"]
    results: dict[str, Any] = {}
    counts: dict[str, list[int]] = {}
    check = impl == "ours" and args.get("bound", True)
    verify = check and n <= 1_000_000
    repeat = args.get("repeat") or (3 if n <= 1_000_000 else 1)
    try:
        with mx.FeatureGraph().use() as graph:
            classes = define(mx, scenario)
            leaf = classes["leaf"]
            store = DeltaMetadataStore(str(root), **options)
            versions = {k: graph.get_feature_version(k) for k in classes} if impl == "ours" else {}
            samples = {
                key: make_samples(fields, n, salt, partitioned)
                for salt, (key, fields) in enumerate(spec["roots"].items())
            }
            changed = changed_rows(samples["video"])
            gc.collect()
            results["baseline"] = psutil.Process().memory_info().rss
            results["gen_peak"] = (status_kb("VmHWM") or 0) * 1024
            with store.open("w"):
                with measure(results, "write-roots"):
                    for key, frame in samples.items():
                        store.write(classes[key], frame)
                del samples, frame
                tables = {k: store.table_uri(k) for k in classes} if impl == "ours" else {}

                def resolve(step: str, run_store: Any, run_bound: Any) -> None:
                    """Time the store's resolve (best of ``repeat``), then the bound."""
                    inc = timed(results, step, run_store, repeat)
                    counts[step] = _counts(inc)
                    if not verify:
                        del inc  # not held while the bound runs
                    if check:
                        b = timed(results, f"bound {step}", run_bound, repeat)
                        counts[f"bound {step}"] = [len(f) for f in b]
                        if verify:
                            which = 0 if step == "resolve-new" else 1
                            _same(inc[which], b[which], step)

                resolve(
                    "resolve-new",
                    lambda: store.resolve_update(leaf),
                    lambda: bound_resolve(scenario, _loaded(tables), versions, leaf_exists=False),
                )
                new = store.resolve_update(leaf).new  # untimed: the frame step 3 writes
                with measure(results, "write-leaf"):
                    store.write(leaf, new)
                if args.get("leaf_repeats"):
                    again = [write_leaf_again(DeltaMetadataStore, options, root, i, leaf, new)
                             for i in range(args["leaf_repeats"])]  # fmt: skip
                    results["write-leaf-again"] = {
                        "s": statistics.median(s for s, _ in again), "times": [s for s, _ in again],
                        "peak": max(p for _, p in again),
                    }  # fmt: skip
                del new

                with measure(results, "rewrite-10%"):
                    store.write(classes["video"], changed)
                del changed

                resolve(
                    "resolve-stale",
                    lambda: store.resolve_update(leaf),
                    lambda: bound_resolve(scenario, _loaded(tables), versions, leaf_exists=True),
                )
                if partitioned:
                    resolve(
                        "resolve-1-part",
                        lambda: store.resolve_update(leaf, global_filters=part_filter),
                        lambda: bound_resolve(scenario, _loaded(tables), versions, True, PARTITION),
                    )
                    if impl == "ours":

                        def cold() -> Any:
                            fresh = DeltaMetadataStore(str(root), **options)
                            with fresh.open("r"):
                                return fresh.resolve_update(leaf, global_filters=part_filter)

                        timed(results, "resolve-1-part-cold", cold, repeat)
    finally:
        if not args.get("keep"):
            shutil.rmtree(root, ignore_errors=True)
    # clear_refs also resets ru_maxrss: the run peak is the largest of the measured peaks
    peaks = [r["peak"] for r in results.values() if isinstance(r, dict)]
    results["run_peak"] = max(
        [resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, results["gen_peak"], *peaks]
    )
    for step, c in counts.items():
        results[step]["counts"] = c
    return {**args, "results": results}


def write_leaf_again(
    store_class: Any, options: dict[str, Any], root: Path, i: int, leaf: Any, new: Any
) -> tuple[float, int]:
    """Step 3 once more, into a table of its own (a fresh store root, removed afterwards): the
    same first write of the leaf's table, for more samples of the step than one per run."""
    scratch_root = root.with_name(f"{root.name}-leaf{i}")
    shutil.rmtree(scratch_root, ignore_errors=True)
    scratch = store_class(str(scratch_root), **options)
    one: dict[str, Any] = {}
    try:
        with scratch.open("w"), measure(one, "write-leaf"):
            scratch.write(leaf, new)
    finally:
        shutil.rmtree(scratch_root, ignore_errors=True)
    return one["write-leaf"]["s"], one["write-leaf"]["peak"]


def _loaded(tables: dict[str, str]) -> dict[str, Any]:
    """The tables opened by the bound (one log replay each, inside the timed region)."""
    from deltalake import DeltaTable

    return {k: DeltaTable(v) for k, v in tables.items() if os.path.exists(v)}


def run_in_subprocess(args: dict[str, Any]) -> dict[str, Any]:
    root = Path(args["root"])
    try:
        proc = subprocess.run(
            [sys.executable, os.path.abspath(__file__), "--worker", json.dumps(args)],
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if proc.returncode != 0:
        return {**args, "error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}", "stderr": proc.stderr[-4000:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- report
def machine() -> str:
    import deltalake

    mem = psutil.virtual_memory().total / 2**30
    return (
        f"{os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), {mem:.1f} GiB RAM; "
        f"Python {platform.python_version()}, polars {pl.__version__}, deltalake "
        f"{deltalake.__version__}; {dt.datetime.now().strftime('%Y-%m-%d %H:%M')}; "
        f"load average {os.getloadavg()[0]:.1f} at start"
    )


def _gb(b: float | None) -> str:
    return "—" if b is None else f"{b / 1e9:.2f}"


def _s(x: float | None) -> str:
    return "—" if x is None else (f"{x:.3f}" if x < 1 else f"{x:.2f}")


def _ratio(theirs: float | None, ours: float | None) -> str:
    return "" if not theirs or not ours else f"{theirs / ours:.1f}×"


def merge_rounds(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """One run of an implementation from several rounds: each step's median time and largest
    peak (failed rounds left out)."""
    ok = [r for r in rounds if "error" not in r]
    if len(ok) <= 1:
        return ok[0] if ok else rounds[0]
    results: dict[str, Any] = {}
    for key, value in ok[0]["results"].items():
        if isinstance(value, dict) and "s" in value:
            steps = [r["results"][key] for r in ok if key in r["results"]]
            results[key] = {
                **value,
                "s": statistics.median(step["s"] for step in steps),
                "rounds": [step["s"] for step in steps],
                "peak": max(step["peak"] for step in steps),
            }
        elif key == "run_peak":
            results[key] = max(r["results"][key] for r in ok)
        else:
            results[key] = value
    return {**ok[0], "results": results, "rounds": len(ok)}


def side_by_side(scenario: str, n: int, rounds: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Per-round times of ours and Metaxy, and the issue's ratios judged on the same machine
    (every step at least 2x faster; resolve-stale at 10M at least 3x, a quarter of the peak)."""
    pairs = [
        (o["results"], m["results"])
        for o, m in zip(rounds["ours"], rounds["metaxy"])
        if "error" not in o and "error" not in m
    ]
    lines = [
        f"**{scenario}, {fmt_size(n)} rows, side by side ({len(pairs)} interleaved rounds)**",
        "",
        "| step | ours s per round | Metaxy s per round | Metaxy / ours per round | "
        "target | met in every round? |",
        "|---|---|---|---|---|---|",
    ]
    for step in STEPS:
        if not pairs or not all(step in o and step in m for o, m in pairs):
            continue
        ratios = [m[step]["s"] / o[step]["s"] for o, m in pairs]
        need = 3 if step == "resolve-stale" and n >= 10_000_000 else 2
        if _judged_as(step) not in METAXY_REFERENCE.get((scenario, n), {}):
            need = 0
        lines.append(
            f"| {step} | {' / '.join(_s(o[step]['s']) for o, _ in pairs)} | "
            f"{' / '.join(_s(m[step]['s']) for _, m in pairs)} | "
            f"{' / '.join(f'{r:.1f}×' for r in ratios)} | {f'≥ {need}×' if need else ''} | "
            f"{('yes' if min(ratios) >= need else '**no**') if need else ''} |"
        )
    if pairs and all("resolve-stale" in o and "resolve-stale" in m for o, m in pairs):
        shares = [o["resolve-stale"]["peak"] / m["resolve-stale"]["peak"] for o, m in pairs]
        judged = "peak_gb" in METAXY_REFERENCE.get((scenario, n), {})
        verdict = ("yes" if max(shares) <= 0.25 else "**no**") if judged else ""
        lines.append(
            f"| resolve-stale peak | {' / '.join(_gb(o['resolve-stale']['peak']) for o, _ in pairs)} GB "
            f"| {' / '.join(_gb(m['resolve-stale']['peak']) for _, m in pairs)} GB | "
            f"{' / '.join(f'{100 * x:.0f} %' for x in shares)} of Metaxy's | "
            f"{'≤ 25 %' if judged else ''} | {verdict} |"
        )
    return lines


def _judged_as(step: str) -> str:
    """The step whose target a step is held to (the repeated leaf writes: step 3's)."""
    return "write-leaf" if step == "write-leaf-again" else step


def report(scenario: str, n: int, runs: dict[str, dict[str, Any]]) -> list[str]:
    """Markdown table of one scenario/size: ours, Metaxy, bound, target, met?"""
    ours = runs.get("ours", {}).get("results", {})
    mxo = runs.get("metaxy", {}).get("results", {})
    ref = METAXY_REFERENCE.get((scenario, n), {})
    steps = [s for s in STEPS if s in ours or s in mxo]
    lines = [
        f"**{scenario}, {fmt_size(n)} rows**",
        "",
        "| step | ours s | ours peak GB | Metaxy s | Metaxy peak GB | Metaxy / ours | bound s "
        "| bound peak GB | target (issue) | met? | new / stale / orphaned |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for step in steps:
        o, m, b = ours.get(step, {}), mxo.get(step, {}), ours.get(f"bound {step}", {})
        target, met = "", ""
        if (judged := _judged_as(step)) in ref:
            target = f"≤ {ref[judged] / 2:.2f} s (½ of {ref[judged]})"
            if step == "resolve-stale" and n >= 10_000_000:
                target = f"≤ {ref[step] / 3:.2f} s (⅓ of {ref[step]})"
            limit = ref[judged] / (3 if step == "resolve-stale" and n >= 10_000_000 else 2)
            met = "yes" if o.get("s") is not None and o["s"] <= limit else "**no**"
        if step.startswith("resolve-1-part") and "resolve-stale" in ours and o:
            whole = ours["resolve-stale"]["s"]
            target = f"≤ 5 % of whole ({0.05 * whole:.3f} s)"
            met = f"{'yes' if o['s'] <= 0.05 * whole else '**no**'} ({100 * o['s'] / whole:.1f} %)"
        counts = o.get("counts") or m.get("counts")
        lines.append(
            f"| {step} | {_s(o.get('s'))} | {_gb(o.get('peak'))} | {_s(m.get('s'))} | "
            f"{_gb(m.get('peak'))} | {_ratio(m.get('s'), o.get('s'))} | {_s(b.get('s'))} | "
            f"{_gb(b.get('peak'))} | {target} | {met} | "
            f"{' / '.join(map(str, counts)) if counts else ''} |"
        )
    peak_target, peak_met = "", ""
    if "peak_gb" in ref:
        limit = ref["peak_gb"] / 4 * 1e9
        stale_peak = ours.get("resolve-stale", {}).get("peak")
        peak_target = f"resolve-stale peak ≤ {ref['peak_gb'] / 4:.2f} GB (¼ of {ref['peak_gb']})"
        peak_met = "yes" if stale_peak is not None and stale_peak <= limit else "**no**"
    stale_peaks = [r.get("resolve-stale", {}).get("peak") for r in (mxo, ours)]
    lines.append(
        f"| run peak | | {_gb(ours.get('run_peak'))} | | {_gb(mxo.get('run_peak'))} "
        f"| {_ratio(*stale_peaks) and _ratio(*stale_peaks) + ' (resolve-stale peak)'} | | "
        f"| {peak_target} | {peak_met} | |"
    )
    for impl, run in runs.items():
        if "error" in run:
            lines.append(f"\n{impl} failed: `{run['error']}`")
    mismatch = [
        s for s in RESOLVE_STEPS
        if s in ours and f"bound {s}" in ours and ours[s]["counts"] != ours[f"bound {s}"]["counts"]
    ]  # fmt: skip
    if mismatch:
        lines.append(f"\nbound counts differ from ours on {mismatch}")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100k,1M", help="comma-separated, e.g. 100k,1M,10M")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--impls", default="ours,metaxy", help="ours (+ bound), metaxy")
    parser.add_argument(
        "--metaxy-max", default="1M", help="largest size Metaxy runs at (default 1M)"
    )
    parser.add_argument(
        "--repeat", type=int, default=None,
        help="runs of each resolve step, best reported (default 3 up to 1M rows, else 1)",
    )
    parser.add_argument(
        "--rounds", type=int, default=1,
        help="whole runs of each implementation, interleaved (ours, Metaxy, ours, ...); the "
        "tables show each step's median, with a side-by-side table of every round",
    )
    parser.add_argument(
        "--leaf-repeats", type=int, default=0,
        help="after step 3, write the same leaf frame this many more times, each into a table "
        "of its own (step write-leaf-again: their median)",
    )
    parser.add_argument(
        "--codec", default=None,
        help="Parquet codec of our store's files (zstd, uncompressed, ...; default: LZ4_RAW locally)",
    )
    parser.add_argument("--no-bound", action="store_true", help="skip the raw-Polars bound")
    parser.add_argument("--keep", action="store_true", help="keep the Delta tables (debugging)")
    parser.add_argument("--json", default=None, help="append raw results (JSON lines) to this file")
    parser.add_argument("--report", default=None, help="print the tables of a --json file, run nothing")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ns = parser.parse_args(argv)
    if ns.worker is not None:
        print(json.dumps(worker(json.loads(ns.worker))))
        return
    if ns.report is not None:
        grouped: dict[tuple[str, int], dict[str, dict[str, Any]]] = {}
        with open(ns.report) as f:
            for line in f:
                run = json.loads(line)
                grouped.setdefault((run["scenario"], run["n"]), {})[run["impl"]] = run
        for (scenario, n), runs in grouped.items():
            print("\n".join(["", *report(scenario, n, runs)]))
        return

    sizes = [parse_size(s) for s in ns.sizes.split(",") if s.strip()]
    scenarios = [s.strip() for s in ns.scenarios.split(",") if s.strip()]
    impls = [s.strip() for s in ns.impls.split(",") if s.strip()]
    metaxy_max = parse_size(ns.metaxy_max)
    print(machine(), flush=True)
    DATA_DIR.mkdir(exist_ok=True)
    for n in sizes:
        for scenario in scenarios:
            rounds: dict[str, list[dict[str, Any]]] = {}
            for _ in range(max(1, ns.rounds)):
                for impl in impls:
                    if impl == "metaxy" and n > metaxy_max:
                        continue
                    args = {
                        "scenario": scenario, "n": n, "impl": impl, "bound": not ns.no_bound,
                        "repeat": ns.repeat, "keep": ns.keep, "leaf_repeats": ns.leaf_repeats,
                        "codec": ns.codec,
                        "root": str(DATA_DIR / f"{scenario}-{fmt_size(n)}-{impl}-{os.getpid()}"),
                    }  # fmt: skip
                    t0 = time.perf_counter()
                    run = run_in_subprocess(args)
                    run["wall"] = time.perf_counter() - t0
                    rounds.setdefault(impl, []).append(run)
                    if "error" in run:
                        print(f"# {scenario} {fmt_size(n)} {impl} failed:\n{run['stderr']}", flush=True)
                    if ns.json:
                        with open(ns.json, "a") as f:
                            f.write(json.dumps(run) + "\n")
            runs = {impl: merge_rounds(r) for impl, r in rounds.items()}
            print()
            print("\n".join(report(scenario, n, runs)), flush=True)
            if ns.rounds > 1 and {"ours", "metaxy"} <= set(runs):
                print("\n".join(["", *side_by_side(scenario, n, rounds)]), flush=True)


if __name__ == "__main__":
    main()
