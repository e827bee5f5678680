"""From Dagster asset metadata to Metaxy features, and the feature facts shown in Dagster.

Example:
    >>> import dagster as dg
    >>> import metaxy_delta as mx
    >>> import metaxy_delta.dagster as mxd
    >>> with mx.FeatureGraph().use():
    ...     class Clips(mx.BaseFeature, spec=mx.FeatureSpec(key="video/clips", id_columns=["clip_id"])):
    ...         clip_id: str
    ...     mxd.get_asset_key_for_metaxy_feature_spec(Clips.spec())
    AssetKey(['video', 'clips'])
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import dagster as dg

from metaxy_delta.config import MetaxyConfig
from metaxy_delta.dagster._constants import (
    DAGSTER_METAXY_FEATURE_CODE_VERSION_TAG_KEY,
    DAGSTER_METAXY_FEATURE_METADATA_KEY,
    DAGSTER_METAXY_FEATURE_VERSION_TAG_KEY,
    DAGSTER_METAXY_PROJECT_TAG_KEY,
    DAGSTER_TAG_VALUE_MAX_LENGTH,
    METAXY_DAGSTER_METADATA_KEY,
)
from metaxy_delta.models import FeatureDefinition, FeatureKey, FeatureSpec, current_graph
from metaxy_delta.models.keys import coerce_to_feature_key


def feature_definition(feature: Any) -> FeatureDefinition:
    """The definition of ``feature`` (key, string, list or class) in the active graph.

    Raises:
        KeyError: The feature is not registered (load your features, e.g. ``mx.init()``, first).
    """
    return current_graph().get_feature_definition(coerce_to_feature_key(feature))


def feature_key_from_metadata(metadata: Mapping[str, Any] | None, *, what: str) -> FeatureKey:
    """The feature named by ``metadata["metaxy/feature"]``.

    Raises:
        ValueError: The key is absent (``what`` names the asset in the message).
    """
    value = (metadata or {}).get(DAGSTER_METAXY_FEATURE_METADATA_KEY)
    if value is None:
        msg = (
            f"{what} has no {DAGSTER_METAXY_FEATURE_METADATA_KEY!r} metadata; set "
            f"metadata={{{DAGSTER_METAXY_FEATURE_METADATA_KEY!r}: 'my/feature'}} on the asset so "
            "the Metaxy IO manager knows which feature it reads or writes"
        )
        raise ValueError(msg)
    return coerce_to_feature_key(value)


def dagster_attributes(spec: FeatureSpec) -> dict[str, Any]:
    """The ``"dagster/attributes"`` dict of a feature spec (empty if unset).

    Raises:
        ValueError: The value is not a dict.
    """
    raw = spec.metadata.get(METAXY_DAGSTER_METADATA_KEY)
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        msg = (
            f"Invalid metadata format for `{spec.key.to_string()}` Metaxy feature metadata key "
            f"{METAXY_DAGSTER_METADATA_KEY}: expected dict, got {type(raw).__name__}"
        )
        raise ValueError(msg)
    return dict(raw)


def get_asset_key_for_metaxy_feature_spec(feature_spec: FeatureSpec) -> dg.AssetKey:
    """The Dagster asset key of a feature.

    ``feature_spec.metadata["dagster/attributes"]["asset_key"]`` when set (a list of parts or a
    single string, used as one part), else the feature key's parts.

    Example:
        >>> import metaxy_delta as mx
        >>> spec = mx.FeatureSpec(key="a/b", id_columns=["id"],
        ...     metadata={"dagster/attributes": {"asset_key": ["lake", "b"]}})
        >>> get_asset_key_for_metaxy_feature_spec(spec)
        AssetKey(['lake', 'b'])
    """
    custom = dagster_attributes(feature_spec).get("asset_key")
    if custom:
        return dg.AssetKey(custom)
    return dg.AssetKey(list(feature_spec.key.parts))


def coerce_asset_key(value: Any) -> dg.AssetKey:
    """An ``AssetKey`` from anything Dagster accepts; ``"a/b"`` strings are split into parts.

    Example:
        >>> coerce_asset_key("dagster/asset/key")
        AssetKey(['dagster', 'asset', 'key'])
    """
    if isinstance(value, str):
        return dg.AssetKey.from_user_string(value)
    return dg.AssetKey.from_coercible(value)


def _truncate(value: str) -> str:
    return value[:DAGSTER_TAG_VALUE_MAX_LENGTH]


def feature_tag_value(feature: Any) -> str:
    """The ``"metaxy/feature"`` tag value of a feature: its table name, shortened to fit Dagster.

    Dagster rejects tag values over 63 characters, so a longer table name keeps its first 54
    characters and gets ``-`` plus 8 hex digits of its SHA-256 (stable and still distinct).
    Metaxy 0.1.11 used the table name unchanged, so ``metaxify`` failed on long feature keys.

    Example:
        >>> feature_tag_value("video/frames")
        'video__frames'
        >>> value = feature_tag_value("x" * 40 + "/" + "y" * 40)
        >>> len(value), value[:55]
        (63, 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx__yyyyyyyyyyyy-')
    """
    name = coerce_to_feature_key(feature).table_name
    if len(name) <= DAGSTER_TAG_VALUE_MAX_LENGTH:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: DAGSTER_TAG_VALUE_MAX_LENGTH - len(digest) - 1]}-{digest}"


def build_feature_info_metadata(feature: Any) -> dict[str, Any]:
    """Store-independent facts about a feature, logged as ``"metaxy/info"``.

    Same nesting as Metaxy (``feature.{project, spec, version, type}`` and
    ``metaxy.{version, plugins}``) plus ``feature.key``, ``feature.code_version``,
    ``feature.definition_version``, ``feature.version_by_field`` and ``metaxy.package``.

    Example:
        >>> import metaxy_delta as mx
        >>> with mx.FeatureGraph().use():
        ...     class A(mx.BaseFeature, spec=mx.FeatureSpec(key="info/a", id_columns=["id"])):
        ...         id: str
        ...     info = build_feature_info_metadata("info/a")
        >>> info["feature"]["key"], info["metaxy"]["package"]
        ('info/a', 'metaxy_delta')
    """
    from metaxy_delta import __version__

    definition = feature_definition(feature)
    graph = current_graph()
    key = definition.key
    return {
        "feature": {
            "key": key.to_string(),
            "project": definition.project,
            "spec": definition.spec.model_dump(mode="json"),
            "version": graph.get_feature_version(key),
            "version_by_field": dict(graph.get_feature_version_by_field(key)),
            "code_version": definition.spec.code_version,
            "definition_version": definition.feature_definition_version,
            "type": definition.feature_class_path,
        },
        "metaxy": {
            "package": "metaxy_delta",
            "version": __version__,
            "plugins": list(MetaxyConfig.get().plugins),
        },
    }


def build_feature_event_tags(feature: Any) -> dict[str, str]:
    """Tags attached to materialization/observation events of a feature.

    ``metaxy/feature`` (:func:`feature_tag_value`: the table name, as Dagster tag values cannot
    hold ``/``, shortened if over 63 characters),
    ``metaxy/feature_version`` and ``metaxy/feature_code_version`` (63 characters at most).
    """
    definition = feature_definition(feature)
    key = definition.key
    return {
        DAGSTER_METAXY_FEATURE_METADATA_KEY: feature_tag_value(key),
        DAGSTER_METAXY_FEATURE_VERSION_TAG_KEY: _truncate(current_graph().get_feature_version(key)),
        DAGSTER_METAXY_FEATURE_CODE_VERSION_TAG_KEY: _truncate(definition.spec.code_version),
    }


def select_metaxy_assets(
    *, project: str | None = None, feature: Any | None = None
) -> dg.AssetSelection:
    """Select metaxified assets by project (default: the configured project) and feature.

    Unlike Metaxy 0.1.11, ``feature="a/b"`` matches: the tag is compared with the feature's
    table name (``"a__b"``), which is what :func:`metaxify` writes.

    Raises:
        ValueError: No project given and none configured.

    Example:
        >>> import dagster as dg
        >>> job = dg.define_asset_job("all_metaxy", selection=select_metaxy_assets(project="demo"))
    """
    project = project if project is not None else MetaxyConfig.get().project
    if project is None:
        msg = "project must be specified or configured in MetaxyConfig"
        raise ValueError(msg)
    selection = dg.AssetSelection.tag(DAGSTER_METAXY_PROJECT_TAG_KEY, project)
    if feature is not None:
        key = coerce_to_feature_key(feature)
        selection = selection & dg.AssetSelection.tag(
            DAGSTER_METAXY_FEATURE_METADATA_KEY, feature_tag_value(key)
        )
    return selection
