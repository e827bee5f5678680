"""The feature model: keys, specs, lineage, field mappings, definitions, graph and versions."""

from metaxy_delta.models.constants import HashAlgorithm
from metaxy_delta.models.definition import FeatureDefinition
from metaxy_delta.models.feature import BaseFeature, FeatureConfig
from metaxy_delta.models.fields import FieldDep, FieldSpec, SpecialFieldDep
from metaxy_delta.models.graph import FeatureGraph, current_graph, graph
from metaxy_delta.models.keys import FeatureKey, FieldKey
from metaxy_delta.models.lineage import LineageRelationship
from metaxy_delta.models.mapping import FieldsMapping
from metaxy_delta.models.plan import FeaturePlan, FQFieldKey
from metaxy_delta.models.spec import FeatureDep, FeatureSpec

__all__ = [
    "BaseFeature",
    "FQFieldKey",
    "FeatureConfig",
    "FeatureDefinition",
    "FeatureDep",
    "FeatureGraph",
    "FeatureKey",
    "FeaturePlan",
    "FeatureSpec",
    "FieldDep",
    "FieldKey",
    "FieldSpec",
    "FieldsMapping",
    "HashAlgorithm",
    "LineageRelationship",
    "SpecialFieldDep",
    "current_graph",
    "graph",
]
