"""Every docstring example of the package runs and prints what it shows (``doctest``).

The feature and spec examples show definition versions; both equal Metaxy 0.1.11's for the
same definitions (checked with the ``compare`` extra), so a stale example is a moved hash.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import metaxy_delta

MODULES = sorted(
    info.name for info in pkgutil.walk_packages(metaxy_delta.__path__, prefix="metaxy_delta.")
)


@pytest.mark.parametrize("module", MODULES)
def test_docstring_examples(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
