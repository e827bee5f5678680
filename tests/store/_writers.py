"""Worker functions for multi-process store tests (module-level so ``spawn`` can import them)."""

from __future__ import annotations

import polars as pl

import metaxy_delta as mx


def define_events() -> mx.FeatureGraph:
    graph = mx.FeatureGraph()
    with graph.use():

        class Event(mx.BaseFeature, spec=mx.FeatureSpec(key="events", id_columns=["writer", "seq"], fields=["payload"])):
            writer: int
            seq: int

    return graph


def frame(writer: int, seqs: list[int]) -> pl.DataFrame:
    return pl.DataFrame({
        "writer": [writer] * len(seqs),
        "seq": seqs,
        "metaxy_provenance_by_field": [{"payload": f"{writer}-{s}"} for s in seqs],
    })


def append_many(root: str, options: dict[str, str] | None, writer: int, count: int) -> None:
    """Append ``count`` one-row writes (one Delta commit each) as writer ``writer``."""
    with define_events().use():
        store = mx.DeltaMetadataStore(root, storage_options=options)
        with store.open("w"):
            for seq in range(count):
                store.write("events", frame(writer, [seq]))
