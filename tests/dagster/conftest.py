"""Fixtures of the Dagster integration suite.

* ``graph``: a fresh, active :class:`mx.FeatureGraph` per test.
* ``features``: ``test/root`` → ``test/down`` (rename + pass-through) registered in ``graph``.
* ``store``: a local :class:`mx.DeltaMetadataStore` under ``tmp_path``.
* ``metaxy_config``: an active ``MetaxyConfig`` whose ``dev`` store is that directory.
* ``instance``: an ephemeral Dagster instance.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from pydantic import Field

import metaxy_delta as mx

warnings.filterwarnings("ignore", message=r".*is currently in (beta|preview).*")


@pytest.fixture
def graph() -> Iterator[mx.FeatureGraph]:
    with mx.FeatureGraph().use() as g:
        yield g


@pytest.fixture
def features(graph: mx.FeatureGraph) -> dict[str, type[mx.BaseFeature]]:
    class Root(mx.BaseFeature, spec=mx.FeatureSpec(key="test/root", id_columns=["sample_id"])):
        """Root samples.

        Written by the first asset.
        """

        sample_id: str = Field(description="Sample identifier")
        path: str | None = None
        old_name: str | None = None

    class Down(
        mx.BaseFeature,
        spec=mx.FeatureSpec(
            key="test/down",
            id_columns=["sample_id"],
            deps=[mx.FeatureDep(feature="test/root", rename={"old_name": "new_name"})],
        ),
    ):
        sample_id: str
        path: str | None = None
        new_name: str | None = None
        result: float | None = None

    return {"root": Root, "down": Down}


@pytest.fixture
def store_root(tmp_path: Path) -> str:
    return str(tmp_path / "store")


@pytest.fixture
def store(store_root: str) -> mx.DeltaMetadataStore:
    return mx.DeltaMetadataStore(store_root, name="dev")


@pytest.fixture
def metaxy_config(store_root: str) -> Iterator[mx.MetaxyConfig]:
    config = mx.MetaxyConfig(
        project="test",
        stores={"dev": mx.StoreConfig(type="delta", config={"root_path": store_root})},
    )
    with config.use():
        yield config


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as inst:
        yield inst
