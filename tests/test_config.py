"""Tests of metaxy_delta.config: files, env overrides, templating, extend, stores, init."""

from __future__ import annotations

import importlib
import os
import pickle
import re
import sys
import textwrap
import tomllib
import warnings
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

from metaxy_delta.config import (
    InvalidConfigError,
    MetaxyConfig,
    PluginConfig,
    StoreConfig,
    init,
    load_features,
    register_store_type,
    resolve_store_type,
    unregister_store_type,
)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """Fresh global config, no METAXY_* env vars, cwd in tmp_path, sys.path/modules restored."""
    for name in list(os.environ):
        if name.upper().startswith("METAXY_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    modules = set(sys.modules)
    environ = dict(os.environ)  # test modules set marker variables
    MetaxyConfig.reset()
    yield
    MetaxyConfig.reset()
    # Restore only what changed: clearing and refilling the whole environment calls setenv /
    # unsetenv for every variable, which can crash (SIGSEGV) while a background thread of an
    # earlier test (delta-rs, Polars) reads the environment.
    for name in set(os.environ) - set(environ):
        del os.environ[name]
    for name, value in environ.items():
        if os.environ.get(name) != value:
            os.environ[name] = value
    for name in set(sys.modules) - modules:
        if name.startswith("cfgtest_"):
            del sys.modules[name]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


# ------------------------------------------------------------------------------ files


def test_reads_metaxy_toml(tmp_path: Path) -> None:
    write(tmp_path / "metaxy.toml", 'project = "p1"\nstore = "prod"\n')
    config = MetaxyConfig.load()
    assert (config.project, config.store) == ("p1", "prod")
    assert config.config_file == (tmp_path / "metaxy.toml").resolve()
    assert MetaxyConfig.get() is config and MetaxyConfig.is_set()


def test_reads_tool_metaxy_of_pyproject(tmp_path: Path) -> None:
    write(
        tmp_path / "pyproject.toml",
        """
        [project]
        name = "x"
        [tool.metaxy]
        project = "from_pyproject"
        hash_truncation_length = 12
        """,
    )
    config = MetaxyConfig.load()
    assert config.project == "from_pyproject"
    assert config.hash_truncation_length == 12


def test_metaxy_toml_wins_and_pyproject_without_section_is_skipped(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", '[tool.metaxy]\nproject = "py"\n')
    write(tmp_path / "metaxy.toml", 'project = "mx"\n')
    assert MetaxyConfig.load().project == "mx"

    sub = tmp_path / "sub"
    write(sub / "pyproject.toml", '[project]\nname = "no_metaxy"\n')
    assert MetaxyConfig.load(auto_discovery_start=sub).project == "mx"


def test_searches_parent_directories(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "metaxy.toml", 'project = "parent"\n')
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    assert MetaxyConfig.load().project == "parent"
    # search_parents=False only looks in the start directory
    assert MetaxyConfig.load(search_parents=False).config_file is None


def test_metaxy_config_env_selects_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "metaxy.toml", 'project = "default"\n')
    other = write(tmp_path / "conf" / "prod.toml", 'project = "prod"\n')
    monkeypatch.setenv("METAXY_CONFIG", str(other))
    config = MetaxyConfig.load()
    assert config.project == "prod"
    assert config.config_file == other.resolve()


def test_missing_or_broken_file_is_invalid_config(tmp_path: Path) -> None:
    with pytest.raises(InvalidConfigError, match="not found"):
        MetaxyConfig.load(tmp_path / "nope.toml")
    bad = write(tmp_path / "bad.toml", "project = \n")
    with pytest.raises(InvalidConfigError, match="bad.toml"):
        MetaxyConfig.load(bad)
    typo = write(tmp_path / "typo.toml", 'projcet = "x"\n')
    with pytest.raises(InvalidConfigError, match="projcet"):
        MetaxyConfig.load(typo)


def test_no_file_gives_defaults(tmp_path: Path) -> None:
    config = MetaxyConfig.load()
    assert config.config_file is None
    assert config.store == "dev" and config.stores == {} and config.hash_truncation_length == 8
    assert config.sync is True and config.locked is None and config.theme == "default"


# ------------------------------------------------------------------------ env vars


def test_env_overrides_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "metaxy.toml", 'project = "file"\nhash_truncation_length = 10\n')
    monkeypatch.setenv("METAXY_PROJECT", "env")
    monkeypatch.setenv("METAXY_HASH_TRUNCATION_LENGTH", "16")
    monkeypatch.setenv("METAXY_LOCKED", "1")
    config = MetaxyConfig.load()
    assert (config.project, config.hash_truncation_length, config.locked) == ("env", 16, True)
    # keyword arguments beat env vars
    assert MetaxyConfig(project="kw").project == "kw"


def test_env_nested_store_values_are_deep_merged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(
        tmp_path / "metaxy.toml",
        """
        [stores.prod]
        type = "delta"
        [stores.prod.config]
        root_path = "/from/file"
        layout = "flat"
        """,
    )
    monkeypatch.setenv("METAXY_STORES__PROD__CONFIG__ROOT_PATH", "/from/env")
    config = MetaxyConfig.load()
    assert config.stores["prod"].type == "delta"
    assert config.stores["prod"].config == {"root_path": "/from/env", "layout": "flat"}


def test_env_store_without_type_is_dropped_with_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METAXY_STORES__STRAY__CONFIG__ROOT_PATH", "/x")
    with pytest.warns(UserWarning, match="stray.*config.root_path"):
        config = MetaxyConfig.load()
    assert config.stores == {}
    monkeypatch.setenv("METAXY_STORES__STRAY__TYPE", "delta")
    assert MetaxyConfig.load().stores["stray"].config == {"root_path": "/x"}


def test_env_entrypoints_accepts_comma_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METAXY_ENTRYPOINTS", "a.b, c")
    assert MetaxyConfig().entrypoints == ["a.b", "c"]
    monkeypatch.setenv("METAXY_ENTRYPOINTS", '["d"]')
    assert MetaxyConfig().entrypoints == ["d"]


def test_bad_env_value_is_invalid_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METAXY_HASH_TRUNCATION_LENGTH", "4")
    with pytest.raises(InvalidConfigError, match="hash_truncation_length"):
        MetaxyConfig.load()


# ---------------------------------------------------------------------- templating


def test_env_var_templating(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CFGTEST_ROOT", "/data")
    monkeypatch.delenv("CFGTEST_UNSET", raising=False)
    write(
        tmp_path / "metaxy.toml",
        """
        project = "${CFGTEST_PROJECT:-fallback}"
        entrypoints = ["${CFGTEST_ROOT}.mod", "x${CFGTEST_UNSET}y"]
        [stores.dev]
        type = "delta"
        [stores.dev.config]
        root_path = "${CFGTEST_ROOT}/dev"
        missing = "[${CFGTEST_UNSET}]"
        empty_default = "${CFGTEST_UNSET:-}"
        [stores.dev.config.storage_options]
        region = "${CFGTEST_REGION:-us-west-2}"
        """,
    )
    config = MetaxyConfig.load()
    assert config.project == "fallback"
    assert config.entrypoints == ["/data.mod", "xy"]
    assert config.stores["dev"].config == {
        "root_path": "/data/dev",
        "missing": "[]",
        "empty_default": "",
        "storage_options": {"region": "us-west-2"},
    }
    monkeypatch.setenv("CFGTEST_PROJECT", "set")
    assert MetaxyConfig.load().project == "set"


# -------------------------------------------------------------------------- extend


def test_extend_merges_parent(tmp_path: Path) -> None:
    write(
        tmp_path / "base.toml",
        """
        project = "base"
        store = "prod"
        entrypoints = ["base.features"]
        [stores.prod]
        type = "delta"
        [stores.prod.config]
        root_path = "/prod"
        [stores.dev]
        type = "delta"
        [stores.dev.config]
        root_path = "/base-dev"
        """,
    )
    child = write(
        tmp_path / "child" / "metaxy.toml",
        """
        extend = "../base.toml"
        project = "child"
        entrypoints = ["child.features"]
        [stores.dev]
        type = "delta"
        [stores.dev.config]
        root_path = "/child-dev"
        """,
    )
    config = MetaxyConfig.load(child)
    assert config.project == "child"  # scalar overridden
    assert config.store == "prod"  # inherited
    assert config.entrypoints == ["base.features", "child.features"]  # concatenated
    assert set(config.stores) == {"prod", "dev"}  # dicts merged
    assert config.stores["dev"].config == {"root_path": "/child-dev"}  # child entry wins
    assert config.extend is None  # consumed
    assert config.config_file == child.resolve()


def test_extend_chain_of_three(tmp_path: Path) -> None:
    write(tmp_path / "a.toml", 'entrypoints = ["a"]\ntheme = "a"\n')
    write(tmp_path / "b.toml", 'extend = "a.toml"\nentrypoints = ["b"]\n')
    c = write(tmp_path / "c.toml", 'extend = "b.toml"\nentrypoints = ["c"]\n')
    config = MetaxyConfig.load(c)
    assert config.entrypoints == ["a", "b", "c"]
    assert config.theme == "a"


def test_extend_cycle_is_invalid_config(tmp_path: Path) -> None:
    write(tmp_path / "a.toml", 'extend = "b.toml"\n')
    write(tmp_path / "b.toml", 'extend = "a.toml"\n')
    with pytest.raises(InvalidConfigError, match="Circular"):
        MetaxyConfig.load(tmp_path / "a.toml")
    write(tmp_path / "self.toml", 'extend = "self.toml"\n')
    with pytest.raises(InvalidConfigError, match="Circular"):
        MetaxyConfig.load(tmp_path / "self.toml")


def test_extend_missing_file_is_invalid_config(tmp_path: Path) -> None:
    write(tmp_path / "metaxy.toml", 'extend = "nowhere.toml"\n')
    with pytest.raises(InvalidConfigError, match="nowhere.toml"):
        MetaxyConfig.load()


# ----------------------------------------------------------------------- validation


@pytest.mark.parametrize("bad", ["a/b", "a__b", "A B", ""])
def test_bad_project_names(bad: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(bad))):
        MetaxyConfig(project=bad)
    write(tmp_path / "metaxy.toml", f"project = {bad!r}\n")
    with pytest.raises(InvalidConfigError, match=re.escape(repr(bad))):
        MetaxyConfig.load()


@pytest.mark.parametrize("good", ["a", "my-project_2", "A-B"])
def test_good_project_names(good: str) -> None:
    assert MetaxyConfig(project=good).project == good


def test_hash_truncation_length_minimum() -> None:
    with pytest.raises(ValidationError, match="hash_truncation_length"):
        MetaxyConfig(hash_truncation_length=4)
    assert MetaxyConfig(hash_truncation_length=8).hash_truncation_length == 8


def test_config_is_frozen_and_picklable() -> None:
    config = MetaxyConfig(project="p", stores={"dev": {"type": "delta"}})
    with pytest.raises(ValidationError):
        config.project = "q"  # type: ignore[misc]
    clone = pickle.loads(pickle.dumps(config))
    assert clone == config


def test_ext_and_extra_features() -> None:
    config = MetaxyConfig(
        ext={"dagster": {"enable": True, "foo": 1}, "other": {}},
        extra_features=[{"projects": ["a"]}],
    )
    assert config.plugins == ["dagster"]
    assert config.ext["dagster"].model_extra == {"foo": 1}
    assert config.extra_features == [{"projects": ["a"]}]

    class DagsterPlugin(PluginConfig):
        foo: int = 0

    with config.use():
        assert MetaxyConfig.get_plugin("dagster", DagsterPlugin).foo == 1
        assert MetaxyConfig.get_plugin("missing", DagsterPlugin).enable is False


def test_lock_file(tmp_path: Path) -> None:
    write(tmp_path / "metaxy.toml", "")
    assert MetaxyConfig.load().lock_file == tmp_path.resolve() / "metaxy.lock"
    assert MetaxyConfig().lock_file is None


def test_to_toml_round_trips(tmp_path: Path) -> None:
    config = MetaxyConfig(
        project="p",
        entrypoints=["a.b"],
        stores={
            "dev": {
                "type": "delta",
                "config": {"root_path": 'C:\\dir "q"', "fallback_stores": ["prod"], "opts": {}},
            },
            "prod": {"type": "delta", "config": {"storage_options": {"AWS_REGION": "x"}}},
        },
        extra_features=[{"projects": ["a"]}],
    )
    text = config.to_toml()
    path = write(tmp_path / "out.toml", text)
    assert MetaxyConfig.load(path).model_dump() == config.model_dump()
    assert tomllib.loads(text)["stores"]["dev"]["config"]["root_path"] == 'C:\\dir "q"'


# ------------------------------------------------------------------ get / set / use


def test_get_without_config_returns_default_without_warning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("METAXY_PROJECT", "from_env")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        config = MetaxyConfig.get()
    assert config.project == "from_env"
    assert not MetaxyConfig.is_set()


def test_get_default_follows_env_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METAXY_PROJECT", "one")
    first = MetaxyConfig.get()
    assert MetaxyConfig.get() is first  # reused while METAXY_* vars are unchanged
    monkeypatch.setenv("METAXY_PROJECT", "two")
    assert MetaxyConfig.get().project == "two"


def test_get_load_true_loads_and_sets(tmp_path: Path) -> None:
    write(tmp_path / "metaxy.toml", 'project = "loaded"\n')
    assert MetaxyConfig.get(load=True).project == "loaded"
    assert MetaxyConfig.is_set()


def test_set_use_reset() -> None:
    outer, inner = MetaxyConfig(project="outer"), MetaxyConfig(project="inner")
    MetaxyConfig.set(outer)
    assert MetaxyConfig.get() is outer
    with inner.use() as active:
        assert active is inner and MetaxyConfig.get() is inner
        with outer.use():
            assert MetaxyConfig.get() is outer
        assert MetaxyConfig.get() is inner
    assert MetaxyConfig.get() is outer
    MetaxyConfig.reset()
    assert not MetaxyConfig.is_set()
    with inner.use():
        assert MetaxyConfig.is_set()
    with pytest.raises(TypeError):
        MetaxyConfig.set({"project": "x"})  # type: ignore[arg-type]


# -------------------------------------------------------------------------- stores


class DummyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    root_path: str
    layout: str = "nested"
    fallback_stores: list[str] = []
    hash_algorithm: str | None = None
    auto_create_tables: bool | None = None


class DummyStore:
    """Minimal store class: config_model() + from_config()."""

    def __init__(self, config: DummyConfig, **kwargs: Any) -> None:
        self.config = config
        self.kwargs = kwargs
        self.active_config = MetaxyConfig.get()
        self.hash_algorithm = kwargs.get("force_hash", config.hash_algorithm or "xxhash64")

    @classmethod
    def config_model(cls) -> type[BaseModel]:
        return DummyConfig

    @classmethod
    def from_config(cls, config: BaseModel, **kwargs: Any) -> DummyStore:
        assert isinstance(config, DummyConfig)
        return cls(config, **kwargs)


class OtherStore(DummyStore):
    pass


@pytest.fixture
def dummy_type() -> Any:
    register_store_type("cfgtest-dummy", DummyStore)
    yield "cfgtest-dummy"
    unregister_store_type("cfgtest-dummy")


def stores_toml(tmp_path: Path, type_name: str) -> Path:
    return write(
        tmp_path / "metaxy.toml",
        f"""
        store = "dev"
        auto_create_tables = true
        [stores.dev]
        type = "{type_name}"
        [stores.dev.config]
        root_path = "/dev"
        fallback_stores = ["prod"]
        [stores.prod]
        type = "{type_name}"
        [stores.prod.config]
        root_path = "/prod"
        layout = "flat"
        """,
    )


def test_get_store_builds_registered_type(tmp_path: Path, dummy_type: str) -> None:
    stores_toml(tmp_path, dummy_type)
    config = MetaxyConfig.load()
    store = config.get_store()
    assert isinstance(store, DummyStore)
    assert store.config.root_path == "/dev"
    assert store.config.fallback_stores == ["prod"]  # names passed through as strings
    assert store.config.auto_create_tables is True  # from the top-level setting
    assert store.kwargs == {"name": "dev"}
    assert store.active_config is config  # built inside config.use()

    prod = config.get_store("prod", layout="nested", materialization_id="run-1")
    assert (prod.config.root_path, prod.config.layout) == ("/prod", "nested")
    assert prod.kwargs == {"name": "prod", "materialization_id": "run-1"}
    assert isinstance(config.get_store("prod", expected_type=DummyStore), DummyStore)


def test_get_store_with_class_and_import_path(tmp_path: Path) -> None:
    config = MetaxyConfig(stores={"dev": StoreConfig(type=DummyStore, config={"root_path": "/d"})})
    assert config.stores["dev"].type == f"{__name__}.DummyStore"
    assert isinstance(config.get_store("dev"), DummyStore)

    by_path = MetaxyConfig(
        stores={"dev": {"type": "collections.OrderedDict", "config": {}}},
    )
    with pytest.raises(InvalidConfigError, match="not a metadata store class"):
        by_path.get_store()


def test_get_store_unknown_name_lists_stores(tmp_path: Path, dummy_type: str) -> None:
    stores_toml(tmp_path, dummy_type)
    config = MetaxyConfig.load()
    with pytest.raises(InvalidConfigError, match=r"'staging'.*'dev', 'prod'"):
        config.get_store("staging")
    with pytest.raises(InvalidConfigError, match="No metadata stores"):
        MetaxyConfig().get_store()


def test_get_store_bad_type_string(tmp_path: Path) -> None:
    stores_toml(tmp_path, "cfgtest_nonexistent_pkg.stores.Store")
    with pytest.raises(InvalidConfigError, match="cfgtest_nonexistent_pkg.stores.Store"):
        MetaxyConfig.load().get_store()
    config = MetaxyConfig(stores={"dev": {"type": "json.NoSuchClass"}})
    with pytest.raises(InvalidConfigError, match="NoSuchClass"):
        config.get_store()


def test_get_store_invalid_options_name_the_store(tmp_path: Path, dummy_type: str) -> None:
    config = MetaxyConfig(stores={"dev": {"type": dummy_type, "config": {"layuot": "flat"}}})
    with pytest.raises(InvalidConfigError, match=r"(?s)'dev'.*layuot"):
        config.get_store()


def test_get_store_expected_type_mismatch(tmp_path: Path, dummy_type: str) -> None:
    stores_toml(tmp_path, dummy_type)
    with pytest.raises(InvalidConfigError, match="OtherStore"):
        MetaxyConfig.load().get_store(expected_type=OtherStore)


def test_get_store_hash_algorithm_must_match(dummy_type: str) -> None:
    config = MetaxyConfig(
        stores={"dev": {"type": dummy_type, "config": {"root_path": "/", "hash_algorithm": "md5"}}}
    )
    assert config.get_store().hash_algorithm == "md5"
    with pytest.raises(InvalidConfigError, match="hash_algorithm"):
        config.get_store(force_hash="sha256")


def test_misplaced_store_options_say_where_to_move_them(tmp_path: Path) -> None:
    write(
        tmp_path / "metaxy.toml",
        """
        [stores.dev]
        type = "delta"
        root_path = "/data"
        fallback_stores = ["prod"]
        """,
    )
    with pytest.raises(InvalidConfigError) as info:
        MetaxyConfig.load()
    message = str(info.value)
    assert "[stores.dev.config]" in message
    assert "'root_path'" in message and "'fallback_stores'" in message
    with pytest.raises(ValidationError, match=r"stores\.<name>\.config"):
        StoreConfig(type="delta", root_path="/data")  # type: ignore[call-arg]


def test_registry_resolution_does_not_import() -> None:
    before = set(sys.modules)
    metaxy_path = "metaxy.ext.polars.handlers.delta.DeltaMetadataStore"
    for alias in (metaxy_path, "delta", "DeltaMetadataStore"):
        assert resolve_store_type(alias) == "metaxy_delta.store.DeltaMetadataStore"
    assert resolve_store_type("my_pkg.MyStore") == "my_pkg.MyStore"
    assert not {m for m in set(sys.modules) - before if m.startswith(("metaxy.", "metaxy_delta.s"))}

    register_store_type("cfgtest-alias", "pkg.mod.Cls")
    try:
        assert resolve_store_type("cfgtest-alias") == "pkg.mod.Cls"
    finally:
        unregister_store_type("cfgtest-alias")
    assert resolve_store_type("cfgtest-alias") == "cfgtest-alias"


# ---------------------------------------------------------------- init / entrypoints


def module_file(directory: Path, name: str, body: str = "") -> None:
    marker = f"import os\nos.environ['CFGTEST_IMPORTED_{name}'] = '1'\n"
    write(directory / f"{name}.py", marker + body)
    importlib.invalidate_caches()


def test_init_imports_entrypoints(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module_file(tmp_path, "cfgtest_features_a")
    module_file(tmp_path, "cfgtest_features_env")
    monkeypatch.setenv("CFGTEST_IMPORTED_cfgtest_features_a", "0")
    monkeypatch.setenv("CFGTEST_IMPORTED_cfgtest_features_env", "0")
    write(tmp_path / "metaxy.toml", 'project = "p"\nentrypoints = ["cfgtest_features_a"]\n')
    monkeypatch.setenv("METAXY_ENTRYPOINT_EXTRA", "cfgtest_features_env, cfgtest_features_a")
    config = init()
    assert MetaxyConfig.get() is config and config.project == "p"
    assert os.environ["CFGTEST_IMPORTED_cfgtest_features_a"] == "1"
    assert os.environ["CFGTEST_IMPORTED_cfgtest_features_env"] == "1"
    assert "cfgtest_features_env" in sys.modules


def test_init_finds_modules_next_to_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    module_file(project, "cfgtest_next_to_config")
    write(project / "metaxy.toml", 'entrypoints = ["cfgtest_next_to_config"]\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    init(project / "metaxy.toml")
    assert "cfgtest_next_to_config" in sys.modules
    assert str(project.resolve()) in sys.path


def test_init_with_config_object_and_unimportable_entrypoint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = MetaxyConfig(entrypoints=["cfgtest_does_not_exist.features"])
    with pytest.raises(InvalidConfigError, match=r"cfgtest_does_not_exist\.features.*entrypoints"):
        init(config)
    assert MetaxyConfig.get() is config  # installed before importing

    monkeypatch.setenv("METAXY_ENTRYPOINT", "cfgtest_env_missing")
    with pytest.raises(InvalidConfigError, match="cfgtest_env_missing.*METAXY_ENTRYPOINT"):
        init(MetaxyConfig())


def test_entrypoint_missing_dependency_is_reported(tmp_path: Path) -> None:
    module_file(tmp_path, "cfgtest_broken_dep", "import cfgtest_not_installed_dep\n")
    with pytest.raises(InvalidConfigError, match="No module named 'cfgtest_not_installed_dep'"):
        load_features(["cfgtest_broken_dep"], load_env=False, base_dir=tmp_path)
    assert str(tmp_path.resolve()) not in sys.path  # not left behind after a failure


def test_load_features_returns_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METAXY_ENTRYPOINTS", "json,  ,textwrap")
    assert load_features(["json"], load_packages=False) == ["json", "textwrap"]
    assert load_features(["json"], load_packages=False, load_env=False) == ["json"]


def test_load_features_package_entry_points(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from importlib import metadata

    module_file(tmp_path, "cfgtest_pkg_mod")
    module_file(tmp_path, "cfgtest_pkg_fn", "def init():\n    os.environ['CFGTEST_PKG_FN'] = '1'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("CFGTEST_PKG_FN", "0")
    points = [
        metadata.EntryPoint("a", "cfgtest_pkg_mod", "metaxy.project"),
        metadata.EntryPoint("b", "cfgtest_pkg_fn:init", "metaxy.project"),
    ]
    monkeypatch.setattr(
        metadata, "entry_points", lambda group: [p for p in points if p.group == group]
    )
    loaded = load_features([], load_env=False)
    assert loaded == ["cfgtest_pkg_mod", "cfgtest_pkg_fn:init"]
    assert "cfgtest_pkg_mod" in sys.modules
    assert os.environ["CFGTEST_PKG_FN"] == "1"

    points.append(metadata.EntryPoint("c", "cfgtest_pkg_missing", "metaxy.project"))
    with pytest.raises(InvalidConfigError, match="'c' = 'cfgtest_pkg_missing'"):
        load_features([], load_env=False)
