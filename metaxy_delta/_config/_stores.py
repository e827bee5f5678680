"""``[stores.<name>]`` entries: the :class:`StoreConfig` model and building stores from it."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from metaxy_delta._config._registry import import_object, resolve_store_type
from metaxy_delta._config._toml import config_error
from metaxy_delta.errors import MetaxyError

if TYPE_CHECKING:
    from metaxy_delta.config import MetaxyConfig


class StoreConfig(BaseModel):
    """One named metadata store: ``[stores.<name>]`` in the config file.

    Constructor options belong in ``config`` (``[stores.<name>.config]``); any other key is an
    error that says where to move it (Metaxy's docs show them one level up, which Metaxy then
    rejects with a bare "Extra inputs are not permitted").

    Examples:
        >>> from metaxy_delta.config import StoreConfig
        >>> StoreConfig(type="delta", config={"root_path": "/tmp/metaxy"}).config
        {'root_path': '/tmp/metaxy'}
        >>> StoreConfig(type="delta", root_path="/tmp/metaxy")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        pydantic_core._pydantic_core.ValidationError: 1 validation error for StoreConfig
        ...
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    """The store class: a registered alias (see ``register_store_type``) or an import path
    ``"package.module.Class"``. A class object is accepted too (kept, not re-imported)."""

    config: dict[str, Any] = Field(default_factory=dict)
    """Options validated by the store's ``config_model()`` and passed to ``from_config``."""

    _type_cls: type | None = PrivateAttr(default=None)

    @model_validator(mode="wrap")
    @classmethod
    def _coerce(cls, data: Any, handler: Any) -> StoreConfig:
        type_cls = None
        if isinstance(data, Mapping):
            data = dict(data)
            misplaced = sorted(set(data) - set(cls.model_fields))
            if misplaced:
                raise ValueError(misplaced_keys_message(None, misplaced))
            if isinstance(data.get("type"), type):
                type_cls = data["type"]
                data["type"] = f"{type_cls.__module__}.{type_cls.__qualname__}"
        store_config: StoreConfig = handler(data)
        if type_cls is not None:
            store_config._type_cls = type_cls
        return store_config

    @property
    def type_cls(self) -> type:
        """The store class, imported on access.

        Raises:
            ImportError: The ``type`` cannot be imported (the message keeps the real cause).
        """
        target = self._type_cls or resolve_store_type(self.type)
        return target if isinstance(target, type) else import_object(target)


def check_store_entries(stores: Mapping[str, Any]) -> dict[str, Any]:
    """Drop entries without ``type`` (warning) and reject keys that belong under ``config``."""
    kept = {}
    for name, entry in stores.items():
        if isinstance(entry, Mapping):
            if "type" not in entry:
                _warn_incomplete_store(name, entry)
                continue
            misplaced = sorted(set(entry) - set(StoreConfig.model_fields))
            if misplaced:
                raise ValueError(misplaced_keys_message(name, misplaced))
        kept[name] = entry
    return kept


def misplaced_keys_message(store: str | None, keys: list[str]) -> str:
    """Explain that ``keys`` must move from ``[stores.<store>]`` to ``[stores.<store>.config]``."""
    table = f"stores.{store}" if store else "stores.<name>"
    where = f"Store {store!r}" if store else "A store config"
    example = "\n".join(f"  {key} = ..." for key in keys)
    env = f"METAXY_STORES__{store.upper()}__CONFIG__<OPTION>" if store else None
    env_hint = f" (environment variables: {env})" if env else ""
    return (
        f"{where} has {', '.join(map(repr, keys))} directly under [{table}], where only 'type' "
        f"and 'config' belong. Move constructor options under [{table}.config]{env_hint}:\n"
        f"  [{table}.config]\n{example}"
    )


def _warn_incomplete_store(name: str, entry: Mapping[str, Any]) -> None:
    keys = ", ".join(_flatten_keys(entry)) or "none"
    env = f"METAXY_STORES__{str(name).upper()}__"
    warnings.warn(
        f"Ignoring store {name!r}: it has no 'type' (keys: {keys}). This usually comes from "
        f"{env}* environment variables; set {env}TYPE or define [stores.{name}] with a 'type'.",
        UserWarning,
        stacklevel=2,
    )


def _flatten_keys(mapping: Mapping[str, Any], prefix: str = "") -> list[str]:
    keys = []
    for key, value in mapping.items():
        if isinstance(value, Mapping) and value:
            keys.extend(_flatten_keys(value, f"{prefix}{key}."))
        else:
            keys.append(f"{prefix}{key}")
    return keys


def build_store(
    config: MetaxyConfig, name: str, expected_type: type | None, kwargs: Mapping[str, Any]
) -> Any:
    """Implementation of :meth:`MetaxyConfig.get_store` (see there)."""
    if not config.stores:
        msg = (
            f"No metadata stores are configured (wanted {name!r}). Add a [stores.{name}] table "
            f"with 'type' and [stores.{name}.config], or set METAXY_STORES__{name.upper()}__TYPE."
        )
        raise config_error(msg, config.config_file)
    if name not in config.stores:
        known = ", ".join(repr(n) for n in sorted(config.stores))
        msg = f"Store {name!r} is not configured. Configured stores: {known}"
        raise config_error(msg, config.config_file)
    store_config = config.stores[name]
    store_cls = _store_class(config, name, store_config)
    if expected_type is not None and not issubclass(store_cls, expected_type):
        msg = (
            f"Store {name!r} is a {store_cls.__qualname__} ({store_config.type!r}), "
            f"expected a {expected_type.__qualname__}"
        )
        raise config_error(msg, config.config_file)

    config_model = store_cls.config_model()
    fields = config_model.model_fields
    values = dict(store_config.config)
    if "auto_create_tables" in fields:
        values.setdefault("auto_create_tables", config.auto_create_tables)
    extra: dict[str, Any] = {}
    for key, value in kwargs.items():
        (values if key in fields else extra)[key] = value
    if "name" not in fields:
        extra.setdefault("name", name)
    try:
        typed_config = config_model.model_validate(values)
    except ValidationError as exc:
        msg = f"Invalid options for store {name!r} ({store_config.type}): {exc}"
        raise config_error(msg, config.config_file) from exc
    try:
        with config.use():
            store = store_cls.from_config(typed_config, **extra)
    except MetaxyError:
        raise
    except Exception as exc:
        msg = f"Cannot create store {name!r} ({store_cls.__qualname__}): {exc}"
        raise config_error(msg, config.config_file) from exc
    _check_hash_algorithm(config, name, typed_config, store)
    return store


def _store_class(config: MetaxyConfig, name: str, store_config: StoreConfig) -> type:
    try:
        store_cls = store_config.type_cls
    except Exception as exc:
        msg = f"Cannot import store type {store_config.type!r} of store {name!r}: {exc}"
        raise config_error(msg, config.config_file) from exc
    if not isinstance(store_cls, type) or not all(
        callable(getattr(store_cls, attr, None)) for attr in ("config_model", "from_config")
    ):
        msg = (
            f"Store type {store_config.type!r} of store {name!r} resolves to {store_cls!r}, "
            "which is not a metadata store class (needs config_model() and from_config())"
        )
        raise config_error(msg, config.config_file)
    return store_cls


def _check_hash_algorithm(
    config: MetaxyConfig, name: str, typed_config: BaseModel, store: Any
) -> None:
    wanted = getattr(typed_config, "hash_algorithm", None)
    actual = getattr(store, "hash_algorithm", None)
    if wanted is None or actual is None:
        return
    wanted, actual = getattr(wanted, "value", wanted), getattr(actual, "value", actual)
    if wanted != actual:
        msg = (
            f"Store {name!r} was configured with hash_algorithm={wanted!r} but uses "
            f"{actual!r}; all stores must use the configured hash algorithm"
        )
        raise config_error(msg, config.config_file)
