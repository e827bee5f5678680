"""Config files: discovery, reading, ``extend`` inheritance, ``${VAR}`` templating, TOML output.

Everything here works on plain dicts, before pydantic sees the data, so that the model only ever
validates the final merged configuration.
"""

from __future__ import annotations

import json
import math
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from metaxy_delta.errors import InvalidConfigError

METAXY_TOML = "metaxy.toml"
PYPROJECT_TOML = "pyproject.toml"

# ``${VAR}`` or ``${VAR:-default}``; the default may be empty and may not contain ``}``.
_ENV_VAR_PATTERN = re.compile(r"\$\{([^}:]+)(?::-([^}]*))?\}")
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")

_ENV_HINT = "Note: METAXY_* environment variables override config file values."


def config_error(message: str, config_file: Path | None = None) -> InvalidConfigError:
    """Build an :class:`InvalidConfigError` whose message names the config file and the env hint."""
    parts = [message]
    if config_file is not None:
        parts.append(f"Config file: {config_file}")
    parts.append(_ENV_HINT)
    return InvalidConfigError("\n".join(parts))


def expand_env_vars(value: Any) -> Any:
    """Replace ``${VAR}`` / ``${VAR:-default}`` in every string of ``value`` (recursively).

    An unset variable without a default becomes ``""``; a set but empty variable stays empty.
    """
    if isinstance(value, str):
        return _ENV_VAR_PATTERN.sub(_substitute, value)
    if isinstance(value, Mapping):
        return {key: expand_env_vars(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [expand_env_vars(item) for item in value]
    return value


def _substitute(match: re.Match[str]) -> str:
    name, default = match.group(1), match.group(2)
    env_value = os.environ.get(name)
    if env_value is not None:
        return env_value
    return default if default is not None else ""


def discover_config_file(start: Path | None = None, *, search_parents: bool = True) -> Path | None:
    """Find the config file for ``start`` (default: the current working directory).

    In each directory, ``metaxy.toml`` wins; otherwise a ``pyproject.toml`` with a non-empty
    ``[tool.metaxy]`` table is used. With ``search_parents`` the ancestors are searched too,
    nearest first. Returns ``None`` when nothing is found.
    """
    current = (start or Path.cwd()).resolve()
    directories = [current, *current.parents] if search_parents else [current]
    for directory in directories:
        candidate = directory / METAXY_TOML
        if candidate.is_file():
            return candidate
        candidate = directory / PYPROJECT_TOML
        if candidate.is_file() and _read_raw(candidate).get("tool", {}).get("metaxy"):
            return candidate
    return None


def read_config_file(path: Path) -> dict[str, Any]:
    """Return the Metaxy settings of ``path`` with ``extend`` resolved and ``${VAR}`` expanded.

    ``pyproject.toml`` files contribute their ``[tool.metaxy]`` table; any other file is used
    whole. The ``extend`` key is consumed (the result holds the merged values instead).

    Raises:
        InvalidConfigError: the file (or an extended file) is missing or not valid TOML, or the
            ``extend`` chain has a cycle.
    """
    path = path.expanduser().resolve()
    if not path.is_file():
        raise config_error(f"Metaxy config file not found: {path}")
    return expand_env_vars(_resolve_extend(path, chain=[path]))


def _resolve_extend(path: Path, *, chain: list[Path]) -> dict[str, Any]:
    data = _metaxy_section(path)
    extend = data.pop("extend", None)
    if extend is None:
        return data
    if not isinstance(extend, str):
        raise config_error(f"'extend' must be a path string, got {extend!r}", path)
    parent = (path.parent / Path(expand_env_vars(extend)).expanduser()).resolve()
    if parent in chain:
        cycle = " -> ".join(str(p) for p in [*chain, parent])
        raise config_error(f"Circular config inheritance ('extend'): {cycle}", path)
    if not parent.is_file():
        raise config_error(f"Config file named by 'extend' does not exist: {parent}", path)
    return merge_parent(_resolve_extend(parent, chain=[*chain, parent]), data)


def merge_parent(parent: Mapping[str, Any], child: Mapping[str, Any]) -> dict[str, Any]:
    """Merge a child config over its parent (top-level keys).

    Child scalars override, dicts are shallow-merged (child keys win), lists are concatenated
    (parent items first); keys only in the parent are kept.
    """
    merged = dict(parent)
    for key, value in child.items():
        old = parent.get(key)
        if isinstance(value, dict) and isinstance(old, dict):
            merged[key] = {**old, **value}
        elif isinstance(value, list) and isinstance(old, list):
            merged[key] = [*old, *value]
        else:
            merged[key] = value
    return merged


def _metaxy_section(path: Path) -> dict[str, Any]:
    data = _read_raw(path)
    if path.name == PYPROJECT_TOML:
        section = data.get("tool", {}).get("metaxy", {})
        return dict(section) if isinstance(section, dict) else {}
    return data


def _read_raw(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except tomllib.TOMLDecodeError as exc:
        raise config_error(f"Cannot parse {path} as TOML: {exc}", path) from exc
    except OSError as exc:
        raise config_error(f"Cannot read config file {path}: {exc}", path) from exc


# --------------------------------------------------------------------------------------------
# A small TOML writer (tomllib only reads). Tables become ``[a.b]`` sections; lists are inline
# arrays (dicts inside them inline tables); ``None`` values are left out (TOML has no null).


def dump_toml(data: Mapping[str, Any]) -> str:
    """Serialise a JSON-like mapping to TOML text that :mod:`tomllib` reads back unchanged."""
    lines: list[str] = []
    _emit_table(data, (), lines)
    return "\n".join(lines).strip() + "\n"


def _emit_table(table: Mapping[str, Any], prefix: tuple[str, ...], lines: list[str]) -> None:
    subtables = {k: v for k, v in table.items() if isinstance(v, Mapping) and v}
    if prefix and len(subtables) < len(table):
        lines.extend(["", f"[{'.'.join(_key(p) for p in prefix)}]"])
    for key, value in table.items():
        if key not in subtables and value is not None:
            lines.append(f"{_key(key)} = {_value(value)}")
    for key, value in subtables.items():
        _emit_table(value, (*prefix, key), lines)


def _key(key: str) -> str:
    return key if _BARE_KEY.match(key) else _string(key)


def _string(text: str) -> str:
    # JSON string escapes are a subset of TOML basic-string escapes; DEL must be escaped too.
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, Mapping):
        items = ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items() if v is not None)
        return "{" + items + "}" if items else "{}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(item) for item in value if item is not None) + "]"
    msg = f"cannot write {type(value).__name__} value {value!r} as TOML"
    raise TypeError(msg)
