"""Quickstart: a video pipeline with sample-level versioning on Delta Lake, run by Dagster.

Features (versioned tables of per-sample metadata)::

    video/raw  (fields: audio, frames)        <- root asset `raw_videos`
      ├─ audio  -> video/transcript (text)    <- `transcripts`
      │             └─ N:1 by (channel, date) -> channel/daily_stats (words) <- `channel_stats`
      │                                           └─ channel_leaderboard (plain Dagster asset)
      └─ frames -> video/scenes (scenes)      <- `scenes`
    video/labels (field: label)               <- written outside Dagster, observed by `video_labels`

Every Metaxy asset asks the store what changed (``store.resolve_update``) and computes only the
new and stale samples of its daily partition; ``MetaxyIOManager`` appends them to the feature's
Delta table. Bump the ``audio`` code version (``QUICKSTART_AUDIO_CODE_VERSION=2``) and only the
transcripts and the stats built on them are recomputed; the scenes are untouched.

Start the UI from the repository root::

    dg dev -f examples/quickstart/defs.py
"""

import hashlib
import os
from pathlib import Path
from typing import Any

import dagster as dg
import narwhals as nw
import polars as pl
from pydantic import Field

import metaxy_delta as mx
import metaxy_delta.dagster as mxd

HERE = Path(__file__).resolve().parent

# metaxy.toml's local store lives under $METAXY_QUICKSTART_ROOT; relative paths would resolve
# against the working directory, so default it to this example's (git-ignored) .metaxy/ folder.
os.environ.setdefault("METAXY_QUICKSTART_ROOT", str(HERE / ".metaxy" / "store"))
config = mx.init(HERE / "metaxy.toml")

# The version of the speech-to-text code. Bumping it (here through an environment variable, in
# real life by editing the string) changes the `audio` field version and, through field-level
# dependencies, the transcripts' - but not the scenes'.
AUDIO_CODE_VERSION = os.environ.get("QUICKSTART_AUDIO_CODE_VERSION", "1")

# ----------------------------------------------------------------------------------- features


class Video(
    mx.BaseFeature,
    spec=mx.FeatureSpec(
        key="video/raw",
        id_columns=["video_id"],
        fields=[
            mx.FieldSpec(key="audio", code_version=AUDIO_CODE_VERSION),
            mx.FieldSpec(key="frames", code_version="1"),
        ],
    ),
):
    """Uploaded videos: one row per video, with the content hashes of its audio and frames."""

    video_id: str = Field(description="Upload identifier")
    channel: str = Field(description="Channel the video was uploaded to")
    date: str = Field(description="Upload day (the Dagster partition)")
    path: str = Field(description="Where the file is stored")


class Transcript(
    mx.BaseFeature,
    spec=mx.FeatureSpec(
        key="video/transcript",
        id_columns=["video_id"],
        deps=[mx.FeatureDep(feature=Video, select=("channel", "date"))],
        fields=[
            mx.FieldSpec(key="text", deps=[mx.FieldDep(feature=Video, fields=["audio"])]),
        ],
    ),
):
    """Speech-to-text of each video (depends on the `audio` field only)."""

    video_id: str
    channel: str
    date: str
    text: str = Field(description="Transcribed speech")
    words: int = Field(description="Number of words in the transcript")


class Scenes(
    mx.BaseFeature,
    spec=mx.FeatureSpec(
        key="video/scenes",
        id_columns=["video_id"],
        deps=[mx.FeatureDep(feature=Video, select=("channel", "date"))],
        fields=[
            mx.FieldSpec(key="scenes", deps=[mx.FieldDep(feature=Video, fields=["frames"])]),
        ],
    ),
):
    """Scene cuts detected in the frames (depends on the `frames` field only)."""

    video_id: str
    channel: str
    date: str
    scene_count: int = Field(description="Number of detected scenes")


class ChannelDailyStats(
    mx.BaseFeature,
    spec=mx.FeatureSpec(
        key="channel/daily_stats",
        id_columns=["channel", "date"],
        deps=[
            mx.FeatureDep(
                feature=Transcript,
                select=("words",),
                lineage=mx.LineageRelationship.aggregation(on=["channel", "date"]),
            )
        ],
        fields=[
            mx.FieldSpec(key="words", deps=[mx.FieldDep(feature=Transcript, fields=["text"])]),
        ],
    ),
):
    """Per channel and day: how many videos were transcribed and how many words they hold."""

    channel: str
    date: str
    videos: int = Field(description="Transcribed videos")
    words: int = Field(description="Words over all transcripts")


class Labels(
    mx.BaseFeature,
    spec=mx.FeatureSpec(key="video/labels", id_columns=["video_id"], fields=["label"]),
):
    """Human labels of the videos, written by the annotation tool (outside Dagster)."""

    video_id: str
    label: str = Field(description="Content category chosen by an annotator")


# ------------------------------------------------------------------------------------- inputs

CHANNELS = ("cooking", "travel")
VIDEOS_PER_CHANNEL_PER_DAY = 2
daily = dg.DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-01-04")


def _digest(*parts: str) -> str:
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def list_uploads(day: str) -> pl.DataFrame:
    """The videos uploaded on ``day``, with content hashes of their audio and frames.

    The hashes are the root samples' provenance: they change only when the content changes.
    """
    records = [
        {"video_id": f"{channel}-{day}-{n}", "channel": channel, "date": day}
        for channel in CHANNELS
        for n in range(VIDEOS_PER_CHANNEL_PER_DAY)
    ]
    frame = pl.DataFrame(records)
    return frame.with_columns(
        path=pl.format("videos/{}/{}.mp4", pl.col("channel"), pl.col("video_id")),
        metaxy_provenance_by_field=pl.struct(
            audio=pl.col("video_id").map_elements(lambda v: _digest(v, "audio"), return_dtype=pl.String),
            frames=pl.col("video_id").map_elements(lambda v: _digest(v, "frames"), return_dtype=pl.String),
        ),
    )


def partition_filter(context: dg.AssetExecutionContext) -> list[Any]:
    """Filters restricting reads to the run's partition (``date = '<partition key>'``)."""
    return mxd.get_partition_filter(context, context.assets_def.specs_by_key[context.asset_key])


def to_compute(context: dg.AssetExecutionContext, increment: mx.Increment) -> pl.DataFrame:
    """The samples to (re)compute: new + stale (orphans are reported, not deleted)."""
    new, stale = increment.new.to_native(), increment.stale.to_native()
    context.log.info(
        f"{context.asset_key.to_user_string()} [{context.partition_key}]: {len(new)} new, "
        f"{len(stale)} stale, {len(increment.orphaned)} orphaned"
    )
    context.add_output_metadata(
        {"increment/new": len(new), "increment/stale": len(stale), "increment/orphaned": len(increment.orphaned)}
    )
    return pl.concat([new, stale], how="diagonal_relaxed")


# ------------------------------------------------------------------------------------- assets

METAXY_ASSET = {"partitions_def": daily, "io_manager_key": "metaxy_io_manager", "group_name": "video"}


@mxd.metaxify
@dg.asset(metadata={"metaxy/feature": "video/raw", "partition_by": "date"}, **METAXY_ASSET)
def raw_videos(context: dg.AssetExecutionContext, store: dg.ResourceParam[mx.MetadataStore]) -> Any:
    uploads = list_uploads(context.partition_key)
    with store.open("r"):
        increment = store.resolve_update(Video, samples=uploads, global_filters=partition_filter(context))
    return to_compute(context, increment)


@mxd.metaxify
@dg.asset(metadata={"metaxy/feature": "video/transcript", "partition_by": "date"}, **METAXY_ASSET)
def transcripts(context: dg.AssetExecutionContext, store: dg.ResourceParam[mx.MetadataStore]) -> Any:
    with store.open("r"):
        increment = store.resolve_update(Transcript, global_filters=partition_filter(context))
    todo = to_compute(context, increment)
    # "speech-to-text": deterministic text whose length depends on the decoder version
    words = pl.col("video_id").map_elements(
        lambda v: 20 + int(_digest(v, AUDIO_CODE_VERSION), 16) % 80, return_dtype=pl.Int64
    )
    return todo.with_columns(
        text=pl.format("transcript of {} (decoder v{})", pl.col("video_id"), pl.lit(AUDIO_CODE_VERSION)),
        words=words,
    )


@mxd.metaxify
@dg.asset(metadata={"metaxy/feature": "video/scenes", "partition_by": "date"}, **METAXY_ASSET)
def scenes(context: dg.AssetExecutionContext, store: dg.ResourceParam[mx.MetadataStore]) -> Any:
    with store.open("r"):
        increment = store.resolve_update(Scenes, global_filters=partition_filter(context))
    todo = to_compute(context, increment)
    scene_count = pl.col("video_id").map_elements(lambda v: 1 + int(_digest(v), 16) % 12, return_dtype=pl.Int64)
    return todo.with_columns(scene_count=scene_count)


@mxd.metaxify
@dg.asset(metadata={"metaxy/feature": "channel/daily_stats", "partition_by": "date"}, **METAXY_ASSET)
def channel_stats(context: dg.AssetExecutionContext, store: dg.ResourceParam[mx.MetadataStore]) -> Any:
    """Aggregation: one row per (channel, date) group whose transcripts changed."""
    with store.open("r"):
        increment = store.resolve_update(ChannelDailyStats, global_filters=partition_filter(context))
        todo = to_compute(context, increment)
        source = store.read(Transcript, filters=partition_filter(context)).collect().to_native()
    stats = source.group_by("channel", "date").agg(videos=pl.len().cast(pl.Int64), words=pl.col("words").sum())
    keep = ["channel", "date", *(c for c in todo.columns if c.startswith("metaxy_"))]
    return todo.select(keep).join(stats, on=["channel", "date"], how="left")


@dg.asset(ins={"stats": dg.AssetIn(key=["channel", "daily_stats"])}, group_name="reports", kinds={"polars"})
def channel_leaderboard(context: dg.AssetExecutionContext, stats: nw.LazyFrame) -> pl.DataFrame:
    """Words per channel over every day (a plain Dagster asset reading a Metaxy feature)."""
    board = (
        stats.to_native()
        .group_by("channel")
        .agg(days=pl.len(), videos=pl.col("videos").sum(), words=pl.col("words").sum())
        .sort("words", descending=True)
        .collect()
    )
    context.add_output_metadata({"leaderboard": dg.MetadataValue.md(_markdown(board))})
    return board


@mxd.observable_metaxy_asset(key="video/labels", feature="video/labels", group_name="annotations")
def video_labels(context: Any, store: mx.MetadataStore, lazy_df: nw.LazyFrame) -> dict[str, Any]:
    """Labels written by the annotation tool; observations track their row count and version."""
    counts = lazy_df.group_by("label").agg(nw.len().alias("n")).sort("label").collect()
    return {"labels": dg.MetadataValue.json(dict(zip(counts["label"].to_list(), counts["n"].to_list())))}


def _markdown(frame: pl.DataFrame) -> str:
    header = "| " + " | ".join(frame.columns) + " |\n|" + "---|" * len(frame.columns)
    rows = ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.iter_rows()]
    return "\n".join([header, *rows])


# --------------------------------------------------------------------------------------- jobs

METAXY_ASSETS = [raw_videos, transcripts, scenes, channel_stats]

video_pipeline = dg.define_asset_job(
    "video_pipeline",
    selection=dg.AssetSelection.assets(*METAXY_ASSETS),
    description="Materialize one day: uploads, transcripts, scenes and channel stats (only what changed).",
)
report_job = dg.define_asset_job("channel_report", selection=dg.AssetSelection.assets(channel_leaderboard))
observe_labels = dg.define_asset_job("observe_labels", selection=dg.AssetSelection.assets(video_labels.key))


@dg.job(description="Delete rows of one feature matching SQL filters (soft by default).")
def cleanup_job() -> None:
    mxd.delete_metadata()


maintenance_job = mxd.build_maintenance_job("metaxy_maintenance", retention_hours=168)

# ------------------------------------------------------------------------------- definitions

store = mxd.MetaxyStoreFromConfigResource()  # the default store of metaxy.toml ($METAXY_STORE)

defs = dg.Definitions(
    assets=[*METAXY_ASSETS, channel_leaderboard, video_labels],
    jobs=[video_pipeline, report_job, observe_labels, cleanup_job, maintenance_job],
    schedules=[
        dg.build_schedule_from_partitioned_job(video_pipeline, hour_of_day=1),
        dg.ScheduleDefinition(job=maintenance_job, cron_schedule="0 3 * * 0"),
    ],
    resources={
        "store": store,  # assets and the observable asset
        "metaxy_store": store,  # delete and maintenance ops
        "metaxy_io_manager": mxd.MetaxyIOManager(store=store),
    },
)
