"""Several processes appending to one feature table: every commit lands, every row once."""

from __future__ import annotations

import multiprocessing as mp

import pytest

import metaxy_delta as mx
from tests.store._writers import append_many, define_events, frame


def run_writers(root: str, options: dict[str, str] | None, writers: int, each: int) -> None:
    with define_events().use():
        store = mx.DeltaMetadataStore(root, storage_options=options)
        with store.open("w"):
            store.write("events", frame(-1, [0]))  # create the table first (version 0)
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=append_many, args=(root, options, w, each)) for w in range(writers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=600)
    assert [p.exitcode for p in procs] == [0] * writers
    with define_events().use():
        store = mx.DeltaMetadataStore(root, storage_options=options)
        with store.open("r"):
            assert store.version("events") == writers * each
            rows = store.read("events", with_sample_history=True).collect().to_native()
            pairs = list(zip(rows["writer"], rows["seq"]))
            assert len(pairs) == len(set(pairs)) == writers * each + 1
            history = store.history("events")
            operations = [h["operation"] for h in history]  # the first write creates the table
            assert operations == ["WRITE"] * (writers * each) + ["CREATE TABLE"]


@pytest.mark.slow
def test_four_processes_fifty_appends_local(tmp_path) -> None:
    run_writers(str(tmp_path / "store"), None, writers=4, each=50)


@pytest.mark.slow
@pytest.mark.s3
def test_four_processes_appends_s3(s3_root, s3_storage_options) -> None:
    run_writers(s3_root, s3_storage_options, writers=4, each=50)
