"""Soak run of the reliability guarantees at full size (``make soak``).

Scenarios (from ``tests/reliability/_scenarios.py``, the same checks as the test suite):

* ``local appends``: 8 processes × 125 one-row appends = 1,000 commits into one Delta table on a
  local path, the processes racing to create it;
* ``local mixed``: appenders racing a delete job (soft and hard deletes);
* ``s3 appends`` / ``s3 mixed``: the same on a moto S3 endpoint this script starts on 127.0.0.1.

Every scenario asserts: no sample lost or duplicated (default read and full history), one Delta
version per write, versions returned by ``write`` unique, deletes matched exactly their rows.
Prints one row per scenario; ``--json PATH`` also writes the figures.

Usage:
    python benchmarks/soak.py                      # everything (S3 1,000 commits takes long)
    python benchmarks/soak.py --only local
    python benchmarks/soak.py --only s3 --s3-each 25
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
import traceback
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.reliability._moto import RestartableMoto  # noqa: E402
from tests.reliability._scenarios import appends_with_deletes, concurrent_appends  # noqa: E402


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    names = ["metaxy-delta", "deltalake", "polars", "narwhals", "pyarrow", "moto", "dagster"]
    return {name: version(name) for name in names} | {"python": platform.python_version()}


def _scenario(name: str, run: Any) -> dict[str, Any]:
    print(f"-- {name} ...", flush=True)
    start = time.perf_counter()
    try:
        figures = run()
        status = "ok"
    except BaseException as err:  # noqa: BLE001 - report and go on with the next scenario
        figures = {"error": f"{type(err).__name__}: {err}", "trace": traceback.format_exc()}
        status = "FAILED"
    figures.setdefault("seconds", round(time.perf_counter() - start, 1))
    print(f"   {status}: {json.dumps({k: v for k, v in figures.items() if k != 'trace'})}", flush=True)
    return {"scenario": name, "status": status, **figures}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["local", "s3"], default=None)
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--each", type=int, default=125, help="appends per process (local)")
    parser.add_argument("--s3-each", type=int, default=125, help="appends per process (S3)")
    parser.add_argument("--mixed-writers", type=int, default=4)
    parser.add_argument("--mixed-each", type=int, default=50)
    parser.add_argument("--mixed-rounds", type=int, default=10)
    parser.add_argument("--s3-mixed-each", type=int, default=20)
    parser.add_argument("--s3-mixed-rounds", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=7200.0, help="seconds per scenario")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args()

    results: list[dict[str, Any]] = []
    started = datetime.now(timezone.utc)
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        if args.only in (None, "local"):
            results.append(_scenario(
                f"local appends {args.writers}x{args.each}",
                lambda: concurrent_appends(f"{tmp}/appends", None, writers=args.writers, each=args.each,
                                           timeout=args.timeout),
            ))  # fmt: skip
            results.append(_scenario(
                f"local mixed {args.mixed_writers}x{args.mixed_each} + {args.mixed_rounds} delete rounds",
                lambda: appends_with_deletes(f"{tmp}/mixed", None, writers=args.mixed_writers,
                                             each=args.mixed_each, rounds=args.mixed_rounds, timeout=args.timeout),
            ))  # fmt: skip
        if args.only in (None, "s3"):
            moto = RestartableMoto()
            try:
                options = moto.storage_options()
                client = moto.client()
                buckets = [f"soak-{uuid.uuid4().hex[:10]}" for _ in range(2)]
                for bucket in buckets:
                    client.create_bucket(Bucket=bucket)
                results.append(_scenario(
                    f"s3 appends {args.writers}x{args.s3_each}",
                    lambda: concurrent_appends(f"s3://{buckets[0]}/root", options, writers=args.writers,
                                               each=args.s3_each, timeout=args.timeout),
                ))  # fmt: skip
                results.append(_scenario(
                    f"s3 mixed {args.mixed_writers}x{args.s3_mixed_each} + {args.s3_mixed_rounds} delete rounds",
                    lambda: appends_with_deletes(f"s3://{buckets[1]}/root", options, writers=args.mixed_writers,
                                                 each=args.s3_mixed_each, rounds=args.s3_mixed_rounds,
                                                 timeout=args.timeout),
                ))  # fmt: skip
            finally:
                moto.close()

    print()
    print(f"soak {started:%Y-%m-%d %H:%M} UTC, {platform.node()}, versions {_versions()}")
    header = ("scenario", "status", "processes", "commits", "rows", "conflicts", "seconds", "commits/s")
    print(" | ".join(header))
    print(" | ".join("---" for _ in header))
    for r in results:
        commits = r.get("commits", r.get("appends"))
        rows = r.get("rows", r.get("live_rows"))
        print(" | ".join(str(v) for v in (
            r["scenario"], r["status"], r.get("processes", "-"), commits if commits is not None else "-",
            rows if rows is not None else "-", r.get("conflicts_retried", "-"), r.get("seconds", "-"),
            r.get("commits_per_second", "-"),
        )))  # fmt: skip
    for r in results:
        if r["status"] != "ok":
            print(f"\n{r['scenario']}: {r['error']}\n{r.get('trace', '')}")
    if args.json is not None:
        payload = {"started": started.isoformat(), "versions": _versions(), "results": results}
        args.json.write_text(json.dumps(payload, indent=2))
    return 0 if all(r["status"] == "ok" for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
