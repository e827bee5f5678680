"""Guarantee 1: concurrent writers (parallel backfill) lose nothing and duplicate nothing.

Scaled-down versions of the soak runs (``benchmarks/soak.py``: 8 processes × 125 appends, local
and S3). Each test prints its figures (``pytest -s``); docs/reliability.md records them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reliability._scenarios import appends_with_deletes, concurrent_appends


@pytest.mark.slow
def test_eight_processes_append_local(tmp_path: Path) -> None:
    """8 processes × 25 one-row appends (200 commits), racing to create the table too."""
    figures = concurrent_appends(str(tmp_path / "store"), None, writers=8, each=25, timeout=240)
    print("local 8x25:", figures)
    assert figures["commits"] == 200


@pytest.mark.slow
@pytest.mark.s3
def test_four_processes_append_s3(s3_root: str, s3_storage_options: dict[str, str]) -> None:
    """4 processes × 10 appends on moto S3 (conditional-put commits), racing to create the table."""
    figures = concurrent_appends(s3_root, s3_storage_options, writers=4, each=10, timeout=300)
    print("s3 4x10:", figures)
    assert figures["commits"] == 40


@pytest.mark.slow
def test_appends_racing_soft_and_hard_deletes_local(tmp_path: Path) -> None:
    """4 appenders × 20 commits while a delete job runs 1 + 4 soft and 1 + 4 hard deletes."""
    figures = appends_with_deletes(str(tmp_path / "store"), None, writers=4, each=20, rounds=4, timeout=240)
    print("local mixed:", figures)


@pytest.mark.slow
@pytest.mark.s3
def test_appends_racing_soft_and_hard_deletes_s3(s3_root: str, s3_storage_options: dict[str, str]) -> None:
    """Same race on moto S3, smaller: 2 appenders × 6 commits, delete job with 2 rounds."""
    figures = appends_with_deletes(s3_root, s3_storage_options, writers=2, each=6, rounds=2, timeout=300)
    print("s3 mixed:", figures)
