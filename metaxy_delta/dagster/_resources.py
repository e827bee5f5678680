"""Dagster resources that build a :class:`~metaxy_delta.DeltaMetadataStore`.

Both resources hand assets and ops the **store** itself (``dg.ResourceParam[mx.MetadataStore]``),
built once per run (per step process) with the Dagster run id as ``materialization_id``, so
every row written in a run is stamped ``metaxy_materialization_id = <run id>``. Outside a run
(``dg.build_init_resource_context()``) the id is ``None`` instead of failing as in Metaxy.

Example:
    >>> import dagster as dg
    >>> import metaxy_delta.dagster as mxd
    >>> resources = {
    ...     "store": mxd.MetaxyStoreResource(root_path="/tmp/metaxy-doc"),
    ...     "metaxy_io_manager": mxd.MetaxyIOManager(store=mxd.MetaxyStoreResource(root_path="/tmp/metaxy-doc")),
    ... }
"""


from typing import Any

import dagster as dg
from pydantic import Field

from metaxy_delta.config import MetaxyConfig
from metaxy_delta.store import DeltaMetadataStore


def _run_id(context: dg.InitResourceContext) -> str | None:
    run = getattr(context, "run", None)
    return run.run_id if run is not None else None


class MetaxyStoreFromConfigResource(dg.ConfigurableResource[DeltaMetadataStore]):  # type: ignore[type-var]
    """The store configured in ``metaxy.toml`` under ``[stores.<name>]``.

    ``name=None`` uses the configured default store (``store = "..."`` in ``metaxy.toml`` or
    ``$METAXY_STORE``). The active :class:`~metaxy_delta.MetaxyConfig` is used (call
    ``mx.init()`` / ``mx.MetaxyConfig.load()`` in your definitions module).

    Example:
        >>> import dagster as dg
        >>> import metaxy_delta.dagster as mxd
        >>> @dg.job(resource_defs={"metaxy_store": mxd.MetaxyStoreFromConfigResource(name="default")})
        ... def cleanup_job():
        ...     mxd.delete_metadata()
    """

    name: str | None = None
    """Store name in the Metaxy configuration (default: the configured default store)."""

    def build_store(self, materialization_id: str | None = None) -> DeltaMetadataStore:
        """Build the (unopened) store outside Dagster's resource machinery."""
        return MetaxyConfig.get().get_store(self.name, materialization_id=materialization_id)  # type: ignore[no-any-return]

    def create_resource(self, context: dg.InitResourceContext) -> DeltaMetadataStore:
        """The store, with the run id as ``materialization_id``."""
        return self.build_store(_run_id(context))


class MetaxyStoreResource(dg.ConfigurableResource[DeltaMetadataStore]):  # type: ignore[type-var]
    """A Delta metadata store configured directly (no ``metaxy.toml`` needed).

    Credentials can stay out of the config: delta-rs reads the usual ``AWS_*`` environment
    variables, and string fields accept ``dg.EnvVar("...")``.

    Example:
        >>> import metaxy_delta.dagster as mxd
        >>> resource = mxd.MetaxyStoreResource(
        ...     root_path="s3://bucket/metaxy",
        ...     storage_options={"AWS_REGION": "eu-west-1"},
        ... )
    """

    root_path: str
    """Local directory or ``s3://bucket/prefix`` holding one Delta table per feature."""
    storage_options: dict[str, str] | None = None
    """delta-rs/object_store options (``AWS_ENDPOINT_URL``, ``AWS_REGION``...)."""
    layout: str = "nested"
    """``"nested"`` (``root/a/b.delta``) or ``"flat"`` (``root/a__b.delta``)."""
    hash_algorithm: str | None = None
    """Sample hash algorithm (default ``xxhash32``, as Metaxy's Delta store)."""
    fallback_stores: list[str] = Field(default_factory=list)
    """Names of configured stores read when a feature's table is absent here."""
    max_commit_retries: int = 100
    """delta-rs commit retries for concurrent writers (parallel partition backfills)."""
    name: str | None = None
    """Display name of the store."""

    def build_store(self, materialization_id: str | None = None) -> DeltaMetadataStore:
        """Build the (unopened) store outside Dagster's resource machinery."""
        return DeltaMetadataStore(
            self.root_path,
            storage_options=self.storage_options,
            layout=self.layout,  # type: ignore[arg-type]
            hash_algorithm=self.hash_algorithm,
            fallback_stores=list(self.fallback_stores) or None,
            materialization_id=materialization_id,
            max_commit_retries=self.max_commit_retries,
            name=self.name,
        )

    def create_resource(self, context: dg.InitResourceContext) -> DeltaMetadataStore:
        """The store, with the run id as ``materialization_id``."""
        return self.build_store(_run_id(context))


def as_store(store: Any) -> DeltaMetadataStore:
    """A built store from a store or one of this module's resources.

    Helpers typed ``store: MetadataStore | MetaxyStoreFromConfigResource`` in Metaxy 0.1.11
    fail when given the resource; here both work.
    """
    if isinstance(store, (MetaxyStoreFromConfigResource, MetaxyStoreResource)):
        return store.build_store()
    return store  # type: ignore[no-any-return]
