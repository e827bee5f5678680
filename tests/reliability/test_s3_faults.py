"""Guarantee 4: S3 faults give a clear error, and a retry loses and duplicates nothing.

delta-rs talks to moto through :class:`~tests.reliability._faults.FaultProxy`, whose rules make
the endpoint fail at an exact point of a write: after the data file was uploaded, the commit
``PUT _delta_log/<v>.json`` is refused (endpoint down), answered 503, or applied by S3 with its
response dropped. :class:`~tests.reliability._moto.RestartableMoto` is stopped and restarted
with its state kept. Wrong credentials and a missing bucket must produce an error naming the
bucket and the setting to fix.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any


import pytest

from metaxy_delta.errors import StoreConnectionError
from tests.conftest import moto_iam_authentication
from tests.reliability._faults import FaultProxy
from tests.reliability._moto import RestartableMoto
from tests.reliability._workers import KEY, define_events, events, open_store

pytestmark = [pytest.mark.slow, pytest.mark.s3]
COMMIT = r"/_delta_log/\d+\.json"
DATA = r"\.parquet"


@pytest.fixture(scope="module")
def moto() -> Iterator[RestartableMoto]:
    server = RestartableMoto()
    yield server
    server.close()


@pytest.fixture(scope="module")
def proxy(moto: RestartableMoto) -> Iterator[FaultProxy]:
    fault_proxy = FaultProxy(moto.endpoint)
    yield fault_proxy
    fault_proxy.close()


@pytest.fixture
def bucket(moto: RestartableMoto) -> str:
    name = f"faults-{uuid.uuid4().hex[:12]}"
    moto.client().create_bucket(Bucket=name)
    return name


@pytest.fixture
def faulty(moto: RestartableMoto, proxy: FaultProxy, bucket: str) -> Iterator[tuple[Any, FaultProxy]]:
    """A store on ``bucket`` behind the proxy, with 10 committed samples (version 0)."""
    store = open_store(f"s3://{bucket}/root", moto.storage_options(AWS_ENDPOINT_URL=proxy.endpoint))
    graph = define_events()
    with graph.use(), store.open("w"):
        store.write(KEY, events(0, list(range(10))))
        proxy.log(clear=True)
        yield store, proxy
    proxy.set_rules()


def _pairs(store: Any) -> list[tuple[int, int]]:
    raw = store.read(KEY, with_sample_history=True, include_soft_deleted=True).collect().to_native()
    return sorted(zip(raw["writer"].to_list(), raw["seq"].to_list()))


def _expected(*batches: tuple[int, range]) -> list[tuple[int, int]]:
    return sorted((w, s) for w, seqs in batches for s in seqs)


def _outcomes(proxy: FaultProxy, pattern: str) -> list[Any]:
    return [outcome for method, path, outcome in proxy.log() if method == "PUT" and re.search(pattern, path)]


def test_endpoint_refusing_the_commit_then_retry(faulty: tuple[Any, FaultProxy], bucket: str) -> None:
    """The endpoint goes down after the data upload: clear error, table unchanged, retry ok."""
    store, proxy = faulty
    proxy.set_rules({"method": "PUT", "path": COMMIT, "action": "refuse", "times": 1000})
    with pytest.raises(StoreConnectionError) as info:
        store.write(KEY, events(1, list(range(5))))
    message = str(info.value)
    assert bucket in message and "AWS_ENDPOINT_URL" in message and proxy.endpoint in message, message
    assert isinstance(info.value, OSError)
    assert 200 in _outcomes(proxy, DATA), "the data file was not uploaded before the commit"
    refused = _outcomes(proxy, COMMIT)
    assert refused and set(refused) == {"refused"}
    proxy.set_rules()
    assert store.version(KEY) == 0
    assert _pairs(store) == _expected((0, range(10)))

    retry = store.write(KEY, events(1, list(range(5))))
    assert retry.version == 1
    assert _pairs(store) == _expected((0, range(10)), (1, range(5)))
    print(f"s3 faults: commit PUT refused {len(refused)} times, then retried ok")


def test_commit_applied_but_response_dropped(faulty: tuple[Any, FaultProxy]) -> None:
    """S3 applies the commit, the answer is lost: the client retries; no row is duplicated."""
    store, proxy = faulty
    proxy.set_rules({"method": "PUT", "path": COMMIT, "action": "drop_response", "times": 1})
    result = store.write(KEY, events(2, list(range(5))))
    outcomes = _outcomes(proxy, COMMIT)
    assert outcomes[0] == "dropped 200", outcomes
    # object_store re-sends the PUT; If-None-Match makes it 412, so delta-rs commits the same
    # actions (same data file) again at the next version: one extra commit, no extra row.
    assert 412 in outcomes
    assert store.version(KEY) == result.version
    assert _pairs(store) == _expected((0, range(10)), (2, range(5)))
    assert store.read(KEY).collect().to_native().height == 15
    print(f"s3 faults: dropped commit response -> write landed at version {result.version}, {outcomes}")


def test_transient_errors_are_retried(faulty: tuple[Any, FaultProxy]) -> None:
    """503 on the commit and a dropped response on the data upload: retried inside delta-rs."""
    store, proxy = faulty
    proxy.set_rules(
        {"method": "PUT", "path": DATA, "action": "drop_response", "times": 1},
        {"method": "PUT", "path": COMMIT, "action": "status", "status": 503, "times": 2,
         "body": "<Error><Code>SlowDown</Code></Error>"},
    )  # fmt: skip
    result = store.write(KEY, events(3, list(range(5))))
    assert result.version == 1
    assert _outcomes(proxy, COMMIT)[:2] == [503, 503]
    assert _outcomes(proxy, DATA)[0] == "dropped 200"
    assert _pairs(store) == _expected((0, range(10)), (3, range(5)))


def test_endpoint_stopped_and_restarted(moto: RestartableMoto, bucket: str) -> None:
    """moto stopped between writes: reads and writes fail clearly; after restart all is there."""
    store = open_store(f"s3://{bucket}/root", moto.storage_options())
    with define_events().use(), store.open("w"):
        store.write(KEY, events(0, list(range(10))))
        moto.stop()
        try:
            with pytest.raises(StoreConnectionError, match="could not reach the S3 endpoint") as info:
                store.write(KEY, events(4, list(range(5))))
            assert bucket in str(info.value) and moto.endpoint in str(info.value)
            with pytest.raises(StoreConnectionError, match="connection refused"):
                store.read(KEY)
        finally:
            moto.start()
        assert store.version(KEY) == 0
        assert store.write(KEY, events(4, list(range(5)))).version == 1
        assert _pairs(store) == _expected((0, range(10)), (4, range(5)))


def test_wrong_credentials_name_the_settings(moto: RestartableMoto, bucket: str) -> None:
    options = moto.storage_options(AWS_ACCESS_KEY_ID="AKIAWRONGWRONGWRONG0", AWS_SECRET_ACCESS_KEY="nope")
    store = open_store(f"s3://{bucket}/root", options)
    with define_events().use(), store.open("w"), moto_iam_authentication(moto.endpoint):
        for call in (lambda: store.write(KEY, events(0, [1])), lambda: store.read(KEY)):
            with pytest.raises(StoreConnectionError) as info:
                call()
            message = str(info.value)
            assert bucket in message and "AWS_ACCESS_KEY_ID" in message and "storage_options" in message, message
    assert moto.client().list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0  # nothing written


def test_missing_bucket_names_the_bucket(moto: RestartableMoto) -> None:
    store = open_store("s3://no-such-bucket-reliability/root", moto.storage_options())
    with define_events().use(), store.open("w"):
        for call in (lambda: store.write(KEY, events(0, [1])), lambda: store.read(KEY)):
            with pytest.raises(StoreConnectionError, match="'no-such-bucket-reliability' does not exist") as info:
                call()
            assert "create it first" in str(info.value)
    buckets = [b["Name"] for b in moto.client().list_buckets()["Buckets"]]
    assert "no-such-bucket-reliability" not in buckets

