"""Importing feature modules ("entrypoints") named in the config or in ``METAXY_ENTRYPOINT*``."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path

from metaxy_delta._config._toml import config_error
from metaxy_delta.errors import InvalidConfigError

ENTRYPOINT_ENV_PREFIX = "METAXY_ENTRYPOINT"
PACKAGE_ENTRYPOINT_GROUP = "metaxy.project"


def env_entrypoints(environ: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """Modules named by ``METAXY_ENTRYPOINT*`` variables, as ``(module, variable)`` pairs.

    Every variable whose name starts with ``METAXY_ENTRYPOINT`` (``METAXY_ENTRYPOINT``,
    ``METAXY_ENTRYPOINTS``, ``METAXY_ENTRYPOINT_EXTRA``, ...) holds a comma-separated list of
    module paths. Variables are read in name order.
    """
    environ = os.environ if environ is None else environ
    found = []
    for variable in sorted(environ):
        if variable.upper().startswith(ENTRYPOINT_ENV_PREFIX):
            found.extend((module, variable) for module in split_module_list(environ[variable]))
    return found


def split_module_list(value: str) -> list[str]:
    """``"a.b, c"`` -> ``["a.b", "c"]`` (blank items dropped)."""
    return [item.strip() for item in value.split(",") if item.strip()]


def load_features(
    entrypoints: Iterable[str] | None = None,
    package_entrypoint_group: str = PACKAGE_ENTRYPOINT_GROUP,
    *,
    load_packages: bool = True,
    load_env: bool = True,
    base_dir: str | Path | None = None,
) -> list[str]:
    """Import feature modules so that their features register in the active feature graph.

    Modules are imported in order: ``entrypoints`` first, then (with ``load_packages``) the
    entry points installed packages declare in the ``package_entrypoint_group`` group, then (with
    ``load_env``) those named by ``METAXY_ENTRYPOINT*`` environment variables (comma-separated).
    Each module is imported once; an already imported module is not re-executed.

    A package declares its features like in Metaxy (the target is a module, or a
    ``module:function`` that is called without arguments)::

        [project.entry-points."metaxy.project"]
        my-project = "my_package.features"

    Arguments:
        entrypoints: Module paths such as ``"my_project.features"``.
        package_entrypoint_group: Entry point group of installed packages.
        load_packages: Also load the installed packages' entry points.
        load_env: Also import the modules named by ``METAXY_ENTRYPOINT*`` variables.
        base_dir: Directory to try when a module cannot be found on ``sys.path``. If importing
            ``name`` fails because ``name`` itself (not one of its dependencies) is missing and
            ``base_dir`` is not on ``sys.path``, ``base_dir`` is prepended to ``sys.path`` and
            the import retried; it stays there if that succeeds. :func:`init` passes the
            config file's directory, so modules next to ``metaxy.toml`` import without setting
            ``PYTHONPATH``. (Metaxy itself never touches ``sys.path``.)

    Returns:
        The module paths imported (in order, without duplicates; package entry points appear
        as their ``value``).

    Raises:
        InvalidConfigError: A module cannot be imported; the message names the module and where
            it was listed. Other exceptions raised by the module's own code propagate unchanged.

    Examples:
        >>> from metaxy_delta.config import load_features
        >>> load_features(["json"], load_packages=False, load_env=False)
        ['json']
    """
    directory = None if base_dir is None else Path(base_dir)
    loaded: list[str] = []
    for module in entrypoints or ():
        if module not in loaded:
            _import_entrypoint(module, "the config's `entrypoints`", directory)
            loaded.append(module)
    if load_packages:
        for entry_point in metadata.entry_points(group=package_entrypoint_group):
            if entry_point.value not in loaded:
                _load_package_entrypoint(entry_point)
                loaded.append(entry_point.value)
    if load_env:
        for module, variable in env_entrypoints():
            if module not in loaded:
                _import_entrypoint(module, f"environment variable {variable}", directory)
                loaded.append(module)
    return loaded


def _load_package_entrypoint(entry_point: metadata.EntryPoint) -> None:
    try:
        target = entry_point.load()
    except (ImportError, AttributeError) as exc:
        dist = getattr(entry_point.dist, "name", None) or "an installed package"
        msg = (
            f"Cannot load entry point {entry_point.name!r} = {entry_point.value!r} "
            f"(group {entry_point.group!r}, from {dist}): {exc}"
        )
        raise config_error(msg) from exc
    if entry_point.attr is not None and callable(target):
        target()


def _import_entrypoint(module: str, origin: str, base_dir: Path | None) -> None:
    if not module or module.startswith("."):
        msg = f"Entrypoint {module!r} (from {origin}) must be an absolute module path"
        raise config_error(msg)
    try:
        importlib.import_module(module)
        return
    except ImportError as exc:
        if not _module_itself_missing(module, exc) or base_dir is None or _on_sys_path(base_dir):
            raise _entrypoint_error(module, origin, exc, tried=None) from exc
    directory = str(base_dir.resolve())
    sys.path.insert(0, directory)
    importlib.invalidate_caches()
    try:
        importlib.import_module(module)
    except ImportError as exc:
        if directory in sys.path:
            sys.path.remove(directory)
        raise _entrypoint_error(module, origin, exc, tried=directory) from exc


def _module_itself_missing(module: str, exc: ImportError) -> bool:
    name = exc.name if isinstance(exc, ModuleNotFoundError) else None
    return name is not None and (module + ".").startswith(name + ".")


def _on_sys_path(directory: Path) -> bool:
    target = directory.resolve()
    return any(Path(entry or ".").resolve() == target for entry in sys.path)


def _entrypoint_error(
    module: str, origin: str, exc: ImportError, *, tried: str | None
) -> InvalidConfigError:
    message = f"Cannot import entrypoint module {module!r} (from {origin}): {exc}"
    if tried is not None:
        message += f"\nAlso tried with the config directory {tried} on sys.path."
    message += "\nMake sure the module is installed or on PYTHONPATH."
    return config_error(message)
