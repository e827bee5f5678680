"""Helpers shared by the Dagster tests (importable from subprocesses and definition files)."""

from __future__ import annotations

from typing import Any

import dagster as dg
import polars as pl


def rows(ids: list[str], field_values: dict[str, str] | None = None, **columns: Any) -> pl.DataFrame:
    """A frame with ``sample_id`` + ``metaxy_provenance_by_field`` (one field ``default``)."""
    provenance = [dict(field_values or {"default": f"h-{i}"}) for i in ids]
    return pl.DataFrame({"sample_id": ids, **columns, "metaxy_provenance_by_field": provenance})


def materializations(result: Any, key: Any) -> list[dg.AssetMaterialization]:
    """Materialization events of ``key`` in a run result."""
    asset_key = dg.AssetKey.from_coercible(key)
    return [
        e.step_materialization_data.materialization
        for e in result.get_asset_materialization_events()
        if e.step_materialization_data.materialization.asset_key == asset_key
    ]


def metadata_values(event: Any) -> dict[str, Any]:
    """``{key: raw value}`` of an event's metadata."""
    return {k: getattr(v, "value", v) for k, v in event.metadata.items()}
