from __future__ import annotations

from collections.abc import Iterator

import pytest

import metaxy_delta as mx


@pytest.fixture
def graph() -> Iterator[mx.FeatureGraph]:
    """A fresh active feature graph for the test."""
    with mx.FeatureGraph().use() as g:
        yield g
