"""Fields of a feature and their explicit dependencies.

Example:
    >>> import metaxy_delta as mx
    >>> mx.FieldSpec(key="audio", code_version="2").key
    audio
    >>> dep = mx.FieldDep(feature="video/raw", fields=["frames"])
    >>> dep.model_dump(mode="json")
    {'feature': 'video/raw', 'fields': ['frames']}
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from metaxy_delta.models.keys import FieldKey, ValidatedFeatureKey, ValidatedFieldKey

DEFAULT_CODE_VERSION = "__metaxy_initial__"


class SpecialFieldDep(Enum):
    """Special values for field dependencies; ``ALL`` means every upstream field."""

    ALL = "__METAXY_ALL_DEP__"


def _coerce_dep_fields(value: Any) -> Any:
    if value is SpecialFieldDep.ALL or value == SpecialFieldDep.ALL.value:
        return SpecialFieldDep.ALL
    if isinstance(value, str):
        raise ValueError(
            f"FieldDep.fields must be a list of field keys or {SpecialFieldDep.ALL.value!r}, "
            f"got {value!r}"
        )
    return value


class FieldDep(BaseModel):
    """An explicit dependency of a field on fields of an upstream feature."""

    model_config = ConfigDict(extra="forbid")

    feature: ValidatedFeatureKey
    fields: Annotated[
        list[ValidatedFieldKey] | Literal[SpecialFieldDep.ALL], BeforeValidator(_coerce_dep_fields)
    ] = SpecialFieldDep.ALL


class FieldSpec(BaseModel):
    """A field of a feature: its key, code version and (optional) explicit dependencies.

    A bare string validates to ``FieldSpec(key=string)``. Bumping ``code_version`` changes the
    field version, the feature version and every downstream field that depends on it.
    """

    model_config = ConfigDict(extra="forbid")

    key: ValidatedFieldKey = Field(default_factory=lambda: FieldKey(["default"]))
    code_version: str = DEFAULT_CODE_VERSION
    deps: SpecialFieldDep | list[FieldDep] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"key": value}
        if isinstance(value, dict) and value.get("deps", ()) is None:
            return {**value, "deps": []}
        return value
