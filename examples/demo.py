"""Demo: define a small feature graph and print its versions and topological order.

Run with ``make demo``. (The Dagster quickstart replaces this with the full pipeline.)
"""

from __future__ import annotations

import metaxy_delta as mx


def build_graph() -> mx.FeatureGraph:
    graph = mx.FeatureGraph()
    with graph.use():

        class RawVideo(mx.BaseFeature, spec=mx.FeatureSpec(key="video/raw", id_columns=["video_id"], fields=["audio", "frames"])):
            """Raw video files."""

            video_id: str
            path: str

        class Transcript(mx.BaseFeature, spec=mx.FeatureSpec(key="video/transcript", id_columns=["video_id"], deps=[RawVideo], fields=["audio"])):
            """Speech-to-text of the audio track (depends on `audio` only)."""

            video_id: str
            text: str

        class Summary(mx.BaseFeature, spec=mx.FeatureSpec(key="video/summary", id_columns=["video_id"], deps=[RawVideo, Transcript], fields=[mx.FieldSpec(key="default", code_version="2")])):
            """Summary from frames and transcript."""

            video_id: str

    return graph


def main() -> None:
    graph = build_graph()
    order = graph.topological_sort_features()
    print("topological order:", " -> ".join(k.to_string() for k in order))
    for key in order:
        print(f"\n{key}  feature version {graph.get_feature_version(key)}")
        for field, version in graph.get_feature_version_by_field(key).items():
            print(f"  field {field:<10} {version}")


if __name__ == "__main__":
    main()
