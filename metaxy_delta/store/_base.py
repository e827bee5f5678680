"""Construction, access modes, table addressing and fallbacks of the Delta metadata store."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, Literal

from metaxy_delta.errors import StoreNotOpenError
from metaxy_delta.models.constants import HashAlgorithm
from metaxy_delta.models.graph import FeatureGraph, current_graph
from metaxy_delta.models.keys import FeatureKey, coerce_to_feature_key
from metaxy_delta.store._codecs import LOCAL_SCHEMES, writer_properties_from
from metaxy_delta.store._config import DeltaMetadataStoreConfig
from metaxy_delta.store._snapshots import SnapshotCache
from metaxy_delta.store._table import DeltaTableRef
from metaxy_delta.versioning import check_algorithm

AccessMode = Literal["r", "w"]
log = logging.getLogger("metaxy_delta.store")


def normalise_root(root_path: str | Path) -> str:
    """Local paths are expanded and made absolute; remote URIs are kept as they are."""
    text = str(root_path)
    for scheme in LOCAL_SCHEMES:
        if text.startswith(scheme):
            text = text[len(scheme) :]
            break
    else:
        if "://" in text:
            return text.rstrip("/")
    return str(Path(text).expanduser().resolve())


class StoreBase:
    """State shared by the read/write/maintenance parts of :class:`DeltaMetadataStore`."""

    def __init__(
        self,
        root_path: str | Path,
        *,
        storage_options: Mapping[str, str] | None = None,
        layout: Literal["nested", "flat"] = "nested",
        hash_algorithm: HashAlgorithm | str | None = None,
        fallback_stores: Sequence[StoreBase | str] | None = None,
        partition_by: Sequence[str] | Mapping[str, Sequence[str]] | None = None,
        delta_write_options: Mapping[str, Any] | None = None,
        materialization_id: str | None = None,
        name: str | None = None,
        max_commit_retries: int = 100,
        checkpoint_interval: int | None = 10,
        versioning_engine: str = "polars",
        **_ignored: Any,
    ) -> None:
        if layout not in ("nested", "flat"):
            raise ValueError(f"layout must be 'nested' or 'flat', got {layout!r}")
        self.root_path = normalise_root(root_path)
        self.storage_options = dict(storage_options) if storage_options else None
        self.layout = layout
        self._hash_algorithm = check_algorithm(hash_algorithm or HashAlgorithm.XXHASH32)
        self._fallback_entries = list(fallback_stores or [])
        self._fallbacks: list[StoreBase] | None = None
        self.partition_by = partition_by
        self.delta_write_options = dict(delta_write_options or {})
        if "writer_properties" in self.delta_write_options:  # a mapping from metaxy.toml, too
            properties = writer_properties_from(self.delta_write_options["writer_properties"])
            self.delta_write_options["writer_properties"] = properties
        self._materialization_id = materialization_id
        self._name = name
        self.max_commit_retries = max_commit_retries
        self.checkpoint_interval = checkpoint_interval
        self._modes: list[AccessMode] = []
        self._exit_stack: ExitStack | None = None
        self._snapshots = SnapshotCache()  # latest snapshots read while open (see _snapshots)
        self._config = None
        try:
            from metaxy_delta.config import MetaxyConfig

            self._config = MetaxyConfig.get() if self._fallback_entries else None
        except Exception:  # pragma: no cover - config errors surface when fallbacks resolve
            self._config = None

    # -- identity ----------------------------------------------------------------------------
    @property
    def name(self) -> str | None:
        return self._name

    @property
    def hash_algorithm(self) -> HashAlgorithm:
        return self._hash_algorithm

    @property
    def hash_truncation_length(self) -> int:
        from metaxy_delta.models._hashing import truncation_length

        return truncation_length()

    @property
    def materialization_id(self) -> str | None:
        return self._materialization_id

    @property
    def qualified_class_name(self) -> str:
        return f"{type(self).__module__}.{type(self).__qualname__}"

    def display(self) -> str:
        """Human-readable description, e.g. ``DeltaMetadataStore(path=/data/metaxy)``."""
        return f"{type(self).__name__}(path={self.root_path})"

    def __repr__(self) -> str:
        prefix = f"[{self._name}] " if self._name else ""
        return prefix + self.display()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.update(_modes=[], _exit_stack=None, _fallbacks=None)
        return state

    @classmethod
    def config_model(cls) -> type[DeltaMetadataStoreConfig]:
        """The pydantic model validating ``[stores.NAME.config]``."""
        return DeltaMetadataStoreConfig

    @classmethod
    def from_config(cls, config: DeltaMetadataStoreConfig, **kwargs: Any) -> Any:
        """Build a store from its validated config model (used by ``MetaxyConfig.get_store``)."""
        options = config.model_dump(exclude_none=True)
        options.update(kwargs)
        return cls(**options)

    # -- tables ------------------------------------------------------------------------------
    def table_uri(self, feature: Any) -> str:
        """URI of the feature's Delta table (nested ``root/a/b.delta`` or flat ``root/a__b.delta``)."""
        key = coerce_to_feature_key(feature)
        relative = "/".join(key.parts) if self.layout == "nested" else key.table_name
        return f"{self.root_path}/{relative}.delta"

    def _table(self, feature: Any) -> DeltaTableRef:
        return DeltaTableRef(self.table_uri(feature), self.storage_options)

    def _graph(self) -> FeatureGraph:
        return current_graph()

    def _key(self, feature: Any) -> FeatureKey:
        return coerce_to_feature_key(feature)

    # -- modes -------------------------------------------------------------------------------
    @contextmanager
    def open(self, mode: AccessMode = "r") -> Iterator[Any]:
        """Open the store (``"r"`` or ``"w"``); nested opens push and pop modes."""
        if mode not in ("r", "w"):
            raise ValueError(f"mode must be 'r' or 'w', got {mode!r}")
        self._modes.append(mode)
        try:
            if len(self._modes) == 1:
                self._check_fallback_hashes()
            yield self
        finally:
            self._modes.pop()
            if not self._modes:
                self._snapshots.clear()

    def __enter__(self) -> Any:
        self._exit_stack = ExitStack()
        return self._exit_stack.enter_context(self.open("r"))

    def __exit__(self, *exc: object) -> None:
        if self._exit_stack is not None:
            self._exit_stack.close()
            self._exit_stack = None

    @property
    def is_open(self) -> bool:
        return bool(self._modes)

    def _require_open(self) -> None:
        if not self._modes:
            raise StoreNotOpenError(
                f"{self!r} is not open: use `with store.open('r'):` (or 'w' to write)"
            )

    def _require_write(self) -> None:
        self._require_open()
        if self._modes[-1] != "w":
            raise StoreNotOpenError(
                f"{self!r} is open in read mode; use `with store.open('w'):` to write or delete"
            )

    # -- fallbacks ---------------------------------------------------------------------------
    @property
    def fallback_stores(self) -> list[StoreBase]:
        """Fallback stores, resolved from config names on first access."""
        if self._fallbacks is None:
            resolved: list[StoreBase] = []
            for entry in self._fallback_entries:
                if isinstance(entry, str):
                    from metaxy_delta.config import MetaxyConfig

                    entry = (self._config or MetaxyConfig.get()).get_store(entry)
                resolved.append(entry)
            self._check_fallback_hashes(resolved)
            self._fallbacks = resolved
        return self._fallbacks

    def _check_fallback_hashes(self, stores: Sequence[StoreBase] | None = None) -> None:
        """Raise ``ValueError`` if a fallback store hashes differently (checked when the
        fallbacks are resolved, and again at each outermost ``open()``)."""
        stores = self._fallbacks if stores is None else stores
        for store in stores or ():
            if store.hash_algorithm != self.hash_algorithm:
                raise ValueError(
                    f"fallback store {store!r} hashes with {store.hash_algorithm.value}, "
                    f"but {self!r} uses {self.hash_algorithm.value}"
                )

    def partition_columns_for(self, feature: Any, available: Sequence[str]) -> list[str] | None:
        """Partition columns for a new table: feature metadata, then store configuration."""
        key = coerce_to_feature_key(feature)
        graph = self._graph()
        wanted: Any = None
        if key in graph:
            wanted = graph.get_feature_definition(key).spec.metadata.get("partition_by")
        if wanted is None and isinstance(self.partition_by, Mapping):
            wanted = self.partition_by.get(key.to_string())
        elif wanted is None and self.partition_by is not None:
            wanted = [c for c in self.partition_by if c in available] or None
        if isinstance(wanted, str):
            wanted = [wanted]
        return list(wanted) if wanted else None
