"""The versioning engine on hand-made frames: spec vectors, lineage kinds, deps options."""

from __future__ import annotations

import hashlib
import random

import polars as pl
import pytest
import xxhash

import metaxy_delta as mx
from metaxy_delta import versioning
from metaxy_delta.versioning._hashing import decimal_prefix, is_decimal_prefix

X64 = mx.HashAlgorithm.XXHASH64
VIDEO_DV = {"frames": "video_frame_hash_1", "audio": "video_audio_hash_1"}


def feature(key, *, ids=("id",), deps=(), fields=("default",), name=None):
    spec = mx.FeatureSpec(key=key, id_columns=list(ids), deps=list(deps), fields=list(fields))
    ann = {c: str for c in ids}
    return type(name or key.replace("/", "_").title(), (mx.BaseFeature,), {"__annotations__": ann}, spec=spec)


def upstream(ids, dv_by_field, **cols):
    n = len(ids)
    rows = dv_by_field if isinstance(dv_by_field, list) else [dv_by_field] * n
    return pl.LazyFrame(
        {"id": ids, **cols, "metaxy_provenance_by_field": rows, "metaxy_provenance": ["p"] * n,
         "metaxy_data_version_by_field": rows, "metaxy_data_version": ["d"] * n,
         "metaxy_feature_version": ["fv"] * n, "metaxy_deleted_at": [None] * n}
    )


def x64(s: str) -> str:
    return str(xxhash.xxh64(s.encode()).intdigest())[:8]


@pytest.fixture
def processed(graph):
    feature("video", fields=["frames", "audio"])
    feature("processed", deps=["video"], fields=[mx.FieldSpec(key="default", code_version="1")])
    return graph.get_feature_plan("processed")


@pytest.mark.parametrize(
    ("algorithm", "field", "sample"),
    [
        (mx.HashAlgorithm.XXHASH64, "96465930", "81606296"),
        (mx.HashAlgorithm.SHA256, "b350736a", None),
        (mx.HashAlgorithm.MD5, "d50d88fd", None),
        (mx.HashAlgorithm.XXHASH32, "18761839", None),
    ],
)
def test_spec_vectors(processed, algorithm, field, sample):
    out = versioning.compute_expected(processed, {"video": upstream(["a"], VIDEO_DV)}, hash_algorithm=algorithm, hash_length=8).collect().to_native()
    assert out["metaxy_provenance_by_field"][0] == {"default": field}
    if sample:
        assert out["metaxy_provenance"][0] == sample
    assert out["metaxy_data_version"][0] == out["metaxy_provenance"][0]
    assert "metaxy_deleted_at" not in out.columns and not any(c.startswith("__") for c in out.columns)


def test_two_field_sample_vector(graph):
    feature("f", fields=["analysis", "fusion"])
    plan = graph.get_feature_plan("f")
    samples = pl.DataFrame({"id": ["a"], "metaxy_provenance_by_field": [{"analysis": "10273147", "fusion": "57677343"}]})
    out = versioning.prepare_samples(plan, samples, hash_algorithm=X64, hash_length=8).collect().to_native()
    assert out["metaxy_provenance"][0] == "35194752"


def test_farmhash_is_refused(processed):
    with pytest.raises(mx.HashAlgorithmNotSupportedError, match="farmhash"):
        versioning.compute_expected(processed, {"video": upstream(["a"], VIDEO_DV)}, hash_algorithm=mx.HashAlgorithm.FARMHASH)


def test_aggregation_vector_and_one_row_per_group(graph):
    feature("readings", ids=("sensor_id", "reading_id"), fields=["temp"])
    feature("stats", ids=("sensor_id",), fields=["temp"], deps=[mx.FeatureDep(feature="readings", lineage=mx.LineageRelationship.aggregation(on=["sensor_id"]))])
    plan = graph.get_feature_plan("stats")
    frame = pl.LazyFrame({
        "sensor_id": ["s1", "s1", "s2"], "reading_id": ["r2", "r1", "r1"],
        "metaxy_provenance_by_field": [{"temp": "t2"}, {"temp": "t1"}, {"temp": "t9"}],
        "metaxy_provenance": ["x"] * 3,
        "metaxy_data_version_by_field": [{"temp": "t2"}, {"temp": "t1"}, {"temp": "t9"}],
        "metaxy_data_version": ["x"] * 3,
    })
    out = versioning.compute_expected(plan, {"readings": frame}, hash_algorithm=X64, hash_length=8).collect().to_native().sort("sensor_id")
    assert out["sensor_id"].to_list() == ["s1", "s2"]
    assert x64("t1|t2") == "24422777"
    assert out["metaxy_provenance_by_field"][0] == {"temp": "59128442"}
    assert out["metaxy_provenance"][0] == "90728582"
    assert out["reading_id"].to_list() == [["r1", "r2"], ["r1"]]


def test_expansion_increment_is_parent_level_and_orphans_are_children(graph):
    feature("video", ids=("video_id",), fields=["frames"])
    feature("clip", ids=("video_id", "clip_id"), fields=["frames"], deps=[mx.FeatureDep(feature="video", lineage=mx.LineageRelationship.expansion(on=["video_id"]))])
    plan = graph.get_feature_plan("clip")
    up = upstream(["v1", "v2", "v3"], {"frames": "f"}).rename({"id": "video_id"})
    expected = versioning.compute_expected(plan, {"video": up}, hash_algorithm=X64).collect().to_native()
    prov = dict(zip(expected["video_id"], expected["metaxy_provenance"]))
    current = pl.LazyFrame({
        "video_id": ["v1", "v1", "v2", "v2", "v9"], "clip_id": ["a", "b", "a", "b", "a"],
        "metaxy_provenance": [prov["v1"], prov["v1"], prov["v2"], "old", "x"],
    })
    inc = versioning.resolve(plan, upstream={"video": up}, current=current, hash_algorithm=X64).collect().to_polars()
    assert inc.new["video_id"].to_list() == ["v3"]
    assert inc.stale["video_id"].to_list() == ["v2"]
    assert inc.orphaned.select("video_id", "clip_id").rows() == [("v9", "a")]


def test_optional_dep_left_join_hashes_missing_as_empty(graph):
    feature("a", fields=["x"])
    feature("b", fields=["y"])
    feature("c", fields=["z"], deps=["a", mx.FeatureDep(feature="b", optional=True)])
    plan = graph.get_feature_plan("c")
    frames = {"a": upstream(["1", "2"], {"x": "ax"}), "b": upstream(["1"], {"y": "by"})}
    out = versioning.compute_expected(plan, frames, hash_algorithm=X64, hash_length=8).collect().to_native().sort("id")
    assert out["id"].to_list() == ["1", "2"]
    assert out["metaxy_provenance_by_field"][1] == {"z": x64("z|__metaxy_initial__|a.x|ax|b.y|")}
    assert out["metaxy_provenance_by_field"][0] == {"z": x64("z|__metaxy_initial__|a.x|ax|b.y|by")}


def test_all_optional_deps_full_outer_join(graph):
    feature("a", fields=["x"])
    feature("b", fields=["y"])
    feature("c", fields=["z"], deps=[mx.FeatureDep(feature="a", optional=True), mx.FeatureDep(feature="b", optional=True)])
    frames = {"a": upstream(["1"], {"x": "ax"}), "b": upstream(["2"], {"y": "by"})}
    out = versioning.compute_expected(graph.get_feature_plan("c"), frames, hash_algorithm=X64).collect().to_native()
    assert sorted(out["id"].to_list()) == ["1", "2"]


def test_rename_filter_select(graph):
    feature("a", fields=["x"])
    feature("c", fields=["x"], deps=[mx.FeatureDep(feature="a", rename={"path": "a_path"}, filters=["a_path != 'skip'"], select=("a_path",))])
    frame = upstream(["1", "2"], {"x": "v"}, path=["keep", "skip"], extra=[1, 2])
    out = versioning.compute_expected(graph.get_feature_plan("c"), {"a": frame}).collect().to_native()
    assert out["id"].to_list() == ["1"]
    assert set(out.columns) == {"id", "a_path", "metaxy_provenance_by_field", "metaxy_provenance", "metaxy_data_version_by_field", "metaxy_data_version"}


def test_column_collision_names_column_and_both_deps(graph):
    feature("a", fields=["x"])
    feature("b", fields=["y"])
    feature("c", fields=["z"], deps=["a", "b"])
    frames = {"a": upstream(["1"], {"x": "v"}, path=["p"]), "b": upstream(["1"], {"y": "v"}, path=["q"])}
    with pytest.raises(mx.MetaxyError, match="'path' comes from both a and b"):
        versioning.compute_expected(graph.get_feature_plan("c"), frames)


def test_data_version_override_propagates(graph):
    feature("a", fields=["x"])
    feature("c", fields=["x"], deps=["a"])
    base = upstream(["1"], {"x": "prov"})
    overridden = base.with_columns(pl.lit({"x": "content-hash"}).alias("metaxy_data_version_by_field"))
    plan = graph.get_feature_plan("c")
    one = versioning.compute_expected(plan, {"a": base}, hash_algorithm=X64, hash_length=8).collect().to_native()
    two = versioning.compute_expected(plan, {"a": overridden}, hash_algorithm=X64, hash_length=8).collect().to_native()
    assert two["metaxy_provenance_by_field"][0] == {"x": x64("x|__metaxy_initial__|a.x|content-hash")}
    assert one["metaxy_provenance"][0] != two["metaxy_provenance"][0]


def test_field_level_precision(graph):
    """Changing an upstream field that a downstream field does not depend on marks nothing stale."""
    feature("video", fields=["audio", "frames"])
    feature("transcript", fields=["audio"], deps=["video"])
    plan = graph.get_feature_plan("transcript")
    before = upstream(["1", "2"], [{"audio": "a1", "frames": "f1"}, {"audio": "a2", "frames": "f2"}])
    stored = versioning.compute_expected(plan, {"video": before}).collect().to_native()
    frames_changed = upstream(["1", "2"], [{"audio": "a1", "frames": "NEW"}, {"audio": "a2", "frames": "f2"}])
    inc = versioning.resolve(plan, upstream={"video": frames_changed}, current=stored).collect().to_polars()
    assert (len(inc.new), len(inc.stale), len(inc.orphaned)) == (0, 0, 0)
    audio_changed = upstream(["1", "2"], [{"audio": "a1", "frames": "f1"}, {"audio": "NEW", "frames": "f2"}])
    inc = versioning.resolve(plan, upstream={"video": audio_changed}, current=stored).collect().to_polars()
    assert inc.stale["id"].to_list() == ["2"] and len(inc.new) == 0


def test_root_requires_samples_and_checks_struct(graph):
    feature("root", fields=["a", "b"])
    plan = graph.get_feature_plan("root")
    with pytest.raises(ValueError, match="root feature"):
        versioning.resolve(plan)
    bad = pl.DataFrame({"id": ["1"], "metaxy_provenance_by_field": [{"a": "x"}]})
    with pytest.raises(mx.MetadataSchemaError, match="missing: \\['b'\\]"):
        versioning.resolve(plan, samples=bad)
    good = pl.DataFrame({"id": ["1", "2"], "metaxy_provenance_by_field": [{"a": "x", "b": "y"}] * 2, "metaxy_provenance": ["bogus"] * 2})
    current = versioning.prepare_samples(plan, good.head(1)).collect().to_native().with_columns(pl.lit("old").alias("metaxy_provenance"))
    inc = versioning.resolve(plan, samples=good, current=current).collect().to_polars()
    assert inc.new["id"].to_list() == ["2"] and inc.stale["id"].to_list() == ["1"]
    assert inc.new["metaxy_provenance"][0] != "bogus"


def test_staleness_predicate_and_skip_comparison(graph):
    feature("root", fields=["a"])
    plan = graph.get_feature_plan("root")
    samples = pl.DataFrame({"id": ["1", "2"], "metaxy_provenance_by_field": [{"a": "x"}, {"a": "y"}]})
    stored = versioning.prepare_samples(plan, samples).collect().to_native().with_columns(score=pl.Series([0.1, 0.9]))
    import narwhals as nw

    inc = versioning.resolve(plan, samples=samples, current=stored, staleness_predicates=[nw.col("score") < 0.5]).collect().to_polars()
    assert inc.stale["id"].to_list() == ["1"]
    inc = versioning.resolve(plan, samples=samples, current=stored, skip_comparison=True).collect().to_polars()
    assert len(inc.new) == 2 and len(inc.stale) == len(inc.orphaned) == 0


def test_sha256_field_hash_matches_hashlib(processed):
    out = versioning.compute_expected(processed, {"video": upstream(["a"], VIDEO_DV)}, hash_algorithm=mx.HashAlgorithm.SHA256, hash_length=12).collect().to_native()
    concat = "default|1|video.audio|video_audio_hash_1|video.frames|video_frame_hash_1"
    assert out["metaxy_provenance_by_field"][0] == {"default": hashlib.sha256(concat.encode()).hexdigest()[:12]}


@pytest.mark.parametrize(
    "degenerate",
    [
        None,  # the real 64-bit hash: no collision, the hash-keyed join is used
        lambda join: pl.lit(0, dtype=pl.UInt64),  # every key collides with every other
        lambda join: pl.col(join[0]).hash() % 2,  # half of the keys share a hash
    ],
    ids=["real-hash", "one-hash", "two-hashes"],
)
def test_hash_keyed_comparison_falls_back_on_collisions(graph, monkeypatch, caplog, degenerate):
    """One-pass resolves join on a 64-bit hash of the keys; keys that share a hash never
    mislabel a sample: the exact join runs instead."""
    from metaxy_delta.versioning import _increment

    if degenerate is not None:
        monkeypatch.setattr(_increment, "key_hash", degenerate)
    feature("root", fields=["a"])
    plan = graph.get_feature_plan("root")
    old = pl.DataFrame({"id": ["1", "2", "3", "4"], "metaxy_provenance_by_field": [{"a": v} for v in "wxyz"]})
    stored = versioning.prepare_samples(plan, old).collect().to_native()
    # 1 unchanged, 2 stale, 3 and 4 orphaned, 5 and 6 new
    samples = pl.DataFrame({"id": ["1", "2", "5", "6"], "metaxy_provenance_by_field": [{"a": v} for v in "wXuv"]})
    caplog.set_level("DEBUG", logger="metaxy_delta.versioning._increment")
    lazy = versioning.resolve(plan, samples=samples, current=stored, current_unique=True).to_polars()
    assert lazy.one_pass is not None and lazy.one_pass.hashed is not None
    inc = lazy.collect()
    assert sorted(inc.new["id"]) == ["5", "6"]
    assert inc.stale["id"].to_list() == ["2"]
    assert sorted(inc.orphaned["id"]) == ["3", "4"]
    assert inc.orphaned.columns == stored.columns
    fell_back = "share a 64-bit hash" in caplog.text
    assert fell_back == (degenerate is not None)
    exact = versioning.resolve(plan, samples=samples, current=stored).collect().to_polars()
    for got, want in zip(inc, exact):
        assert got.sort("id").equals(want.sort("id"))


def test_hash_keyed_comparison_needs_matching_value_hashed_keys(graph):
    feature("root", fields=["a"])
    plan = graph.get_feature_plan("root")
    samples = pl.DataFrame({"id": ["1"], "metaxy_provenance_by_field": [{"a": "x"}]})
    stored = versioning.prepare_samples(plan, samples).collect().to_native()
    categorical = stored.with_columns(pl.col("id").cast(pl.Categorical))
    for current, hashed in ((stored, True), (categorical, False)):
        lazy = versioning.resolve(plan, samples=samples, current=current, current_unique=True).to_polars()
        assert lazy.one_pass is not None and (lazy.one_pass.hashed is not None) == hashed


@pytest.mark.parametrize(("dtype", "bits"), [(pl.UInt32(), 32), (pl.UInt64(), 64)])
def test_decimal_prefix_equals_slicing_the_decimal_string(dtype: pl.DataType, bits: int) -> None:
    """Cutting a hash to its leading digits before formatting gives the very strings of
    formatting then slicing, for every prefix length, at every power-of-ten boundary."""
    top = 2**bits - 1
    edges = {v for j in range(21) for v in (10**j - 1, 10**j, 10**j + 1) if 0 <= v <= top}
    rng = random.Random(bits)
    values = sorted(edges | {0, top, top // 2, *(rng.randrange(top + 1) for _ in range(2_000))})
    frame = pl.DataFrame({"n": pl.Series([*values, None], dtype=dtype)})
    for length in range(23):
        sliced = frame.select(pl.col("n").cast(pl.String).str.slice(0, length)).to_series()
        ours = frame.select(decimal_prefix(pl.col("n"), dtype, length)).to_series()
        assert ours.to_list() == sliced.to_list(), length


@pytest.mark.parametrize(("dtype", "bits"), [(pl.UInt32(), 32), (pl.UInt64(), 64)])
def test_is_decimal_prefix_proves_only_the_exact_strings(dtype: pl.DataType, bits: int) -> None:
    """Parsing instead of formatting: ``True`` only where the text is the decimal prefix, and for
    every exact prefix of a hash with at least ``length`` digits; near misses (sign, spaces,
    leading zeros, a digit more or less, other digits, non-ASCII digits) are never proven."""
    top = 2**bits - 1
    edges = {v for j in range(21) for v in (10**j - 1, 10**j, 10**j + 1) if 0 <= v <= top}
    rng = random.Random(bits + 1)
    values = sorted(edges | {0, top, *(rng.randrange(top + 1) for _ in range(500))})
    for length in range(0, len(str(top)) + 2):
        check = is_decimal_prefix(pl.col("text"), pl.col("n"), dtype, length)
        if not 1 <= length < len(str(top)):
            assert check is None, length
            continue
        assert check is not None
        rows: list[tuple[str | None, int]] = []
        for v in values:
            exact = str(v)[:length]
            near = [exact, "+" + exact, " " + exact, exact + " ", "0" + exact, exact[1:], exact + "0",
                    exact[:-1] + str((int(exact[-1]) + 1) % 10), "١" + exact[1:], "", None]  # fmt: skip
            rows += [(text, v) for text in near]
        frame = pl.DataFrame({"text": [t for t, _ in rows], "n": pl.Series([v for _, v in rows], dtype=dtype)})
        result = frame.with_columns(
            check.alias("proven"), decimal_prefix(pl.col("n"), dtype, length).alias("exact")
        )
        proven = result.filter("proven")
        assert (proven["text"] == proven["exact"]).all(), length
        must = result.filter((pl.col("text") == pl.col("exact")) & (pl.col("n") >= 10 ** (length - 1)))
        assert must["proven"].all() and must.height > 0, length


def test_upstream_structs_carry_only_the_fields_the_plan_hashes(graph, monkeypatch):
    """Unused upstream fields are dropped before the joins; the hashes stay the same."""
    from metaxy_delta.versioning import _upstream

    feature("video", fields=["frames", "audio", "captions"])
    feature("sensor", fields=["gps", "imu"])
    audio = mx.FieldSpec(key="audio", deps=[mx.FieldDep(feature="video", fields=["audio"]), mx.FieldDep(feature="sensor", fields=["gps"])])
    feature("leaf", deps=["video", "sensor"], fields=[audio])
    plan = graph.get_feature_plan("leaf")
    video = {"frames": "f", "audio": "a", "captions": "c"}
    frames = {
        "video": upstream(["a", "b"], [video, {**video, "audio": "a2"}]),
        "sensor": upstream(["a", "b"], {"gps": "g", "imu": "i"}),
    }
    joined = _upstream.prepare_upstream(plan, {mx.FeatureKey(k): v for k, v in frames.items()}, X64, 8)
    schema = joined.frame.collect_schema()
    assert [f.name for f in schema["metaxy_data_version_by_field__video"].fields] == ["audio"]
    assert [f.name for f in schema["metaxy_data_version_by_field__sensor"].fields] == ["gps"]
    pruned = versioning.compute_expected(plan, frames, hash_algorithm=X64, hash_length=8).collect().to_native()
    monkeypatch.setattr(_upstream, "_used_fields_only", lambda frame, plan, key: frame)
    whole = versioning.compute_expected(plan, frames, hash_algorithm=X64, hash_length=8).collect().to_native()
    assert pruned.sort("id").equals(whole.sort("id"))
    assert pruned.sort("id")["metaxy_provenance_by_field"].to_list() == [
        {"audio": x64("audio|__metaxy_initial__|sensor.gps|g|video.audio|a")},
        {"audio": x64("audio|__metaxy_initial__|sensor.gps|g|video.audio|a2")},
    ]
