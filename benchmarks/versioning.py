"""Versioning-engine benchmark: ``versioning.resolve`` against a raw-Polars lower bound.

Usage::

    .venv/bin/python benchmarks/versioning.py                   # sizes 100k,1M
    .venv/bin/python benchmarks/versioning.py --sizes 1M,10M
    .venv/bin/python benchmarks/versioning.py --sizes 100k --scenarios simple --steps resolve-new

Scenarios (all in memory, generated with Polars; ids ``"v{i}"``):

- ``simple``: root ``video`` (fields ``audio``, ``frames``) → leaf (field ``default``, default
  mapping → both parents).
- ``wide``: roots ``video`` (``audio``, ``frames``, ``captions``, ``thumbs``) and ``sensor``
  (``gps``, ``imu``, ``lidar``, ``radar``) → leaf (``audio``, ``frames``; default mapping: the
  exact match in ``video`` plus all four ``sensor`` fields).

Steps:

- ``resolve-new``: no stored leaf rows (everything is new).
- ``resolve-stale``: the stored leaf rows are the expected rows of a previous resolve; then the
  data version of upstream field ``video.audio`` changes on 10 % of the rows (→ 10 % stale).

Each (scenario, size, step, implementation) runs in a fresh subprocess so that the reported
peak RSS (``VmHWM``, reset after data generation; psutil sampling as a fallback) belongs to
that measurement alone; it includes the input frames held in memory. The engine is measured
through ``versioning.resolve(...).collect()``; the bound is the minimal hand-written Polars lazy
plan producing the same frames (checked for equality at startup on a small size).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import polars as pl
import polars_hash  # noqa: F401  (registers .nchash / .chash)
import psutil
from _common import SCENARIOS, PeakMemory, fmt_size, parse_size

PBF = "metaxy_provenance_by_field"
PROV = "metaxy_provenance"
DVBF = "metaxy_data_version_by_field"
DV = "metaxy_data_version"
LENGTH = 8

STEPS = ("resolve-new", "resolve-stale")
IMPLS = ("engine", "bound")


# ----------------------------------------------------------------------------- data
def make_root(fields: list[str], n: int, salt: int) -> pl.DataFrame:
    """A root feature as a store returns it: ids, per-field versions and sample versions."""
    i = pl.int_range(n, dtype=pl.Int64)
    values = {
        f: ((i * 2654435761 + (salt * 97 + k) * 40503) % 1_000_000_007).cast(pl.String)
        for k, f in enumerate(fields)
    }
    sample = ((i * 11400714819 + salt) % 998_244_353).cast(pl.String)
    frame = pl.select(
        id=pl.format("v{}", i), **{DVBF: pl.struct(**values)}, **{DV: sample}
    )
    # root: provenance == data version (the same buffers, no extra memory)
    return frame.select("id", pl.col(DVBF).alias(PBF), pl.col(DV).alias(PROV), DVBF, DV)


def make_upstream(scenario: str, n: int) -> dict[str, pl.DataFrame]:
    roots = SCENARIOS[scenario]["roots"]
    return {key: make_root(fields, n, salt) for salt, (key, fields) in enumerate(roots.items())}


def change_audio(upstream: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """New data versions for field ``video.audio`` on every 10th row (10 %)."""
    video = upstream["video"]
    i = pl.int_range(pl.len(), dtype=pl.Int64)
    audio = pl.col(DVBF).struct.field("audio")
    changed = pl.when(i % 10 == 0).then(pl.concat_str(pl.lit("x"), audio)).otherwise(audio)
    video = video.with_columns(pl.col(DVBF).struct.with_fields(changed.alias("audio")))
    video = video.with_columns(pl.col(DVBF).alias(PBF))
    return {**upstream, "video": video}


# ----------------------------------------------------------------------------- bound
def _hash(expr: pl.Expr, algorithm: str) -> pl.Expr:
    if algorithm == "xxhash64":
        out = expr.nchash.xxhash64().cast(pl.String)
    elif algorithm == "xxhash32":
        out = expr.nchash.xxhash32().cast(pl.String)
    elif algorithm == "sha256":
        out = expr.chash.sha2_256()
    elif algorithm == "md5":
        out = expr.nchash.md5()
    else:
        raise ValueError(algorithm)
    return out.str.slice(0, LENGTH)


def bound_expected(scenario: str, upstream: dict[str, pl.DataFrame], algorithm: str) -> pl.LazyFrame:
    """Minimal lazy plan: inner join of the roots' data versions, per-field and sample hashes."""
    roots = list(SCENARIOS[scenario]["roots"])
    lf = upstream[roots[0]].lazy().select("id", pl.col(DVBF).alias(f"dv_{roots[0]}"))
    for key in roots[1:]:
        lf = lf.join(
            upstream[key].lazy().select("id", pl.col(DVBF).alias(f"dv_{key}")), on="id"
        )
    members = []
    for field, parents in SCENARIOS[scenario]["leaf"].items():
        parts: list[pl.Expr] = [pl.lit(field), pl.lit("__metaxy_initial__")]
        for parent in parents:
            key, name = parent.split(".")
            parts += [pl.lit(parent), pl.col(f"dv_{key}").struct.field(name)]
        members.append(_hash(pl.concat_str(parts, separator="|"), algorithm).alias(field))
    names = sorted(SCENARIOS[scenario]["leaf"])
    sample = _hash(
        pl.concat_str([pl.col(PBF).struct.field(f) for f in names], separator="|"), algorithm
    )
    return (
        lf.select("id", pl.struct(members).alias(PBF))
        .with_columns(sample.alias(PROV))
        .select("id", PBF, PROV, pl.col(PBF).alias(DVBF), pl.col(PROV).alias(DV))
    )


def bound_resolve(
    scenario: str,
    upstream: dict[str, pl.DataFrame],
    current: pl.DataFrame | None,
    algorithm: str,
) -> list[pl.DataFrame]:
    """new / stale / orphaned with one left join (+ one anti join for the orphans)."""
    expected = bound_expected(scenario, upstream, algorithm)
    if current is None:
        return [expected.collect()]
    cur = current.lazy().select("id", pl.col(PROV).alias("__cur"), pl.lit(True).alias("__in"))
    joined = expected.join(cur, on="id", how="left")
    new = joined.filter(pl.col("__in").is_null()).drop("__cur", "__in")
    stale = joined.filter(
        pl.col("__in") & (pl.col("__cur").is_null() | (pl.col(PROV) != pl.col("__cur")))
    ).drop("__cur", "__in")
    orphaned = current.lazy().join(expected.select("id"), on="id", how="anti")
    return pl.collect_all([new, stale, orphaned])


# ----------------------------------------------------------------------------- engine
def engine_plan(scenario: str) -> Any:
    import metaxy_delta as mx

    spec = SCENARIOS[scenario]
    with mx.FeatureGraph().use() as graph:
        classes = []
        for key, fields in spec["roots"].items():
            classes.append(
                type(
                    key.title(),
                    (mx.BaseFeature,),
                    {"__annotations__": {"id": str}},
                    spec=mx.FeatureSpec(key=key, id_columns=["id"], fields=fields),
                )
            )
        type(
            "Leaf",
            (mx.BaseFeature,),
            {"__annotations__": {"id": str}},
            spec=mx.FeatureSpec(
                key="leaf", id_columns=["id"], deps=classes, fields=list(spec["leaf"])
            ),
        )
        return graph.get_feature_plan(mx.FeatureKey("leaf"))


def engine_resolve(
    plan: Any,
    upstream: dict[str, pl.DataFrame],
    current: pl.DataFrame | None,
    algorithm: str,
) -> list[pl.DataFrame]:
    import metaxy_delta as mx
    from metaxy_delta import versioning

    inc = versioning.resolve(
        plan,
        upstream={mx.FeatureKey(k): v for k, v in upstream.items()},
        current=current,
        hash_algorithm=mx.HashAlgorithm(algorithm),
        hash_length=LENGTH,
    ).collect()
    return [f.to_native() for f in inc]


# ----------------------------------------------------------------------------- measuring
def worker(args: dict[str, Any]) -> dict[str, Any]:
    scenario, n, step, impl = args["scenario"], args["n"], args["step"], args["impl"]
    algorithm, repeat = args["algorithm"], args["repeat"]
    upstream = make_upstream(scenario, n)
    current = None
    if step == "resolve-stale":
        current = bound_expected(scenario, upstream, algorithm).collect()
        upstream = change_audio(upstream)
    plan = engine_plan(scenario) if impl == "engine" else None

    def run() -> list[pl.DataFrame]:
        if impl == "engine":
            return engine_resolve(plan, upstream, current, algorithm)
        return bound_resolve(scenario, upstream, current, algorithm)

    gc.collect()
    time.sleep(0.2)
    baseline = psutil.Process().memory_info().rss
    times = []
    counts: list[int] = []
    cpu_times = []
    proc = psutil.Process()
    with PeakMemory() as memory:
        for k in range(repeat + args.get("warmup", 0)):
            c0 = proc.cpu_times()
            t0 = time.perf_counter()
            out = run()
            t1 = time.perf_counter()
            c1 = proc.cpu_times()
            if k >= args.get("warmup", 0):
                times.append(t1 - t0)
                cpu_times.append(c1.user + c1.system - c0.user - c0.system)
            counts = [len(f) for f in out]
            del out
            gc.collect()
    peak = memory.peak
    if len(counts) == 1:  # bound resolve-new returns only `new`
        counts = [counts[0], 0, 0]
    return {
        **args,
        "best": min(times),
        "times": times,
        "best_cpu": min(cpu_times),
        "cpu_times": cpu_times,
        "baseline_rss": baseline,
        "peak_rss": peak,
        "peak_source": memory.source,
        "counts": counts,
    }


def run_in_subprocess(args: dict[str, Any]) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--worker", json.dumps(args)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"worker {args} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def check_equal(algorithm: str, n: int = 20_000) -> None:
    """Engine and bound produce the same frames (sorted by id), for every scenario/step."""
    for scenario in SCENARIOS:
        plan = engine_plan(scenario)
        upstream = make_upstream(scenario, n)
        a = engine_resolve(plan, upstream, None, algorithm)
        b = bound_resolve(scenario, upstream, None, algorithm)
        assert a[0].sort("id").equals(b[0].sort("id")), f"{scenario} resolve-new differs"
        assert len(a[1]) == len(a[2]) == 0
        current = b[0]
        changed = change_audio(upstream)
        a = engine_resolve(plan, changed, current, algorithm)
        b = bound_resolve(scenario, changed, current, algorithm)
        for name, x, y in zip(("new", "stale", "orphaned"), a, b, strict=True):
            assert x.columns == y.columns, (scenario, name, x.columns, y.columns)
            assert x.sort("id").equals(y.sort("id")), f"{scenario} resolve-stale {name} differs"
        assert len(a[1]) == n // 10, (scenario, len(a[1]))


# ----------------------------------------------------------------------------- main
def _ratio(a: float, b: float) -> str:
    """``a / b`` as ``"1.23×"``, or ``"—"`` when ``b`` is too small to divide by (tiny sizes)."""
    return f"{a / b:.2f}×" if b > 1e-3 else "—"


def _mem(result: dict[str, Any]) -> str:
    """Peak RSS of the measured runs, and its excess over the RSS just before them."""
    gib = 2**30
    peak, base = result["peak_rss"] / gib, result["baseline_rss"] / gib
    return f"{peak:.2f} GiB (+{max(peak - base, 0):.2f})"


def machine() -> str:
    mem = psutil.virtual_memory().total / 2**30
    return (
        f"{platform.node() or 'host'}: {os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}),"
        f" {mem:.1f} GiB RAM; Python {platform.python_version()}, polars {pl.__version__}, "
        f"polars-hash {getattr(polars_hash, '__version__', '?')}; "
        f"{dt.datetime.now().strftime('%Y-%m-%d %H:%M')}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100k,1M", help="comma-separated, e.g. 100k,1M,10M")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--steps", default=",".join(STEPS))
    parser.add_argument(
        "--algorithm", default="xxhash64", choices=["xxhash64", "xxhash32", "sha256", "md5"]
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=None,
        help="timed runs per measurement, best reported; default 3 (≤1M, after one untimed "
        "warm-up run) or 1 (>1M, no warm-up)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="alternating engine/bound subprocess rounds per measurement (noisy machines)",
    )
    parser.add_argument("--json", default=None, help="also write raw results to this file")
    parser.add_argument("--no-check", action="store_true", help="skip the equality check")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ns = parser.parse_args(argv)
    if ns.worker is not None:
        print(json.dumps(worker(json.loads(ns.worker))))
        return

    sizes = [parse_size(s) for s in ns.sizes.split(",") if s.strip()]
    scenarios = [s.strip() for s in ns.scenarios.split(",") if s.strip()]
    steps = [s.strip() for s in ns.steps.split(",") if s.strip()]
    print(machine(), flush=True)
    print(f"hash algorithm {ns.algorithm}, truncation {LENGTH}", flush=True)
    if not ns.no_check:
        check_equal(ns.algorithm)
        print("equality check engine == bound: ok", flush=True)

    header = (
        "| scenario | rows | step | engine s | bound s | engine/bound "
        "| engine CPU s | bound CPU s | CPU engine/bound "
        "| engine peak RSS (+over start) | bound peak RSS (+over start) | new / stale / orphaned "
        "| load 1m |"
    )
    print()
    print(header)
    print("|" + "---|" * 13, flush=True)
    results = []
    for n in sizes:
        repeat = ns.repeat or (3 if n <= 1_000_000 else 1)
        for scenario in scenarios:
            for step in steps:
                row: dict[str, Any] = {}
                # engine and bound alternate, each round in fresh subprocesses; best of all
                for _ in range(ns.rounds):
                    for impl in IMPLS:
                        r = run_in_subprocess(
                            {
                                "scenario": scenario,
                                "n": n,
                                "step": step,
                                "impl": impl,
                                "algorithm": ns.algorithm,
                                "repeat": repeat,
                                "warmup": 1 if n <= 1_000_000 else 0,
                            }
                        )
                        if impl in row:
                            prev = row[impl]
                            r["times"] = prev["times"] + r["times"]
                            r["best"] = min(prev["best"], r["best"])
                            r["cpu_times"] = prev["cpu_times"] + r["cpu_times"]
                            r["best_cpu"] = min(prev["best_cpu"], r["best_cpu"])
                            r["peak_rss"] = max(prev["peak_rss"], r["peak_rss"])
                            r["baseline_rss"] = min(prev["baseline_rss"], r["baseline_rss"])
                        row[impl] = r
                row["loadavg"] = os.getloadavg()
                e, b = row["engine"], row["bound"]
                if e["counts"] != b["counts"]:
                    raise RuntimeError(f"row counts differ: engine {e['counts']} bound {b['counts']}")
                results.append(row)
                print(
                    f"| {scenario} | {fmt_size(n)} | {step} | {e['best']:.3f} | {b['best']:.3f} "
                    f"| {e['best'] / b['best']:.2f}× | {e['best_cpu']:.3f} | {b['best_cpu']:.3f} "
                    f"| {_ratio(e['best_cpu'], b['best_cpu'])} | {_mem(e)} | {_mem(b)} "
                    f"| {' / '.join(map(str, e['counts']))} | {row['loadavg'][0]:.1f} |",
                    flush=True,
                )
    if ns.json:
        Path(ns.json).parent.mkdir(parents=True, exist_ok=True)
        with open(ns.json, "w") as f:
            json.dump({"machine": machine(), "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
