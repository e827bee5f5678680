"""``BaseFeature``: declare a feature as a pydantic class with ``spec=``.

Defining a subclass with ``spec=`` registers it into the active :class:`FeatureGraph`. The
pydantic fields describe the feature's user columns (they enter the definition version and the
Dagster column schema); nothing validates stored rows against them at runtime.

Example:
    >>> import metaxy_delta as mx
    >>> with mx.FeatureGraph().use():
    ...     class Video(mx.BaseFeature, spec=mx.FeatureSpec(key="video/raw", id_columns=["video_id"], fields=["audio", "frames"])):
    ...         '''Raw videos.'''
    ...         video_id: str
    ...         path: str
    ...     Video.spec().key, Video.feature_version()
    (video/raw, 'b9bb54e4')
"""

from __future__ import annotations

import sys
from typing import Any, ClassVar, TypedDict

import pydantic
from pydantic import AwareDatetime, ConfigDict, Field, model_validator
from pydantic._internal._model_construction import ModelMetaclass
from typing_extensions import Self

from metaxy_delta.models.graph import FeatureGraph
from metaxy_delta.models.spec import FeatureSpec


class FeatureConfig(TypedDict, total=False):
    """Per-feature extension configuration (``ext`` is free-form)."""

    ext: dict[str, Any]


def _detect_project(module_name: str) -> str:
    top = module_name.split(".")[0]
    package = sys.modules.get(top)
    project = getattr(package, "__metaxy_project__", None) if package else None
    if project is None:
        return top
    if not isinstance(project, str):
        raise TypeError(f"__metaxy_project__ in {top!r} must be a string, got {project!r}")
    return project


class MetaxyMeta(ModelMetaclass):
    """Metaclass that registers feature classes defined with ``spec=`` into the active graph."""

    def __new__(
        mcs,
        cls_name: str,
        bases: tuple[type[Any], ...],
        namespace: dict[str, Any],
        *,
        spec: FeatureSpec | None = None,
        **kwargs: Any,
    ) -> type:
        namespace.setdefault("model_config", ConfigDict(frozen=True, extra="forbid"))
        cls = super().__new__(mcs, cls_name, bases, namespace, **kwargs)
        if spec is not None:
            if not isinstance(spec, FeatureSpec):
                raise TypeError(f"{cls_name}: spec= must be a FeatureSpec, got {type(spec)}")
            active = FeatureGraph.get_active()
            cls.graph = active  # type: ignore[attr-defined]
            cls._spec = spec  # type: ignore[attr-defined]
            project = namespace.get("__metaxy_project__") or _detect_project(cls.__module__)
            cls.__metaxy_project__ = project  # type: ignore[attr-defined]
            active.add_feature(cls)  # type: ignore[arg-type]
        return cls


class BaseFeature(pydantic.BaseModel, metaclass=MetaxyMeta):
    """Base class of feature declarations (subclass it with ``spec=mx.FeatureSpec(...)``)."""

    _spec: ClassVar[FeatureSpec]
    feature_config: ClassVar[FeatureConfig] = FeatureConfig()
    graph: ClassVar[FeatureGraph]
    __metaxy_project__: ClassVar[str]

    metaxy_provenance_by_field: dict[str, str] = Field(
        default_factory=dict,
        description="Field-level provenance hashes (maps field names to hashes)",
    )
    metaxy_provenance: str | None = Field(
        default=None, description="Hash of metaxy_provenance_by_field"
    )
    metaxy_feature_version: str | None = Field(
        default=None,
        description="Hash of the feature definition (dependencies + fields + code_versions)",
    )
    metaxy_project_version: str | None = Field(
        default=None, description="Hash of the entire feature graph project version"
    )
    metaxy_data_version_by_field: dict[str, str] | None = Field(
        default=None,
        description="Field-level data version hashes (maps field names to version hashes)",
    )
    metaxy_data_version: str | None = Field(
        default=None, description="Hash of metaxy_data_version_by_field"
    )
    metaxy_created_at: AwareDatetime | None = Field(
        default=None, description="Timestamp when the metadata row was created (UTC)"
    )
    metaxy_materialization_id: str | None = Field(
        default=None, description="External orchestration run ID (e.g., Dagster Run ID)"
    )

    @model_validator(mode="after")
    def _id_columns_are_fields(self) -> Self:
        missing = set(self.spec().id_columns) - set(type(self).model_fields)
        if missing:
            raise ValueError(
                f"ID columns {sorted(missing)} of {self.spec().key} are not fields of "
                f"{type(self).__name__}"
            )
        return self

    @classmethod
    def spec(cls) -> FeatureSpec:
        """The feature's :class:`FeatureSpec`."""
        try:
            return cls._spec
        except AttributeError:
            raise TypeError(f"{cls.__name__} was defined without spec=") from None

    @classmethod
    def metaxy_project(cls) -> str:
        """The project this feature belongs to."""
        return cls.__metaxy_project__

    @classmethod
    def table_name(cls) -> str:
        """SQL-friendly table name (parts joined by ``__``)."""
        return cls.spec().table_name()

    @classmethod
    def feature_version(cls) -> str:
        """The feature version (``metaxy_feature_version``) in the class's graph."""
        return cls.graph.get_feature_version(cls.spec().key)

    @classmethod
    def feature_spec_version(cls) -> str:
        """Hash of the whole spec."""
        return cls.spec().feature_spec_version

    @classmethod
    def provenance_by_field(cls) -> dict[str, str]:
        """``{field: field version}`` in the class's graph."""
        return cls.graph.get_feature_version_by_field(cls.spec().key)
