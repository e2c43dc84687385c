"""Preprocess's ID tables (user_id, user_index and song_id, item_index) and the dataset's own IDs
put back on the frames that carry only the indices.

The interactions preprocess writes and the splits train writes keep the indices, values and
timestamps, not the string IDs, which almost nothing reads: at 25M play counts the preprocess step
alone took 57.9-58.1 s against 61.7-64.7 s with them, its files 265 MB against 401 MB. What needs
them (the splits' draw, which must not change with the indices; the champion's comparison, as the
champion has its own indices) joins them back here from the small tables, broadcast: 162k users
and 59k songs at 25M plays. (Train's split took as long either way: the join costs what not
writing the IDs saves.)
"""

from __future__ import annotations

from typing import Any, NamedTuple

from musicrec import columns as C
from musicrec.errors import PipelineError


# Their schemas, as preprocess writes them: a parquet read without a schema runs a Spark job to
# infer it, and train, evaluate, recommend and the champion's comparison each read these tables.
USER_IDS_SCHEMA = f"{C.USER_ID} string, {C.USER_INDEX} int"
SONG_IDS_SCHEMA = f"{C.ITEM_ID} string, {C.ITEM_INDEX} int"


class IdTables(NamedTuple):
    users: Any  # DataFrame user_id, user_index: one row per user
    songs: Any  # DataFrame song_id, item_index: one row per song


def read_id_tables(spark, user_ids_path: str | None, song_ids_path: str | None) -> IdTables | None:
    """The ID tables at preprocess's user_ids_path and song_ids_path; None when either is unset
    (a run whose preprocess wrote none: its interactions still have the IDs)."""
    if not (user_ids_path and song_ids_path):
        return None
    return IdTables(
        spark.read.schema(USER_IDS_SCHEMA).parquet(str(user_ids_path)),
        spark.read.schema(SONG_IDS_SCHEMA).parquet(str(song_ids_path)),
    )


def required_id_tables(spark, user_ids_path: str | None, song_ids_path: str | None) -> IdTables:
    """`read_id_tables`, for a step that cannot work without them (train, recommend)."""
    ids = read_id_tables(spark, user_ids_path, song_ids_path)
    if ids is None:
        raise PipelineError(
            "preprocess gave no user_ids_path / song_ids_path (this run's preprocess ran before the pipeline "
            "wrote ID tables): clear the run from preprocess on, so that preprocess writes them"
        )
    return ids


def has_ids(frame) -> bool:
    return C.USER_ID in frame.columns and C.ITEM_ID in frame.columns


def with_ids(frame, ids: IdTables | None):
    """`frame` (user_index, item_index, ...) with user_id and song_id in front, from `ids`. A frame
    that has them already (interactions written before the IDs were dropped, or built by hand) is
    returned as it is. Every index of `frame` must be in the tables: preprocess wrote both."""
    from pyspark.sql import functions as F

    if has_ids(frame):
        return frame
    if ids is None:
        raise PipelineError(
            "these interactions carry only user and song indices, and no ID tables were given to map them "
            "back (preprocess's user_ids_path and song_ids_path): clear the run from preprocess on"
        )
    users = F.broadcast(ids.users.select(C.USER_ID, C.USER_INDEX))
    songs = F.broadcast(ids.songs.select(C.ITEM_ID, C.ITEM_INDEX))
    return frame.join(users, C.USER_INDEX).join(songs, C.ITEM_INDEX).select(C.USER_ID, C.ITEM_ID, *frame.columns)


def without_ids(frame):
    """`frame` without user_id and song_id: what preprocess and train write."""
    return frame.drop(C.USER_ID, C.ITEM_ID)
