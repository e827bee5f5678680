"""Metaxy configuration: ``metaxy.toml`` / ``[tool.metaxy]``, ``METAXY_*`` env vars, named stores.

The file format is Metaxy's, so an existing Metaxy config works unchanged::

    # metaxy.toml (or the same keys under [tool.metaxy] in pyproject.toml)
    project = "my_project"
    store = "dev"                       # default store of get_store()
    entrypoints = ["my_project.features"]

    [stores.dev]
    type = "metaxy.ext.polars.handlers.delta.DeltaMetadataStore"  # alias of metaxy_delta's store
    [stores.dev.config]                 # constructor options, validated by the store's config model
    root_path = "${HOME}/.metaxy/dev"   # ${VAR} and ${VAR:-default} are expanded
    layout = "nested"                   # or "flat"
    fallback_stores = ["prod"]

    [stores.prod]
    type = "delta"
    [stores.prod.config]
    root_path = "s3://bucket/metaxy"
    [stores.prod.config.storage_options]
    AWS_REGION = "us-west-2"

Sources, highest priority first: keyword arguments, ``METAXY_*`` environment variables (nested
with ``__``: ``METAXY_STORES__PROD__CONFIG__ROOT_PATH=/data`` is deep-merged into the TOML
values), then the config file. ``METAXY_CONFIG=<path>`` selects the file; otherwise it is found by
searching the working directory and its parents.

Examples:
    >>> from metaxy_delta.config import MetaxyConfig, init
    >>> config = init()  # load the config, import the entrypoints  # doctest: +SKIP
    >>> store = config.get_store()  # the store named by `store`  # doctest: +SKIP
    >>> with MetaxyConfig(project="demo").use():
    ...     MetaxyConfig.get().project
    'demo'
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError
from pydantic import field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings import SettingsError

from metaxy_delta._config._entrypoints import (
    ENTRYPOINT_ENV_PREFIX,
    PACKAGE_ENTRYPOINT_GROUP,
    env_entrypoints,
    load_features,
)
from metaxy_delta._config._registry import (
    register_store_type,
    resolve_store_type,
    unregister_store_type,
)
from metaxy_delta._config._sources import EnvSource, TomlSource, toml_values
from metaxy_delta._config._stores import StoreConfig, build_store, check_store_entries
from metaxy_delta._config._toml import (
    config_error,
    discover_config_file,
    dump_toml,
    expand_env_vars,
    read_config_file,
)
from metaxy_delta.errors import InvalidConfigError

__all__ = [
    "ENTRYPOINT_ENV_PREFIX",
    "PACKAGE_ENTRYPOINT_GROUP",
    "InvalidConfigError",
    "MetaxyConfig",
    "PluginConfig",
    "StoreConfig",
    "discover_config_file",
    "env_entrypoints",
    "expand_env_vars",
    "init",
    "load_features",
    "register_store_type",
    "resolve_store_type",
    "unregister_store_type",
]

PluginConfigT = TypeVar("PluginConfigT", bound="PluginConfig")

_PROJECT_PATTERN = re.compile(r"^[a-zA-Z0-9_-]+$")

# The config visible to every thread (set by set()/load()/init()) and the per-context override
# installed by MetaxyConfig.use(); get() looks at the override first.
_global_config: MetaxyConfig | None = None
_config_override: ContextVar[MetaxyConfig | None] = ContextVar("metaxy_config", default=None)


class PluginConfig(BaseModel):
    """Settings of one integration under ``[ext.<name>]``; unknown keys are kept."""

    model_config = ConfigDict(extra="allow")

    enable: bool = False
    """Whether the integration is enabled."""


class MetaxyConfig(BaseSettings):
    """The Metaxy configuration (frozen).

    Build it with :meth:`load` (file + env) or directly (keyword arguments + env; no file is
    read). :meth:`get` returns the active one: the innermost :meth:`use` block's, else the one
    installed by :meth:`set` / :meth:`load` / :func:`init`, else a default built from the env.

    Examples:
        >>> from metaxy_delta.config import MetaxyConfig
        >>> config = MetaxyConfig(project="demo", hash_truncation_length=16)
        >>> config.store, config.hash_truncation_length
        ('dev', 16)
        >>> MetaxyConfig(project="a/b")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        pydantic_core._pydantic_core.ValidationError: 1 validation error for MetaxyConfig
        project
          Value error, project name 'a/b' cannot contain '/' ...
    """

    model_config = SettingsConfigDict(
        env_prefix="METAXY_",
        env_nested_delimiter="__",
        frozen=True,
        extra="forbid",
        use_attribute_docstrings=True,
    )

    store: str = "dev"
    """Name of the default store (used by :meth:`get_store` without a name)."""
    stores: dict[str, StoreConfig] = Field(default_factory=dict)
    """Named stores. Entries without ``type`` (stray env vars) are dropped with a warning."""
    extend: str | None = None
    """Parent config file, relative to this file. Child scalars override, tables are merged
    (one level), arrays are concatenated. Consumed when the file is read."""
    entrypoints: list[str] = Field(default_factory=list)
    """Modules imported by :func:`init` to register features."""
    theme: str = "default"
    """Rendering theme (CLI)."""
    ext: dict[str, PluginConfig] = Field(default_factory=dict)
    """Integration settings, ``[ext.<name>]``."""
    hash_truncation_length: int = Field(default=8, ge=8)
    """Length every version hash is truncated to (at least 8)."""
    enable_map_datatype: bool = False
    """Experimental Map columns (Metaxy compatibility)."""
    auto_create_tables: bool = False
    """Default of the stores' ``auto_create_tables`` (Delta tables are created on first write)."""
    project: str | None = None
    """Project name: letters, digits, ``_`` and ``-``; no ``/`` and no ``__``."""
    locked: bool | None = None
    """Whether an external feature version mismatch is an error."""
    sync: bool = True
    """Whether reads sync external feature definitions from the store."""
    extra_features: list[dict[str, Any]] = Field(default_factory=list)
    """Feature selections (``[[extra_features]]``) to load from the store."""
    metaxy_lock_path: str | None = None
    """Lock file path, relative to the config file (default ``metaxy.lock`` next to it)."""

    _config_file: Path | None = PrivateAttr(default=None)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Keyword arguments > ``METAXY_*`` env vars > config file (no dotenv, no secrets)."""
        return init_settings, EnvSource(settings_cls), TomlSource(settings_cls)

    @model_validator(mode="before")
    @classmethod
    def _check_stores(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and isinstance(data.get("stores"), Mapping):
            return {**data, "stores": check_store_entries(data["stores"])}
        return data

    @field_validator("project")
    @classmethod
    def _check_project(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if "/" in value:
            msg = f"project name {value!r} cannot contain '/' (it separates feature key parts)"
        elif "__" in value:
            msg = f"project name {value!r} cannot contain '__' (it is used in table names)"
        elif not _PROJECT_PATTERN.match(value):
            msg = f"project name {value!r} must be non-empty: letters, digits, '_' and '-' only"
        else:
            return value
        raise ValueError(msg)

    @field_validator("extra_features", mode="before")
    @classmethod
    def _dump_selections(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return [item.model_dump() if isinstance(item, BaseModel) else item for item in value]
        return value

    # ---------------------------------------------------------------- files and derived values

    @property
    def config_file(self) -> Path | None:
        """The file this config was loaded from (``None`` if built directly)."""
        return self._config_file

    @property
    def lock_file(self) -> Path | None:
        """``metaxy_lock_path`` resolved against the config file (default ``metaxy.lock``)."""
        path = Path(self.metaxy_lock_path or "metaxy.lock")
        if path.is_absolute():
            return path
        return None if self._config_file is None else self._config_file.parent / path

    @property
    def plugins(self) -> list[str]:
        """Names of the enabled ``ext`` integrations."""
        return [name for name, plugin in self.ext.items() if plugin.enable]

    @classmethod
    def get_plugin(cls, name: str, plugin_cls: type[PluginConfigT]) -> PluginConfigT:
        """The active config's ``[ext.<name>]`` settings as ``plugin_cls`` (defaults if absent)."""
        plugin = cls.get().ext.get(name)
        if isinstance(plugin, plugin_cls):
            return plugin
        return plugin_cls.model_validate(plugin.model_dump() if plugin is not None else {})

    def to_toml(self) -> str:
        """This configuration as ``metaxy.toml`` text (``None`` values are left out).

        Examples:
            >>> from metaxy_delta.config import MetaxyConfig
            >>> print(MetaxyConfig(project="demo").to_toml())  # doctest: +ELLIPSIS
            store = "dev"
            stores = {}
            ...
            project = "demo"
            ...
        """
        return dump_toml(self.model_dump(mode="json"))

    # ----------------------------------------------------------------- the active configuration

    @classmethod
    def get(cls, *, load: bool = False) -> MetaxyConfig:
        """The active configuration.

        Arguments:
            load: When nothing is set, :meth:`load` it (which also sets it) instead of returning
                a default ``MetaxyConfig()`` built from the ``METAXY_*`` env vars alone (reused
                while those variables stay the same; no file is read, no warning is issued).
        """
        config = _config_override.get()
        if config is None:
            config = _global_config
        if config is not None:
            return config
        if load:
            return cls.load()
        env = tuple(sorted(kv for kv in os.environ.items() if kv[0].upper().startswith("METAXY_")))
        return _default_config(cls, env)

    @classmethod
    def set(cls, config: MetaxyConfig | None) -> None:
        """Install ``config`` as the configuration of every thread (``None`` = :meth:`reset`)."""
        if config is not None and not isinstance(config, MetaxyConfig):
            msg = f"expected a MetaxyConfig or None, got {type(config).__name__}"
            raise TypeError(msg)
        global _global_config
        _global_config = config

    @classmethod
    def is_set(cls) -> bool:
        """Whether a configuration is set (globally or by an enclosing :meth:`use`)."""
        return _config_override.get() is not None or _global_config is not None

    @classmethod
    def reset(cls) -> None:
        """Forget the global configuration (``use`` blocks are unaffected)."""
        cls.set(None)

    @contextmanager
    def use(self) -> Iterator[MetaxyConfig]:
        """Make this the active configuration inside a ``with`` block (this context only).

        Examples:
            >>> from metaxy_delta.config import MetaxyConfig
            >>> with MetaxyConfig(store="prod").use() as config:
            ...     MetaxyConfig.get() is config
            True
        """
        token = _config_override.set(self)
        try:
            yield self
        finally:
            _config_override.reset(token)

    @classmethod
    def load(
        cls,
        config_file: str | Path | None = None,
        *,
        search_parents: bool = True,
        auto_discovery_start: str | Path | None = None,
    ) -> MetaxyConfig:
        """Read the config file (+ env vars), install it globally (:meth:`set`) and return it.

        Arguments:
            config_file: The file to read. Default: ``$METAXY_CONFIG`` if set, else discovery.
                An explicit argument wins over ``METAXY_CONFIG``.
            search_parents: Discovery looks in the start directory and its parents (``False``:
                the start directory only). In each, ``metaxy.toml`` wins over a
                ``pyproject.toml`` with a ``[tool.metaxy]`` table.
            auto_discovery_start: Where discovery starts (default: the working directory).

        Raises:
            InvalidConfigError: The file is missing or invalid, or a value (file or env) fails
                validation; the message names the file.

        Examples:
            >>> from metaxy_delta.config import MetaxyConfig
            >>> config = MetaxyConfig.load("metaxy.toml")  # doctest: +SKIP
            >>> config = MetaxyConfig.load(auto_discovery_start="projects/a")  # doctest: +SKIP
        """
        if config_file is None and os.environ.get("METAXY_CONFIG"):
            config_file = os.environ["METAXY_CONFIG"]
        if config_file is not None:
            path: Path | None = Path(config_file).expanduser().resolve()
        else:
            start = None if auto_discovery_start is None else Path(auto_discovery_start)
            path = discover_config_file(start, search_parents=search_parents)
        data = read_config_file(path) if path is not None else {}
        config = cls._build(data, path)
        cls.set(config)
        return config

    @classmethod
    def _build(cls, toml_data: dict[str, Any], config_file: Path | None) -> MetaxyConfig:
        try:
            with toml_values(toml_data):
                config = cls()
        except (ValidationError, SettingsError) as exc:
            raise config_error(f"Invalid Metaxy configuration: {exc}", config_file) from exc
        config._config_file = config_file
        return config

    # --------------------------------------------------------------------------------- stores

    def get_store(
        self, name: str | None = None, *, expected_type: type | None = None, **kwargs: Any
    ) -> Any:
        """Build the store configured as ``[stores.<name>]``.

        The class named by ``type`` is resolved (:func:`resolve_store_type`, then imported), its
        ``config_model()`` validates ``[stores.<name>.config]`` (plus ``auto_create_tables``
        from this config if the model has that field), and the store is built with
        ``from_config(typed_config, name=<name>, **other_kwargs)`` while this config is active
        (so ``fallback_stores`` names resolve against it). If the options set
        ``hash_algorithm``, the built store must report the same one.

        Arguments:
            name: The store name; default: :attr:`store`.
            expected_type: Require the store class to be this class or a subclass of it.
            **kwargs: Keyword arguments that are fields of the config model override the file's
                values; the others (e.g. ``materialization_id``) go to ``from_config``.

        Raises:
            InvalidConfigError: No stores, unknown name (the message lists the configured
                ones), ``type`` not importable, invalid store options, wrong type, or the store
                failing to build.

        Examples:
            >>> from metaxy_delta.config import MetaxyConfig
            >>> store = MetaxyConfig.load().get_store("prod")  # doctest: +SKIP
        """
        return build_store(self, self.store if name is None else name, expected_type, kwargs)


@functools.lru_cache(maxsize=8)
def _default_config(cls: type[MetaxyConfig], env: tuple[tuple[str, str], ...]) -> MetaxyConfig:
    """``MetaxyConfig()`` for :meth:`MetaxyConfig.get`, rebuilt only when ``METAXY_*`` vars change.

    ``env`` is the cache key (the ``METAXY_*`` variables); the frozen result is shared.
    """
    return cls._build({}, None)


from metaxy_delta._config._init import init  # noqa: E402 - uses MetaxyConfig, defined above
