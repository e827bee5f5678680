"""pydantic-settings sources of :class:`~metaxy_delta.config.MetaxyConfig`: env vars and TOML."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from pydantic.fields import FieldInfo
from pydantic_settings import EnvSettingsSource, PydanticBaseSettingsSource

from metaxy_delta._config._entrypoints import split_module_list

# The file values read by MetaxyConfig.load(), handed to the source for one construction
# (a bare MetaxyConfig() sees none and so reads no file).
_toml_data: ContextVar[dict[str, Any] | None] = ContextVar("metaxy_toml_data", default=None)


@contextmanager
def toml_values(data: dict[str, Any]) -> Iterator[None]:
    """Make :class:`TomlSource` return ``data`` inside the block."""
    token = _toml_data.set(data)
    try:
        yield
    finally:
        _toml_data.reset(token)


class EnvSource(EnvSettingsSource):
    """``METAXY_*`` variables; ``METAXY_ENTRYPOINTS`` may also be a plain comma-separated list."""

    def decode_complex_value(self, field_name: str, field: FieldInfo, value: Any) -> Any:
        if field_name == "entrypoints" and not str(value).lstrip().startswith("["):
            return split_module_list(str(value))
        return super().decode_complex_value(field_name, field, value)


class TomlSource(PydanticBaseSettingsSource):
    """The config file values installed by :func:`toml_values` (nothing otherwise)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self().get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(_toml_data.get() or {})
