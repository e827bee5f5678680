"""Feature and field keys.

A key is an ordered tuple of lowercase parts, written ``"a/b/c"``. Keys are frozen pydantic
root models, so they validate on construction, hash, order and serialise (to the slash string)
exactly as Metaxy's do.

Example:
    >>> import metaxy_delta as mx
    >>> key = mx.FeatureKey("video/raw-clips")
    >>> key.parts, key.to_string(), key.to_struct_key(), key.table_name
    (('video', 'raw-clips'), 'video/raw-clips', 'video_raw-clips', 'video__raw_clips')
    >>> mx.FeatureKey(["video", "raw-clips"]) == key
    True
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Annotated, Any, TypeAlias

from pydantic import BeforeValidator, RootModel, TypeAdapter, model_serializer, model_validator
from typing_extensions import Self

KEY_SEPARATOR = "/"
_FIRST_PART = re.compile(r"^[a-z_][a-z0-9_-]*$")
_OTHER_PART = re.compile(r"^[a-z0-9_][a-z0-9_-]*$")


class _Key(RootModel[tuple[str, ...]]):
    """Shared behaviour of :class:`FeatureKey` and :class:`FieldKey`."""

    model_config = {"frozen": True}

    def __init__(self, parts: Any = None, /, **data: Any) -> None:
        if parts is None and "parts" in data:
            parts = data.pop("parts")
        super().__init__(parts, **data)

    @model_validator(mode="before")
    @classmethod
    def _coerce(cls, data: Any) -> Any:
        if isinstance(data, _Key):
            return data.root
        if isinstance(data, str):
            return tuple(data.split(KEY_SEPARATOR))
        if isinstance(data, dict):
            if "root" in data:
                return _Key._coerce(data["root"])
            if "parts" in data:
                return _Key._coerce(data["parts"])
            raise ValueError(f"a key dict must contain 'root' or 'parts', got {data!r}")
        if isinstance(data, Sequence):
            return tuple(data)
        raise ValueError(f"cannot build a key from {type(data).__name__}: {data!r}")

    @model_validator(mode="after")
    def _check_parts(self) -> Self:
        name = type(self).__name__
        if not self.root:
            raise ValueError(f"{name} must have at least one part")
        for i, part in enumerate(self.root):
            if not isinstance(part, str):
                raise ValueError(f"{name} parts must be strings, got {type(part).__name__}")
            if not part:
                raise ValueError(f"{name} parts cannot be empty strings: {self.root!r}")
            if KEY_SEPARATOR in part:
                raise ValueError(f"{name} part {part!r} must not contain {KEY_SEPARATOR!r}")
            if "__" in part:
                raise ValueError(
                    f"{name} part {part!r} must not contain '__' (reserved for table names)"
                )
            pattern = _FIRST_PART if i == 0 else _OTHER_PART
            if not pattern.match(part):
                raise ValueError(
                    f"{name} part {part!r} is invalid: use lowercase letters, digits, '_' and '-'"
                    + (" and do not start with a digit" if i == 0 else "")
                )
        return self

    @model_serializer(mode="plain")
    def _serialize(self) -> str:
        return self.to_string()

    @property
    def parts(self) -> tuple[str, ...]:
        """The key's parts."""
        return self.root

    def to_string(self) -> str:
        """The slash-separated form, e.g. ``"video/raw"``."""
        return KEY_SEPARATOR.join(self.root)

    def to_struct_key(self) -> str:
        """The name used inside ``*_by_field`` struct columns (parts joined by ``_``)."""
        return "_".join(self.root)

    def to_column_suffix(self) -> str:
        """Suffix used for renamed upstream system columns, e.g. ``"__video_raw"``."""
        return "__" + "_".join(self.root)

    @property
    def table_name(self) -> str:
        """SQL-friendly name: parts joined by ``__`` with ``-`` replaced by ``_``."""
        return "__".join(p.replace("-", "_") for p in self.root)

    def __repr__(self) -> str:
        return self.to_string()

    def __str__(self) -> str:
        return self.to_string()

    def __hash__(self) -> int:
        return hash(self.root)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, _Key):
            return type(self) is type(other) and self.root == other.root
        return NotImplemented

    def __lt__(self, other: _Key) -> bool:
        return self.root < other.root

    def __le__(self, other: _Key) -> bool:
        return self.root <= other.root

    def __gt__(self, other: _Key) -> bool:
        return self.root > other.root

    def __ge__(self, other: _Key) -> bool:
        return self.root >= other.root

    def __iter__(self) -> Iterator[str]:  # type: ignore[override]
        return iter(self.root)

    def __len__(self) -> int:
        return len(self.root)

    def __getitem__(self, index: int) -> str:
        return self.root[index]

    def __contains__(self, item: object) -> bool:
        return item in self.root


class FeatureKey(_Key):
    """Key of a feature, e.g. ``FeatureKey("video/raw")`` or ``FeatureKey(["video", "raw"])``."""


class FieldKey(_Key):
    """Key of a field within a feature, e.g. ``FieldKey("audio")``."""


def _coerce_feature_key(value: Any) -> FeatureKey:
    if isinstance(value, FeatureKey):
        return value
    key = getattr(value, "key", None)  # FeatureSpec, FeatureDefinition
    if isinstance(key, FeatureKey):
        return key
    spec = getattr(value, "spec", None)  # BaseFeature subclass
    if isinstance(value, type) and callable(spec):
        return spec().key
    return FeatureKey(value)


def _coerce_field_key(value: Any) -> FieldKey:
    return value if isinstance(value, FieldKey) else FieldKey(value)


ValidatedFeatureKey = Annotated[FeatureKey, BeforeValidator(_coerce_feature_key)]
ValidatedFieldKey = Annotated[FieldKey, BeforeValidator(_coerce_field_key)]
ValidatedFeatureKeySequence = Annotated[list[ValidatedFeatureKey], BeforeValidator(list)]
ValidatedFieldKeySequence = Annotated[list[ValidatedFieldKey], BeforeValidator(list)]
ValidatedFeatureKeyAdapter: TypeAdapter[FeatureKey] = TypeAdapter(ValidatedFeatureKey)
ValidatedFieldKeyAdapter: TypeAdapter[FieldKey] = TypeAdapter(ValidatedFieldKey)
ValidatedFeatureKeySequenceAdapter: TypeAdapter[list[FeatureKey]] = TypeAdapter(
    ValidatedFeatureKeySequence
)
ValidatedFieldKeySequenceAdapter: TypeAdapter[list[FieldKey]] = TypeAdapter(
    ValidatedFieldKeySequence
)

CoercibleToFeatureKey: TypeAlias = "str | Sequence[str] | FeatureKey | Any"
CoercibleToFieldKey: TypeAlias = "str | Sequence[str] | FieldKey"


def coerce_to_feature_key(value: Any) -> FeatureKey:
    """Turn a string, list, key, spec, definition or feature class into a :class:`FeatureKey`.

    Example:
        >>> import metaxy_delta as mx
        >>> mx.coerce_to_feature_key(["a", "b"])
        a/b
    """
    return _coerce_feature_key(value)


def coerce_to_field_key(value: Any) -> FieldKey:
    """Turn a string, list or key into a :class:`FieldKey`."""
    return _coerce_field_key(value)
