"""Differential test: the same graph through Metaxy 0.1.11 (``compare`` extra) and through us.

Every definition-level hash must be identical: feature, field, spec, definition and project
versions, and the snapshot JSON.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import metaxy_delta as mx

mxo = pytest.importorskip("metaxy", reason="differential tests need the `compare` extra")
pytestmark = pytest.mark.filterwarnings("ignore:Global Metaxy configuration not initialized")


def build(lib: Any) -> Any:
    """Define one graph with every spec feature through ``lib`` (metaxy or metaxy_delta)."""
    graph = lib.FeatureGraph()
    with graph.use():

        class Video(lib.BaseFeature, spec=lib.FeatureSpec(key="video/raw", id_columns=["video_id"], fields=["audio", lib.FieldSpec(key="frames", code_version="2")], metadata={"owner": "me"})):
            """Raw videos."""

            video_id: str
            path: str

        class Text(lib.BaseFeature, spec=lib.FeatureSpec(key="text/raw-notes", id_columns=["video_id"], fields=["default"])):
            video_id: str
            note: str | None = None

        class Clip(lib.BaseFeature, spec=lib.FeatureSpec(
            key="video/clip",
            id_columns=["video_id", "clip_id"],
            deps=[
                lib.FeatureDep(feature=Video, rename={"path": "src_path"}, select=("src_path",), filters=["src_path != 'x'"], lineage=lib.LineageRelationship.expansion(on=["video_id"])),
                lib.FeatureDep(feature="text/raw-notes", optional=True, fields_mapping=lib.FieldsMapping.specific({"audio": {"default"}})),
            ],
            fields=[
                lib.FieldSpec(key="audio", deps=[lib.FieldDep(feature="video/raw", fields=["audio"])]),
                lib.FieldSpec(key="frames", code_version="7", deps=lib.SpecialFieldDep.ALL),
                "summary",
            ],
        )):
            video_id: str
            clip_id: int

        class Stats(lib.BaseFeature, spec=lib.FeatureSpec(
            key="video/stats",
            id_columns=["video_id"],
            deps=[lib.FeatureDep(feature=Clip, lineage=lib.LineageRelationship.aggregation(on=["video_id"]), fields_mapping=lib.FieldsMapping.default(match_suffix=True, exclude_fields=["summary"]))],
            fields=["audio", "frames"],
        )):
            video_id: str

        class Everything(lib.BaseFeature, spec=lib.FeatureSpec(key="everything", id_columns=["video_id"], deps=[lib.FeatureDep(feature=Stats, fields_mapping=lib.FieldsMapping.all()), lib.FeatureDep(feature=Text, fields_mapping=lib.FieldsMapping.none())])):
            video_id: str

    return graph


KEYS = ["video/raw", "text/raw-notes", "video/clip", "video/stats", "everything"]


def _compare(fn: Callable[[Any, str], Any]) -> None:
    ours, theirs = build(mx), build(mxo)
    for key in KEYS:
        assert fn(ours, key) == fn(theirs, key), key


def test_feature_and_field_versions_match_metaxy() -> None:
    _compare(lambda g, k: g.get_feature_version(k))
    _compare(lambda g, k: g.get_feature_version_by_field(k))


def test_spec_code_and_definition_versions_match_metaxy() -> None:
    _compare(lambda g, k: g.get_feature_definition(k).spec.model_dump(mode="json"))
    _compare(lambda g, k: g.get_feature_definition(k).spec.feature_spec_version)
    _compare(lambda g, k: g.get_feature_definition(k).spec.code_version)
    _compare(lambda g, k: g.get_feature_definition(k).feature_schema)
    _compare(lambda g, k: g.get_feature_definition(k).feature_definition_version)


def test_project_version_and_order_match_metaxy() -> None:
    ours, theirs = build(mx), build(mxo)
    project = ours.project
    assert project == theirs.project
    assert ours.get_project_version(project) == theirs.get_project_version(project)
    assert [k.to_string() for k in ours.topological_sort_features()] == [
        k.to_string() for k in theirs.topological_sort_features()
    ]
    # Metaxy only excludes the sources when they are given as FeatureKey objects (it builds its
    # exclusion set from the raw input); we exclude them for strings too.
    downstream = [k.to_string() for k in ours.get_downstream_features(["video/raw"])]
    assert set(downstream) == {
        k.to_string() for k in theirs.get_downstream_features([mxo.FeatureKey("video/raw")])
    }
    assert downstream == ["video/clip", "video/stats", "everything"]
