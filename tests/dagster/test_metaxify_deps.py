"""Deps injected by ``metaxify`` order the steps of a run, not only the asset graph."""

from __future__ import annotations

from typing import Any

import dagster as dg

import metaxy_delta as mx
import metaxy_delta.dagster as mxd

from mxd_testing import rows


def test_injected_dep_orders_steps_without_ins(graph: mx.FeatureGraph, tmp_path: Any) -> None:
    """``aa_down`` sorts before ``zz_up`` and declares no ``ins=``: metaxify's dep must still
    make it run after ``zz_up`` (Dagster's ``map_asset_specs`` alone does not wire it)."""

    class Up(mx.BaseFeature, spec=mx.FeatureSpec(key="order/up", id_columns=["sample_id"])):
        sample_id: str

    class Down(
        mx.BaseFeature,
        spec=mx.FeatureSpec(key="order/down", id_columns=["sample_id"], deps=[Up]),
    ):
        sample_id: str

    @mxd.metaxify
    @dg.asset(metadata={"metaxy/feature": "order/up"}, io_manager_key="metaxy_io_manager")
    def zz_up() -> Any:
        return rows(["a", "b"])

    @mxd.metaxify
    @dg.asset(metadata={"metaxy/feature": "order/down"}, io_manager_key="metaxy_io_manager")
    def aa_down(store: dg.ResourceParam[mx.MetadataStore]) -> Any:
        with store.open("r"):  # fails with DependencyError if zz_up has not run yet
            return store.resolve_update(Down).new

    assert aa_down.asset_deps[aa_down.key] == {zz_up.key}
    assert set(aa_down.keys_by_input_name.values()) == {zz_up.key}
    store = mxd.MetaxyStoreResource(root_path=str(tmp_path / "store"))
    result = dg.materialize(
        [aa_down, zz_up], resources={"store": store, "metaxy_io_manager": mxd.MetaxyIOManager(store=store)}
    )
    assert result.success
    started = [e.step_key for e in result.all_events if e.event_type_value == "STEP_START"]
    assert started.index("zz_up") < started.index("aa_down")
    with mx.DeltaMetadataStore(str(tmp_path / "store")).open("r") as opened:
        assert sorted(opened.read(Down).collect()["sample_id"].to_list()) == ["a", "b"]

