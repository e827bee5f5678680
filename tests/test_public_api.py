"""The public namespaces: every exported name exists, and the core never imports Dagster or Metaxy."""

from __future__ import annotations

import subprocess
import sys

import metaxy_delta as mx
import metaxy_delta.dagster as mxd


def test_every_exported_name_exists() -> None:
    assert [n for n in mx.__all__ if not hasattr(mx, n)] == []
    assert [n for n in mxd.__all__ if not hasattr(mxd, n)] == []
    assert len(mx.__all__) == len(set(mx.__all__))


def test_error_tree_is_exported() -> None:
    assert issubclass(mx.StoreConnectionError, mx.MetadataStoreError)
    assert issubclass(mx.StoreConnectionError, OSError)
    assert issubclass(mx.FilterParseError, ValueError)
    assert issubclass(mx.FeatureNotFoundError, KeyError)
    assert mx.errors.CommitConflictError is mx.CommitConflictError


def test_core_import_leaves_dagster_and_metaxy_out() -> None:
    code = "import sys, metaxy_delta; print(sorted({'dagster', 'metaxy'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
