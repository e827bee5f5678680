"""Registry of metadata store types named by ``[stores.<name>] type = "..."``.

A ``type`` string is looked up here first (aliases: Metaxy's import paths and short names map to
the metaxy_delta classes); anything not registered is treated as a dotted import path.
Targets are import paths resolved lazily, so registering never imports the store module.
"""

from __future__ import annotations

import importlib
from typing import Any

_DELTA_STORE = "metaxy_delta.store.DeltaMetadataStore"

_STORE_TYPES: dict[str, str | type] = {
    # Metaxy's import paths (current and older releases), so Metaxy config files work unchanged.
    "metaxy.ext.polars.handlers.delta.DeltaMetadataStore": _DELTA_STORE,
    "metaxy.ext.metadata_stores.delta.DeltaMetadataStore": _DELTA_STORE,
    "metaxy.metadata_store.delta.DeltaMetadataStore": _DELTA_STORE,
    # Short names.
    "delta": _DELTA_STORE,
    "DeltaMetadataStore": _DELTA_STORE,
    "metaxy_delta.DeltaMetadataStore": _DELTA_STORE,
}


def register_store_type(type_name: str, target: str | type) -> None:
    """Make ``type = "<type_name>"`` in a store config resolve to ``target``.

    Registering an existing name replaces it.

    Arguments:
        type_name: The string users write as the store ``type`` (an alias or a full path).
        target: The store class, or its import path ``"package.module.Class"`` (imported only
            when a store of this type is built).

    Examples:
        >>> from metaxy_delta.config import register_store_type, resolve_store_type
        >>> register_store_type("my-store", "my_pkg.stores.MyStore")
        >>> resolve_store_type("my-store")
        'my_pkg.stores.MyStore'
        >>> unregister_store_type("my-store")
    """
    if not isinstance(type_name, str) or not type_name:
        msg = f"type_name must be a non-empty string, got {type_name!r}"
        raise TypeError(msg)
    if not isinstance(target, str | type):
        msg = f"target must be an import path string or a class, got {target!r}"
        raise TypeError(msg)
    _STORE_TYPES[type_name] = target


def unregister_store_type(type_name: str) -> None:
    """Remove a name added with :func:`register_store_type` (no error if absent)."""
    _STORE_TYPES.pop(type_name, None)


def resolve_store_type(type_name: str) -> str | type:
    """Return what a store ``type`` string stands for, without importing anything.

    Examples:
        >>> from metaxy_delta.config import resolve_store_type
        >>> resolve_store_type("metaxy.ext.polars.handlers.delta.DeltaMetadataStore")
        'metaxy_delta.store.DeltaMetadataStore'
        >>> resolve_store_type("my_pkg.stores.MyStore")  # not registered: an import path
        'my_pkg.stores.MyStore'
    """
    return _STORE_TYPES.get(type_name, type_name)


def import_object(path: str) -> Any:
    """Import ``"package.module.Attr"`` (nested attributes allowed: ``"pkg.mod.Outer.Inner"``).

    Raises:
        ImportError: no importable module prefix, or a missing attribute; the message keeps the
            real cause (e.g. a dependency missing inside the module).
    """
    parts = path.split(".")
    not_found: ModuleNotFoundError | None = None
    for split in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:split])
        try:
            obj: Any = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            # Only "this prefix is not a module" lets us try a shorter prefix; a missing
            # dependency imported *by* the module is a real error.
            if exc.name is not None and (module_name + ".").startswith(exc.name + "."):
                not_found = exc
                continue
            raise
        for attr in parts[split:]:
            try:
                obj = getattr(obj, attr)
            except AttributeError:
                msg = f"module {module_name!r} has no attribute {'.'.join(parts[split:])!r}"
                raise ImportError(msg) from None
        return obj
    reason = f": {not_found}" if not_found is not None else ""
    msg = f"{path!r} is not an import path ('package.module.Class') of an importable module{reason}"
    raise ImportError(msg)
