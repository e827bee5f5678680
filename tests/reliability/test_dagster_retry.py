"""Guarantee 6: re-running a failed partition materialization is safe (at-least-once).

Real ``dg.materialize`` runs of daily-partitioned assets (``mxd.metaxify`` +
``mxd.MetaxyIOManager``) whose first attempt fails either *after* writing its increment or
*before* writing anything. The re-run must not duplicate samples in default reads, and its
increment (``resolve_update``: new / stale / orphaned) must be exactly what is still missing.
"""


import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import pytest

import metaxy_delta as mx
import metaxy_delta.dagster as mxd

warnings.filterwarnings("ignore", message=r".*is currently in (beta|preview).*")
pytestmark = pytest.mark.slow

DAYS = ["2024-01-01", "2024-01-02"]
daily = dg.DailyPartitionsDefinition(start_date=DAYS[0], end_date="2024-01-03")


class Attempts:
    """What the assets should do and what they saw, per run."""

    def __init__(self) -> None:
        self.fail: dict[str, str | None] = {"raw": None, "clean": None}  # None, "before", "after"
        self.raw_rows: dict[str, pl.DataFrame] = {}
        self.increments: list[dict[str, set[str]]] = []


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[Any, Attempts, Any]]:
    attempts = Attempts()
    with mx.FeatureGraph().use() as graph:

        class Raw(mx.BaseFeature, spec=mx.FeatureSpec(key="rel/raw", id_columns=["sample_id"])):
            sample_id: str
            date: str | None = None

        class Clean(
            mx.BaseFeature,
            spec=mx.FeatureSpec(key="rel/clean", id_columns=["sample_id"], deps=[mx.FeatureDep(feature="rel/raw")]),
        ):
            sample_id: str
            date: str | None = None

        @mxd.metaxify
        @dg.asset(
            partitions_def=daily,
            metadata={"metaxy/feature": "rel/raw", "partition_by": "date"},
            io_manager_key="metaxy_io_manager",
        )
        def raw(context: dg.AssetExecutionContext, store: dg.ResourceParam[mx.MetadataStore]) -> Any:
            frame = attempts.raw_rows[context.partition_key]
            if attempts.fail["raw"] == "after":
                attempts.fail["raw"] = None  # the re-run succeeds
                with store.open("w"):
                    store.write("rel/raw", frame)
                raise RuntimeError("raw: crashed after writing")
            return frame

        @mxd.metaxify
        @dg.asset(
            partitions_def=daily,
            metadata={"metaxy/feature": "rel/clean", "partition_by": "date"},
            io_manager_key="metaxy_io_manager",
            deps=[raw],
        )
        def clean(context: dg.AssetExecutionContext, store: dg.ResourceParam[mx.MetadataStore]) -> Any:
            spec = context.assets_def.specs_by_key[context.asset_key]
            with store.open("w"):
                inc = store.resolve_update(Clean, global_filters=mxd.get_partition_filter(context, spec))
                attempts.increments.append(
                    {name: set(getattr(inc, name)["sample_id"].to_list()) for name in ("new", "stale", "orphaned")}
                )
                mode, attempts.fail["clean"] = attempts.fail["clean"], None
                if mode == "before":
                    raise RuntimeError("clean: crashed before writing")
                changed = pl.concat([inc.new.to_native(), inc.stale.to_native()], how="diagonal_relaxed")
                store.write(Clean, changed.select("sample_id", "date", "metaxy_provenance_by_field"))
                orphans = sorted(inc.orphaned["sample_id"].to_list())
                if orphans:
                    quoted = ", ".join(f"'{s}'" for s in orphans)
                    store.delete(Clean, [f"sample_id IN ({quoted})"], soft=True)
                if mode == "after":
                    raise RuntimeError("clean: crashed after writing")
            return None

        root = str(tmp_path / "store")
        store_resource = mxd.MetaxyStoreResource(root_path=root)
        resources = {"store": store_resource, "metaxy_io_manager": mxd.MetaxyIOManager(store=store_resource)}
        (tmp_path / "dagster").mkdir()
        with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:

            def run(asset: Any, day: str) -> bool:
                result = dg.materialize(
                    [raw, clean], selection=[asset], partition_key=day, resources=resources,
                    instance=instance, raise_on_error=False,
                )  # fmt: skip
                return bool(result.success)

            yield run, attempts, (graph, mx.DeltaMetadataStore(root), raw, clean)


def _rows(day: str, ids: list[int], tag: str = "v1") -> pl.DataFrame:
    names = [f"{day}-{i}" for i in ids]
    provenance = [{"default": f"{tag}-{n}"} for n in names]
    return pl.DataFrame({"sample_id": names, "date": [day] * len(names), "metaxy_provenance_by_field": provenance})


def _live(store: Any, key: str, day: str) -> list[str]:
    frame = store.read(key, filters=[f"date = '{day}'"]).collect().to_native()
    ids = frame["sample_id"].to_list()
    assert len(ids) == len(set(ids)), f"{key} {day}: duplicated samples in the default read: {sorted(ids)}"
    return sorted(ids)


def _history_rows(store: Any, key: str, day: str) -> int:
    frame = store.read(key, filters=[f"date = '{day}'"], with_sample_history=True, include_soft_deleted=True)
    return frame.collect().to_native().height


def test_rerun_of_failed_partition_is_idempotent(setup: Any) -> None:
    run, attempts, (graph, store, raw, clean) = setup
    day1, day2 = DAYS
    ids = lambda day, n: [f"{day}-{i}" for i in n]  # noqa: E731
    empty = {"new": set(), "stale": set(), "orphaned": set()}

    # raw, day 1: the first attempt writes then crashes; the re-run writes the same samples again
    attempts.raw_rows = {day1: _rows(day1, [0, 1, 2, 3, 4]), day2: _rows(day2, [0, 1, 2])}
    attempts.fail["raw"] = "after"
    assert not run(raw, day1)
    assert run(raw, day1)
    assert run(raw, day2)
    with graph.use(), store.open("r"):
        assert _live(store, "rel/raw", day1) == ids(day1, range(5))
        assert _history_rows(store, "rel/raw", day1) == 10  # both attempts' rows kept as history
        assert _live(store, "rel/raw", day2) == ids(day2, range(3))

    # clean, day 1: crash after writing the increment; the re-run has nothing left to do
    attempts.fail["clean"] = "after"
    assert not run(clean, day1)
    assert run(clean, day1)
    assert attempts.increments == [{**empty, "new": set(ids(day1, range(5)))}, empty]
    # clean, day 2: crash before writing; the re-run gets the same increment and writes it
    attempts.increments.clear()
    attempts.fail["clean"] = "before"
    assert not run(clean, day2)
    assert run(clean, day2)
    assert attempts.increments == [{**empty, "new": set(ids(day2, range(3)))}] * 2
    with graph.use(), store.open("r"):
        assert _live(store, "rel/clean", day1) == ids(day1, range(5))
        assert _history_rows(store, "rel/clean", day1) == 5
        assert _live(store, "rel/clean", day2) == ids(day2, range(3))
        assert _history_rows(store, "rel/clean", day2) == 3
        clean_v1 = store.read("rel/clean").collect().to_native()

    # upstream changes on day 1: sample 0 re-computed, 4 deleted, 5 added
    attempts.raw_rows[day1] = pl.concat([_rows(day1, [0], "v2"), _rows(day1, [1, 2, 3, 5])])
    assert run(raw, day1)
    with graph.use(), store.open("w"):
        store.delete("rel/raw", [f"sample_id = '{day1}-4'"], soft=True)
    attempts.increments.clear()
    attempts.fail["clean"] = "after"
    assert not run(clean, day1)
    assert run(clean, day1)
    assert attempts.increments == [
        {"new": {f"{day1}-5"}, "stale": {f"{day1}-0"}, "orphaned": {f"{day1}-4"}},
        empty,
    ]
    with graph.use(), store.open("r"):
        assert _live(store, "rel/clean", day1) == ids(day1, [0, 1, 2, 3, 5])
        assert _live(store, "rel/clean", day2) == ids(day2, range(3))  # other partition untouched
        now = store.read("rel/clean").collect().to_native()
        before = dict(zip(clean_v1["sample_id"], clean_v1["metaxy_data_version"]))
        after = dict(zip(now["sample_id"], now["metaxy_data_version"]))
        assert after[f"{day1}-0"] != before[f"{day1}-0"]
        assert all(after[s] == before[s] for s in ids(day1, [1, 2, 3]) + ids(day2, range(3)))
        # a final re-run (all done) still finds nothing to do
    attempts.increments.clear()
    assert run(clean, day1)
    assert attempts.increments == [empty]
    print("dagster: 11 partition runs (4 failed first attempts), increments verified after each re-run")
