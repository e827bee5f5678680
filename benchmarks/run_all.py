"""Run every benchmark script and print their tables (``make bench``; ``SIZE=10M`` for big runs).

Usage::

    .venv/bin/python benchmarks/run_all.py                # --size small: 100k and 1M rows
    .venv/bin/python benchmarks/run_all.py --size 10M     # 1M and 10M rows (about 30 minutes)

Each script runs in its own process with the sizes of the chosen preset; its output (machine,
versions, date and the results tables) is printed as it comes and also written to
``benchmarks/.data/<script>-<size>.md`` so the tables can be pasted into
``benchmarks/README.md``. The exit code is non-zero if any script fails.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PRESETS: dict[str, dict[str, list[str]]] = {
    "small": {
        "versioning.py": ["--sizes", "100k,1M"],
        "store.py": ["--sizes", "100k,1M"],
    },
    "10M": {
        "versioning.py": ["--sizes", "1M,10M"],
        "store.py": ["--sizes", "1M,10M"],
    },
}
"""Arguments of each script by ``--size`` preset."""


def run(script: str, args: list[str], out: Path) -> int:
    """Run one script, echoing and saving its output; returns its exit code."""
    command = [sys.executable, str(HERE / script), *args]
    print(f"\n## {script} {' '.join(args)}\n", flush=True)
    start = time.perf_counter()
    with out.open("w") as sink, subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=HERE.parent
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            sink.write(line)
    print(f"\n({script} finished in {time.perf_counter() - start:.0f} s, exit {proc.returncode}; "
          f"output saved to {out.relative_to(HERE.parent)})", flush=True)
    return proc.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="small", choices=sorted(PRESETS))
    parser.add_argument("--only", default=None, help="comma-separated script names to run")
    ns = parser.parse_args(argv)
    scripts = PRESETS[ns.size]
    if ns.only:
        wanted = {s.strip() if s.strip().endswith(".py") else f"{s.strip()}.py" for s in ns.only.split(",")}
        unknown = wanted - set(scripts)
        if unknown:
            parser.error(f"unknown script(s) {sorted(unknown)}; choose from {sorted(scripts)}")
        scripts = {k: v for k, v in scripts.items() if k in wanted}
    data = HERE / ".data"
    data.mkdir(exist_ok=True)
    failed = [
        script
        for script, args in scripts.items()
        if run(script, args, data / f"{Path(script).stem}-{ns.size}.md") != 0
    ]
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
