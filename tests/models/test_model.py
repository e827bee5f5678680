"""Keys, specs and graph behaviour, with the errors raised on bad definitions."""

from __future__ import annotations

import pydantic
import pytest

import metaxy_delta as mx


def feature(key: str, deps=(), fields=("default",), name: str | None = None) -> type[mx.BaseFeature]:
    spec = mx.FeatureSpec(key=key, id_columns=["id"], deps=list(deps), fields=list(fields))
    return type(name or key.replace("/", "_").title(), (mx.BaseFeature,), {"__annotations__": {"id": str}}, spec=spec)


def test_key_forms_and_derived_names() -> None:
    key = mx.FeatureKey("video/raw-clips")
    assert key == mx.FeatureKey(["video", "raw-clips"]) == mx.FeatureKey(key) == mx.FeatureKey({"parts": ["video", "raw-clips"]})
    assert (key.to_string(), key.to_struct_key(), key.table_name, key.to_column_suffix()) == (
        "video/raw-clips", "video_raw-clips", "video__raw_clips", "__video_raw-clips",
    )
    assert key.model_dump(mode="json") == "video/raw-clips"
    assert list(key) == ["video", "raw-clips"] and len(key) == 2 and key[0] == "video"
    assert sorted([mx.FeatureKey("b"), mx.FeatureKey("a/z")]) == [mx.FeatureKey("a/z"), mx.FeatureKey("b")]
    assert mx.FieldKey("audio").to_struct_key() == "audio"


@pytest.mark.parametrize("bad", ["Video/raw", "a__b", "", "a//b", "1abc", ["a/b"], ["ok", ""]])
def test_invalid_key_parts_name_the_value(bad: object) -> None:
    with pytest.raises(pydantic.ValidationError) as err:
        mx.FeatureKey(bad)
    assert "FeatureKey" in str(err.value)


def test_spec_validation_errors() -> None:
    with pytest.raises(pydantic.ValidationError, match="duplicate field key 'audio'"):
        mx.FeatureSpec(key="a", id_columns=["id"], fields=["audio", "audio"])
    with pytest.raises(pydantic.ValidationError, match="id_columns must not be empty"):
        mx.FeatureSpec(key="a", id_columns=[])
    with pytest.raises(pydantic.ValidationError, match="pre-rename column name"):
        mx.FeatureDep(feature="up", rename={"path": "p"}, select=("path",))
    with pytest.raises(pydantic.ValidationError):
        mx.FeatureSpec(key="a", id_columns=["id"], unknown=1)


def test_spec_defaults_and_coercions() -> None:
    spec = mx.FeatureSpec(key="a/b", id_columns=("id",), deps=["up", mx.FeatureDep(feature="other")], fields=["x"])
    assert [d.feature.to_string() for d in spec.deps] == ["up", "other"]
    assert spec.deps[0].model_dump(mode="json") == {
        "feature": "up", "select": None, "rename": None,
        "fields_mapping": {"mapping": {"type": "default", "match_suffix": False, "exclude_fields": []}},
        "sql_filters": None, "lineage": {"relationship": {"type": "1:1"}}, "optional": False,
    }
    assert mx.FeatureSpec(key="a", id_columns=["id"]).fields[0].key == mx.FieldKey("default")
    assert mx.FeatureDep(feature="up", filters=["x > 1"]).sql_filters == ("x > 1",)


def test_missing_dependency_names_both_keys(graph: mx.FeatureGraph) -> None:
    feature("down", deps=["not/there"])
    with pytest.raises(mx.MetaxyMissingFeatureDependency, match="'down' depends on 'not/there'"):
        graph.get_feature_version("down")
    with pytest.raises(mx.MetaxyMissingFeatureDependency):
        graph.get_feature_plan("down")


def test_cycle_is_named(graph: mx.FeatureGraph) -> None:
    feature("a", deps=["c"])
    feature("b", deps=["a"])
    feature("c", deps=["b"])
    with pytest.raises(mx.FeatureGraphCycleError, match="a -> c -> b -> a"):
        graph.get_feature_version("a")
    with pytest.raises(mx.FeatureGraphCycleError):
        graph.topological_sort_features()


def test_unknown_field_in_field_dep(graph: mx.FeatureGraph) -> None:
    feature("up", fields=["audio"])
    spec = mx.FeatureSpec(key="down", id_columns=["id"], deps=["up"], fields=[mx.FieldSpec(key="x", deps=[mx.FieldDep(feature="up", fields=["nope"])])])
    type("Down", (mx.BaseFeature,), {"__annotations__": {"id": str}}, spec=spec)
    with pytest.raises(KeyError, match="field nope of up"):
        graph.get_feature_version("down")


def test_registration_conflicts_and_reregistration(graph: mx.FeatureGraph) -> None:
    feature("a", name="A")
    feature("a", name="A")  # same class path: replaced silently (re-import friendly)
    with pytest.raises(ValueError, match="already registered"):
        feature("a", name="Other")
    assert graph.list_features(only_current_project=False) == [mx.FeatureKey("a")]


def test_topological_order_and_downstream(graph: mx.FeatureGraph) -> None:
    feature("root")
    feature("b", deps=["root"])
    feature("a", deps=["b", "root"])
    assert [k.to_string() for k in graph.topological_sort_features()] == ["root", "b", "a"]
    assert [k.to_string() for k in graph.topological_sort_features(descending=True)] == ["a", "b", "root"]
    assert [k.to_string() for k in graph.get_downstream_features(["root"])] == ["b", "a"]


def test_snapshot_round_trip(graph: mx.FeatureGraph) -> None:
    feature("root", fields=["x", "y"])
    feature("leaf", deps=["root"])
    snapshot = graph.to_snapshot()
    rebuilt = mx.FeatureGraph.from_snapshot(snapshot)
    for key in ("root", "leaf"):
        assert rebuilt.get_feature_version(key) == graph.get_feature_version(key)
        assert rebuilt.get_feature_definition(key).feature_definition_version == snapshot[key]["metaxy_definition_version"]


def test_feature_class_helpers(graph: mx.FeatureGraph) -> None:
    cls = feature("video/raw", fields=["audio"])
    assert cls.spec().key == mx.FeatureKey("video/raw")
    assert cls.table_name() == "video__raw"
    assert cls.provenance_by_field() == graph.get_feature_version_by_field("video/raw")
    assert mx.get_feature_by_key("video/raw").feature_class is cls
    with pytest.raises(pydantic.ValidationError, match="extra"):
        cls(id="1", nope=2)
