"""The Delta Lake metadata store."""

from metaxy_delta.store._config import DeltaMetadataStoreConfig
from metaxy_delta.store._writes import DeleteResult, WriteResult
from metaxy_delta.store.delta import DeltaMetadataStore

MetadataStore = DeltaMetadataStore
"""The store type of this package (Metaxy's abstract ``MetadataStore`` has one implementation here)."""

__all__ = [
    "DeleteResult",
    "DeltaMetadataStore",
    "DeltaMetadataStoreConfig",
    "MetadataStore",
    "WriteResult",
]
