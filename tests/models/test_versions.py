"""Definition versions: Metaxy's fixed vectors and recipes recomputed here with hashlib."""

from __future__ import annotations

import hashlib
import time

import pytest

import metaxy_delta as mx


def sha8(*parts: str) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode("utf-8"))
    return h.hexdigest()[:8]


def feature_version(by_field: dict[str, str]) -> str:
    return sha8(*[x for k in sorted(by_field) for x in (k, by_field[k])])


def make(key: str, fields=("default",), deps=(), cls_name: str | None = None, **kw):
    spec = mx.FeatureSpec(key=key, id_columns=["id"], fields=list(fields), deps=list(deps), **kw)
    name = cls_name or "F_" + key.replace("/", "_").replace("-", "_")
    return type(name, (mx.BaseFeature,), {"__annotations__": {"id": str}}, spec=spec)


@pytest.mark.parametrize(
    ("key", "code_version", "expected"),
    [
        ("test/feature", "1", "d26937b1"),
        ("versioned/feature/test_v1", "1", "0833e931"),
        ("versioned/feature/test_v2", "2", "61dbe7b3"),
    ],
)
def test_metaxy_vectors(graph: mx.FeatureGraph, key: str, code_version: str, expected: str) -> None:
    make(key, fields=[mx.FieldSpec(key="default", code_version=code_version)])
    assert graph.get_feature_version(key) == expected
    assert graph.get_feature_version_by_field(key) == {"default": sha8(f"{key}.default", code_version)}


def test_multi_field_root(graph: mx.FeatureGraph) -> None:
    make("video/raw", fields=[mx.FieldSpec(key="frames", code_version="2"), "audio"])
    audio = sha8("video/raw.audio", "__metaxy_initial__")
    frames = sha8("video/raw.frames", "2")
    assert graph.get_feature_version_by_field("video/raw") == {"frames": frames, "audio": audio}
    assert graph.get_feature_version("video/raw") == feature_version({"audio": audio, "frames": frames})


def test_explicit_field_deps_and_three_level_chain(graph: mx.FeatureGraph) -> None:
    raw = make("raw", fields=["audio", "frames"])
    make(
        "mid",
        fields=[
            mx.FieldSpec(key="transcript", deps=[mx.FieldDep(feature=raw, fields=["audio"])]),
            mx.FieldSpec(key="everything", code_version="3", deps=mx.SpecialFieldDep.ALL),
        ],
        deps=[raw],
    )
    make("top", fields=["transcript"], deps=["mid"])
    a, f = sha8("raw.audio", "__metaxy_initial__"), sha8("raw.frames", "__metaxy_initial__")
    transcript = sha8("mid.transcript", "__metaxy_initial__", a)
    everything = sha8("mid.everything", "3", a, f)
    top = sha8("top.transcript", "__metaxy_initial__", transcript)  # default mapping: exact match
    assert graph.get_feature_version_by_field("mid") == {"transcript": transcript, "everything": everything}
    assert graph.get_feature_version_by_field("top") == {"transcript": top}
    assert graph.get_feature_version("top") == feature_version({"transcript": top})


def test_parents_sorted_by_fully_qualified_string(graph: mx.FeatureGraph) -> None:
    make("b", fields=["x"])
    make("a/z", fields=["x"])
    make("down", fields=["y"], deps=["b", "a/z"])
    # default mapping: no match for "y" -> every upstream field; parents sorted "a/z.x" < "b.x"
    ax, bx = sha8("a/z.x", "__metaxy_initial__"), sha8("b.x", "__metaxy_initial__")
    assert graph.get_feature_version_by_field("down") == {"y": sha8("down.y", "__metaxy_initial__", ax, bx)}


@pytest.mark.parametrize(
    ("mapping", "parents"),
    [
        (mx.FieldsMapping.default(), ["audio"]),
        (mx.FieldsMapping.default(exclude_fields=["audio"]), ["frames", "video/audio"]),
        (mx.FieldsMapping.default(match_suffix=True), ["audio", "video/audio"]),
        (mx.FieldsMapping.specific({"audio": {"frames"}}), ["frames"]),
        (mx.FieldsMapping.all(), ["audio", "frames", "video/audio"]),
    ],
)
def test_fields_mapping_kinds(graph: mx.FeatureGraph, mapping: mx.FieldsMapping, parents: list[str]) -> None:
    make("up", fields=["audio", "frames", "video/audio"])
    make("down", fields=["audio"], deps=[mx.FeatureDep(feature="up", fields_mapping=mapping)])
    versions = {p: sha8(f"up.{p}", "__metaxy_initial__") for p in ["audio", "frames", "video/audio"]}
    expected = sha8("down.audio", "__metaxy_initial__", *[versions[p] for p in sorted(parents)])
    assert graph.get_feature_version_by_field("down") == {"audio": expected}


def test_none_mapping_without_other_parents_is_an_error(graph: mx.FeatureGraph) -> None:
    make("up", fields=["audio"])
    make("down", fields=["audio"], deps=[mx.FeatureDep(feature="up", fields_mapping=mx.FieldsMapping.none())])
    with pytest.raises(RuntimeError, match="no upstream fields found for field audio of feature down"):
        graph.get_feature_version("down")


def test_versions_ignore_non_lineage_spec_parts(graph: mx.FeatureGraph) -> None:
    make("up", fields=["audio"])
    make("down", fields=["audio"], deps=[mx.FeatureDep(feature="up")])
    before = graph.get_feature_version("down")
    graph.remove_feature("down")
    make("down", fields=["audio"], deps=[mx.FeatureDep(feature="up", rename={"p": "q"}, filters=["p > 1"], optional=True)], metadata={"a": 1})
    assert graph.get_feature_version("down") == before


def test_code_version_change_propagates_and_cache_invalidates(graph: mx.FeatureGraph) -> None:
    make("up", fields=["audio", "frames"])
    make("down", fields=["audio", "frames"], deps=["up"])
    before = graph.get_feature_version_by_field("down")
    graph.remove_feature("up")
    make("up", fields=[mx.FieldSpec(key="audio", code_version="2"), "frames"], cls_name="Up2")
    after = graph.get_feature_version_by_field("down")
    assert after["audio"] != before["audio"] and after["frames"] == before["frames"]


def test_dense_twelve_level_chain_is_fast(graph: mx.FeatureGraph) -> None:
    prev = None
    for level in range(12):
        fields = [mx.FieldSpec(key=f"f{i}", deps=mx.SpecialFieldDep.ALL if prev else []) for i in range(3)]
        prev = make(f"level{level}", fields=[f.key.to_string() for f in fields] if prev is None else fields, deps=[prev] if prev else [])
    start = time.perf_counter()
    versions = [graph.get_feature_version(f"level{i}") for i in range(12)]
    assert time.perf_counter() - start < 1.0
    assert len(set(versions)) == 12


def test_truncation_length_follows_config(graph: mx.FeatureGraph) -> None:
    make("test/feature", fields=[mx.FieldSpec(key="default", code_version="1")])
    with mx.MetaxyConfig(hash_truncation_length=16).use():
        long = graph.get_feature_version("test/feature")
    field16 = hashlib.sha256(b"test/feature.default1").hexdigest()[:16]
    assert long == hashlib.sha256(f"default{field16}".encode()).hexdigest()[:16]
    assert graph.get_feature_version("test/feature") == "d26937b1"
