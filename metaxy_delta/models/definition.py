"""Feature definitions: the serialisable record of a feature (spec, schema, class path, project).

The definition version hashes the spec version and the pydantic JSON schema, so it changes with
docstrings, metadata and pydantic fields, not only with the things that move sample versions.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import re
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, TypeAdapter, field_validator

from metaxy_delta.models._hashing import truncate_hash
from metaxy_delta.models.keys import FeatureKey
from metaxy_delta.models.spec import FeatureSpec

if TYPE_CHECKING:
    from metaxy_delta.models.feature import BaseFeature

_PROJECT_RE = re.compile(r"^[a-zA-Z0-9_-]+$")
_SCHEMA_ADAPTER: TypeAdapter[dict[str, Any]] = TypeAdapter(dict[str, Any])


def validate_project_name(name: str) -> str:
    """Check a project name: letters, digits, ``_`` and ``-``; no ``/`` and no ``__``.

    Example:
        >>> validate_project_name("my-project")
        'my-project'
    """
    if not isinstance(name, str) or not _PROJECT_RE.match(name) or "__" in name:
        raise ValueError(
            f"invalid project name {name!r}: use letters, digits, '_' and '-' "
            "(no '/', no '__', not empty)"
        )
    return name


class FeatureDefinition(BaseModel):
    """A feature as stored and compared: spec, pydantic JSON schema, class path, project."""

    model_config = ConfigDict(frozen=True)

    spec: FeatureSpec
    feature_schema: dict[str, Any] = Field(description="Pydantic JSON schema dict")
    feature_class_path: str | None = None
    project: str = Field(min_length=1)

    _feature_class: type[BaseFeature] | None = PrivateAttr(default=None)
    _is_external: bool = PrivateAttr(default=False)
    _provenance_by_field: dict[str, str] | None = PrivateAttr(default=None)
    _on_version_mismatch: Literal["warn", "error"] = PrivateAttr(default="warn")
    _source: str | None = PrivateAttr(default=None)

    @field_validator("feature_schema", mode="before")
    @classmethod
    def _normalise_schema(cls, value: Any) -> Any:
        # Metaxy stores the schema as JSON dumped with exclude_none and reads it back.
        raw = value if isinstance(value, (str, bytes)) else _SCHEMA_ADAPTER.dump_json(
            value, exclude_none=True
        )
        return json.loads(raw)

    @classmethod
    def from_feature_class(cls, feature_cls: type[BaseFeature]) -> FeatureDefinition:
        """Build the definition of a :class:`BaseFeature` subclass."""
        spec = feature_cls.spec()
        if spec.description is None and feature_cls.__doc__:
            spec = spec.model_copy(update={"description": inspect.cleandoc(feature_cls.__doc__)})
        definition = cls(
            spec=spec,
            feature_schema=feature_cls.model_json_schema(),
            feature_class_path=f"{feature_cls.__module__}.{feature_cls.__name__}",
            project=feature_cls.metaxy_project(),
        )
        definition._feature_class = feature_cls
        return definition

    @classmethod
    def from_stored_data(
        cls,
        feature_spec: dict[str, Any] | str,
        feature_schema: dict[str, Any] | str,
        feature_class_path: str | None,
        project: str,
        source: str | None = None,
    ) -> FeatureDefinition:
        """Rebuild a definition from its stored JSON (e.g. a graph snapshot)."""
        spec_data = json.loads(feature_spec) if isinstance(feature_spec, str) else feature_spec
        definition = cls(
            spec=FeatureSpec.model_validate(spec_data),
            feature_schema=feature_schema,
            feature_class_path=feature_class_path,
            project=project,
        )
        definition._source = source
        return definition

    @classmethod
    def external(
        cls,
        *,
        spec: FeatureSpec,
        project: str,
        feature_schema: dict[str, Any] | None = None,
        provenance_by_field: dict[str, str] | None = None,
        on_version_mismatch: Literal["warn", "error"] = "warn",
        source: str | None = None,
    ) -> FeatureDefinition:
        """A placeholder for a feature owned by another project.

        ``provenance_by_field`` pins its field versions, so its own upstream need not be known.
        """
        definition = cls(spec=spec, feature_schema=feature_schema or {}, project=project)
        definition._is_external = True
        definition._provenance_by_field = provenance_by_field
        definition._on_version_mismatch = on_version_mismatch
        definition._source = source
        return definition

    @cached_property
    def feature_definition_version(self) -> str:
        """Hash of the spec version and the JSON schema (the project is not included)."""
        hasher = hashlib.sha256()
        hasher.update(self.spec.feature_spec_version.encode("utf-8"))
        hasher.update(json.dumps(self.feature_schema, sort_keys=True).encode("utf-8"))
        return truncate_hash(hasher.hexdigest())

    @property
    def key(self) -> FeatureKey:
        return self.spec.key

    @property
    def table_name(self) -> str:
        return self.spec.table_name()

    @property
    def id_columns(self) -> tuple[str, ...]:
        return self.spec.id_columns

    @property
    def columns(self) -> list[str]:
        """Column names declared by the pydantic model."""
        return list(self.feature_schema.get("properties", {}))

    @property
    def feature_class(self) -> type[BaseFeature] | None:
        """The class this definition was built from, if any."""
        return self._feature_class

    @property
    def is_external(self) -> bool:
        return self._is_external

    @property
    def source(self) -> str | None:
        return self._source

    @property
    def on_version_mismatch(self) -> Literal["warn", "error"]:
        return self._on_version_mismatch

    @property
    def has_provenance_override(self) -> bool:
        return self._provenance_by_field is not None

    @property
    def provenance_by_field_override(self) -> dict[str, str] | None:
        return self._provenance_by_field
