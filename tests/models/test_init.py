"""``mx.init()`` loads metaxy.toml, imports the entrypoint modules, and env overrides the file."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import metaxy_delta as mx


def test_init_imports_entrypoint_features(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, graph: mx.FeatureGraph) -> None:
    module = "mxd_init_features_mod"
    (tmp_path / f"{module}.py").write_text(
        "import metaxy_delta as mx\n"
        "class Raw(mx.BaseFeature, spec=mx.FeatureSpec(key='init/raw', id_columns=['id'], fields=['a'])):\n"
        "    id: str\n"
    )
    (tmp_path / "metaxy.toml").write_text(f'project = "from_file"\nentrypoints = ["{module}"]\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("METAXY_PROJECT", "from_env")
    sys.modules.pop(module, None)
    try:
        config = mx.init()
        assert config.project == "from_env"
        assert config.config_file == tmp_path / "metaxy.toml"
        assert mx.FeatureKey("init/raw") in graph.list_features(only_current_project=False)
        assert graph.get_feature_definition("init/raw").feature_class_path == f"{module}.Raw"
    finally:
        sys.modules.pop(module, None)
        mx.MetaxyConfig.reset()


def test_init_reports_unimportable_entrypoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "metaxy.toml").write_text('entrypoints = ["no_such_module_xyz"]\n')
    monkeypatch.chdir(tmp_path)
    try:
        with pytest.raises(mx.InvalidConfigError, match="no_such_module_xyz"):
            mx.init()
    finally:
        mx.MetaxyConfig.reset()
