"""DeltaTableRef on the moto S3 endpoint: options, pruning, error translation, concurrency."""

from __future__ import annotations

import multiprocessing as mp
import socket
from typing import Any

import polars as pl
import pyarrow as pa
import pytest

from metaxy_delta.errors import StoreConnectionError
from metaxy_delta.store import _files
from metaxy_delta.store._s3 import describe_storage_error, with_s3_defaults
from metaxy_delta.store._table import DeltaTableRef
from tests.reliability._workers import Contention

pytestmark = pytest.mark.s3


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_http_endpoint_gets_allow_http_and_secrets_stay_out_of_repr(
    s3_root: str, s3_storage_options: dict[str, str]
) -> None:
    options = {k: v for k, v in s3_storage_options.items() if k != "AWS_ALLOW_HTTP"}
    ref = DeltaTableRef(f"{s3_root}/t.delta", options)
    assert ref.storage_options is not None and ref.storage_options["AWS_ALLOW_HTTP"] == "true"
    assert "AWS_ALLOW_HTTP" not in options  # the caller's dict is not mutated
    assert "testing" not in repr(ref)

    assert ref.append(pl.DataFrame({"id": [1, 2]})) == 0
    frame = ref.scan()
    assert frame is not None and sorted(frame.collect()["id"]) == [1, 2]


def test_with_s3_defaults_respects_explicit_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ALLOW_HTTP", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    assert with_s3_defaults(
        "s3://b/t", {"aws_allow_http": "false", "AWS_ENDPOINT_URL": "http://h"}
    ) == {
        "aws_allow_http": "false",
        "AWS_ENDPOINT_URL": "http://h",
    }
    assert with_s3_defaults("s3://b/t", {"AWS_ENDPOINT_URL": "https://h"}) == {
        "AWS_ENDPOINT_URL": "https://h"
    }
    assert with_s3_defaults("/local/t", {"AWS_ENDPOINT_URL": "http://h"}) == {
        "AWS_ENDPOINT_URL": "http://h"
    }
    assert with_s3_defaults("s3://b/t", None) is None
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://env-endpoint:9000")
    assert with_s3_defaults("s3a://b/t", None) == {"AWS_ALLOW_HTTP": "true"}


def test_partition_filter_reads_only_that_partition(
    s3_root: str, s3_storage_options: dict[str, str], moto_requests: Any
) -> None:
    ref = DeltaTableRef(f"{s3_root}/p.delta", s3_storage_options)
    dates = [f"2024-01-0{i}" for i in range(1, 6)]
    ref.append(
        pl.DataFrame({"id": range(50), "date": [dates[i % 5] for i in range(50)]}),
        partition_by=["date"],
    )
    ref.append(pl.DataFrame({"id": [100], "date": ["2024-01-03"]}))
    target = ref.file_uris("date = '2024-01-03'")
    assert len(target) == 2 and all("/date=2024-01-03/" in uri for uri in target)

    frame = ref.scan()
    assert frame is not None
    moto_requests.clear()
    ids = frame.filter(pl.col("date") == "2024-01-03").collect()["id"].to_list()

    assert sorted(ids) == [2, 7, 12, 17, 22, 27, 32, 37, 42, 47, 100]
    fetched = {path for path in moto_requests.object_paths("GET", ".parquet")}
    assert fetched == {"/" + uri.removeprefix("s3://") for uri in target}


def test_exists_reads_only_the_first_commit(
    s3_root: str, s3_storage_options: dict[str, str], moto_requests: Any
) -> None:
    ref = DeltaTableRef(f"{s3_root}/e.delta", s3_storage_options)
    for i in range(4):
        ref.append(pl.DataFrame({"id": [i]}))
    moto_requests.clear()
    assert ref.exists()
    commits = moto_requests.object_paths("GET", ".json")
    assert {path.rsplit("/", 1)[-1] for path in commits} == {"00000000000000000000.json"}


def test_unreachable_endpoint_names_the_endpoint(
    s3_bucket: str, s3_storage_options: dict[str, str]
) -> None:
    endpoint = f"http://127.0.0.1:{_free_port()}"  # nothing listens there
    ref = DeltaTableRef(
        f"s3://{s3_bucket}/t.delta", {**s3_storage_options, "AWS_ENDPOINT_URL": endpoint}
    )
    with pytest.raises(StoreConnectionError, match="could not reach the S3 endpoint") as info:
        ref.exists()
    message = str(info.value)
    assert (
        endpoint in message
        and f"s3://{s3_bucket}/t.delta" in message
        and "AWS_ENDPOINT_URL" in message
    )
    assert isinstance(info.value, OSError)
    assert isinstance(info.value.__cause__, OSError)  # chained to the delta-rs error

    with pytest.raises(StoreConnectionError, match="could not reach"):
        ref.append(pl.DataFrame({"id": [1]}))


def test_missing_bucket_names_the_bucket(s3_storage_options: dict[str, str]) -> None:
    ref = DeltaTableRef("s3://no-such-bucket-xyz/root/t.delta", s3_storage_options)
    with pytest.raises(
        StoreConnectionError, match=r"bucket 'no-such-bucket-xyz' does not exist.*create it first"
    ):
        ref.exists()
    with pytest.raises(StoreConnectionError, match="no-such-bucket-xyz"):
        ref.append(pl.DataFrame({"id": [1]}))


def test_rejected_credentials_name_the_settings(
    s3_root: str, s3_storage_options: dict[str, str], moto_auth: None
) -> None:
    # moto_auth comes last: the bucket is created before moto starts checking credentials
    ref = DeltaTableRef(f"{s3_root}/t.delta", s3_storage_options)
    with pytest.raises(StoreConnectionError, match="InvalidAccessKeyId") as info:
        ref.scan()
    assert "AWS_ACCESS_KEY_ID" in str(info.value) and "AWS_SECRET_ACCESS_KEY" in str(info.value)


def test_http_not_allowed_names_the_setting(
    s3_root: str, s3_storage_options: dict[str, str]
) -> None:
    ref = DeltaTableRef(f"{s3_root}/t.delta", {**s3_storage_options, "AWS_ALLOW_HTTP": "false"})
    with pytest.raises(StoreConnectionError, match="AWS_ALLOW_HTTP=true"):
        ref.exists()


def test_message_builder_for_missing_credentials_and_other_errors() -> None:
    imds = (
        "Generic S3 error: Error performing PUT http://169.254.169.254/latest/api/token in 1s "
        "- error sending request"
    )
    message = describe_storage_error(
        imds, uri="s3://b/t", storage_options={"AWS_ENDPOINT_URL": "http://e:1"}
    )
    assert message is not None
    assert (
        "no AWS credentials found" in message
        and "AWS_ACCESS_KEY_ID" in message
        and "'b'" in message
    )
    assert (
        describe_storage_error(
            "Schema error: No field named x", uri="s3://b/t", storage_options=None
        )
        is None
    )


def test_maintenance_on_s3(
    s3_root: str, s3_bucket: str, s3_storage_options: dict[str, str], s3_client: Any
) -> None:
    ref = DeltaTableRef(f"{s3_root}/m.delta", s3_storage_options)
    for i in range(3):
        ref.append(pl.DataFrame({"id": [i]}))
    metrics = ref.optimize()
    assert (metrics["numFilesRemoved"], metrics["numFilesAdded"], metrics["version"]) == (3, 1, 3)
    assert len(ref.file_uris()) == 1

    dry = ref.vacuum(retention_hours=0, enforce_retention_duration=False)
    assert dry["num_files"] == 3 and all(not f.startswith("s3://") for f in dry["files"])
    assert ref.checkpoint() == 3
    keys = {
        o["Key"]
        for o in s3_client.list_objects_v2(Bucket=s3_bucket, Prefix="root/m.delta/_delta_log/")[
            "Contents"
        ]
    }
    assert "root/m.delta/_delta_log/00000000000000000003.checkpoint.parquet" in keys
    assert [h["operation"] for h in ref.history(2)] == ["OPTIMIZE", "WRITE"]


def _append_worker(
    uri: str, options: dict[str, str], writer: int, n: int, barrier: Any, out: Any
) -> None:
    contention = Contention.install()
    ref = DeltaTableRef(uri, options)
    barrier.wait()
    for seq in range(n):
        version = ref.append(
            pa.table({"writer": [writer], "seq": [seq]}),
            commit_metadata={"test.writer": writer, "test.seq": seq},
        )
        out.put((writer, seq, version, contention.count))


@pytest.mark.slow
def test_concurrent_appends_on_s3(s3_root: str, s3_storage_options: dict[str, str]) -> None:
    uri = f"{s3_root}/conc.delta"
    ref = DeltaTableRef(uri, s3_storage_options)
    ref.append(pa.table({"writer": pa.array([], pa.int64()), "seq": pa.array([], pa.int64())}))
    writers, n = 4, 10
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(writers), ctx.Queue()
    procs = [
        ctx.Process(target=_append_worker, args=(uri, s3_storage_options, w, n, barrier, out))
        for w in range(writers)
    ]
    for proc in procs:
        proc.start()
    results = [out.get(timeout=180) for _ in range(writers * n)]
    for proc in procs:
        proc.join(timeout=60)
        assert proc.exitcode == 0

    assert ref.version() == writers * n
    assert sorted(v for _, _, v, _ in results) == list(range(1, writers * n + 1))
    by_version = {h["version"]: h for h in ref.history()}
    for writer, seq, version, _ in results:
        assert (by_version[version]["test.writer"], by_version[version]["test.seq"]) == (
            writer,
            seq,
        )
    frame = ref.scan()
    assert frame is not None
    rows = frame.collect()
    assert rows.height == writers * n and rows.select("writer", "seq").n_unique() == writers * n
    # commits really raced (a version taken between snapshot and commit, resolved by the S3
    # conditional put and delta-rs's retries): each worker's last count is its total
    assert sum(max(c for w, _, _, c in results if w == writer) for writer in range(writers)) > 0


def test_polars_encoded_files_on_s3(
    s3_root: str, s3_storage_options: dict[str, str], s3_client: Any, s3_bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Frames are encoded by Polars and uploaded through delta-rs's object store (``_files``)."""
    monkeypatch.setattr(_files, "MIN_PARTITION_ROWS", 0)
    ref = DeltaTableRef(f"{s3_root}/polars.delta", s3_storage_options)
    frame = pl.DataFrame({"id": ["a", "b", "c"], "part": ["p0", "p1", "p1"]})
    assert ref.append(frame, partition_by=["part"]) == 0
    assert ref.append(frame.with_columns(pl.col("id") + "2")) == 1
    assert [h["operation"] for h in ref.history()] == ["WRITE", "CREATE TABLE"]
    assert len(ref.file_uris("part = 'p1'")) == 2
    prefix = s3_root.removeprefix(f"s3://{s3_bucket}/") + "/polars.delta/part=p1/"
    objects = s3_client.list_objects_v2(Bucket=s3_bucket, Prefix=prefix)["Contents"]
    assert len(objects) == 2 and all(o["Key"].endswith(".zstd.parquet") for o in objects)
    scan = ref.scan()
    assert scan is not None
    assert sorted(scan.filter(pl.col("part") == "p1").collect()["id"]) == ["b", "b2", "c", "c2"]
