"""metaxy_delta: Metaxy-compatible sample-level versioning on Delta Lake.

Example:
    >>> import metaxy_delta as mx
    >>> with mx.FeatureGraph().use() as g:
    ...     class Raw(mx.BaseFeature, spec=mx.FeatureSpec(key="video/raw", id_columns=["video_id"], fields=["audio", "frames"])):
    ...         video_id: str
    ...     g.topological_sort_features()
    [video/raw]
"""

from metaxy_delta.config import MetaxyConfig, StoreConfig, init, load_features
from metaxy_delta import errors
from metaxy_delta.errors import (
    ColumnCollisionError,
    CommitConflictError,
    DependencyError,
    FeatureGraphCycleError,
    FeatureNotFoundError,
    FieldDependencyError,
    FieldNotFoundError,
    FilterParseError,
    HashAlgorithmNotSupportedError,
    InvalidConfigError,
    MetadataSchemaError,
    MetadataStoreError,
    MetaxyError,
    MetaxyInvariantViolationError,
    MetaxyMissingFeatureDependency,
    NoUpstreamFieldsError,
    StoreConnectionError,
    StoreNotOpenError,
    SystemDataNotFoundError,
    TableNotFoundError,
    VersioningEngineMismatchError,
)
from metaxy_delta.models import (
    BaseFeature,
    FeatureConfig,
    FeatureDefinition,
    FeatureDep,
    FeatureGraph,
    FeatureKey,
    FeaturePlan,
    FeatureSpec,
    FieldDep,
    FieldKey,
    FieldSpec,
    FieldsMapping,
    FQFieldKey,
    HashAlgorithm,
    LineageRelationship,
    SpecialFieldDep,
    current_graph,
    graph,
)
from metaxy_delta.models.keys import (
    CoercibleToFeatureKey,
    CoercibleToFieldKey,
    ValidatedFeatureKey,
    ValidatedFeatureKeyAdapter,
    ValidatedFeatureKeySequence,
    ValidatedFeatureKeySequenceAdapter,
    ValidatedFieldKey,
    ValidatedFieldKeyAdapter,
    ValidatedFieldKeySequence,
    ValidatedFieldKeySequenceAdapter,
    coerce_to_feature_key,
)
from metaxy_delta.models.mapping import AllFieldsMapping, DefaultFieldsMapping, FieldsMappingType
from metaxy_delta.models.spec import FeatureSpecWithIDColumns, IDColumns
from metaxy_delta.store import (
    DeleteResult,
    DeltaMetadataStore,
    DeltaMetadataStoreConfig,
    MetadataStore,
    WriteResult,
)
from metaxy_delta.versioning import Increment, LazyIncrement, PolarsIncrement, PolarsLazyIncrement
from metaxy_delta.filters import parse_filter, parse_filter_string, to_delta_predicate

__version__ = "0.1.0"


def get_feature_by_key(key: CoercibleToFeatureKey) -> FeatureDefinition:
    """The definition registered under ``key`` in the active graph (``KeyError`` if absent)."""
    return current_graph().get_feature_definition(key)


__all__ = [
    "AllFieldsMapping",
    "BaseFeature",
    "CoercibleToFeatureKey",
    "CoercibleToFieldKey",
    "ColumnCollisionError",
    "CommitConflictError",
    "DefaultFieldsMapping",
    "DeleteResult",
    "DeltaMetadataStore",
    "DeltaMetadataStoreConfig",
    "DependencyError",
    "FQFieldKey",
    "FeatureConfig",
    "FeatureDefinition",
    "FeatureDep",
    "FeatureGraph",
    "FeatureGraphCycleError",
    "FeatureKey",
    "FeatureNotFoundError",
    "FeaturePlan",
    "FeatureSpec",
    "FeatureSpecWithIDColumns",
    "FieldDep",
    "FieldDependencyError",
    "FieldKey",
    "FieldNotFoundError",
    "FieldSpec",
    "FieldsMapping",
    "FieldsMappingType",
    "FilterParseError",
    "HashAlgorithm",
    "HashAlgorithmNotSupportedError",
    "IDColumns",
    "Increment",
    "InvalidConfigError",
    "LazyIncrement",
    "LineageRelationship",
    "MetadataSchemaError",
    "MetadataStore",
    "MetadataStoreError",
    "MetaxyConfig",
    "MetaxyError",
    "MetaxyInvariantViolationError",
    "MetaxyMissingFeatureDependency",
    "NoUpstreamFieldsError",
    "PolarsIncrement",
    "PolarsLazyIncrement",
    "SpecialFieldDep",
    "StoreConfig",
    "StoreConnectionError",
    "StoreNotOpenError",
    "SystemDataNotFoundError",
    "TableNotFoundError",
    "ValidatedFeatureKey",
    "ValidatedFeatureKeyAdapter",
    "ValidatedFeatureKeySequence",
    "ValidatedFeatureKeySequenceAdapter",
    "ValidatedFieldKey",
    "ValidatedFieldKeyAdapter",
    "ValidatedFieldKeySequence",
    "ValidatedFieldKeySequenceAdapter",
    "VersioningEngineMismatchError",
    "WriteResult",
    "coerce_to_feature_key",
    "current_graph",
    "errors",
    "get_feature_by_key",
    "graph",
    "init",
    "load_features",
    "parse_filter",
    "parse_filter_string",
    "to_delta_predicate",
    "__version__",
]
