"""ListenBrainz listen dumps: JSON lines, one listen (one play) per line, so implicit feedback.

    {"user_name": "rob", "listened_at": 1700000000, "recording_msid": "...",
     "track_metadata": {"artist_name": "Portishead", "track_name": "Roads", "release_name": "Dummy",
                        "additional_info": {"recording_mbid": "...", "recording_msid": "..."},
                        "mbid_mapping": {"recording_mbid": "..."}}}

Files: `*.listens` (the full dumps: listens/<year>/<month>.listens), or `*.jsonl` / `*.json` whose
first line is such a listen (a user's export); the folder holding them all is searched recursively.

A song is its MusicBrainz recording MBID when ListenBrainz knows it (mbid_mapping first, then
additional_info), else its MessyBrainz ID (recording_msid, top-level or in additional_info), else
"artist - track" in lower case; the same recording is then one song however it was submitted.
A listen without a track name has no song (missing_field); a line that is not JSON is kept whole
(malformed_line). prepare sums a user's listens of a song into one play count.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from musicrec import columns as C
from musicrec.datasets.base import CORRUPT, RAW_INTERACTION_COLUMNS, DatasetFormat, is_hidden

DUMP_SUFFIX = ".listens"
LINES_SUFFIXES = (".jsonl", ".json")
PEEK_BYTES = 64 * 1024  # a first line longer than this is not a listen (a whole JSON document is)
ONE_PLAY = "1"

_METADATA = (
    "artist_name string, track_name string, release_name string, "
    "additional_info struct<recording_mbid string, recording_msid string>, mbid_mapping struct<recording_mbid string>"
)
LISTEN_SCHEMA = (
    f"user_name string, listened_at string, recording_msid string, track_metadata struct<{_METADATA}>, {CORRUPT} string"
)


def _is_listen_file(path: Path) -> bool:
    if path.suffix == DUMP_SUFFIX:
        return True
    return path.suffix in LINES_SUFFIXES and _first_line_is_a_listen(path)


def _first_line_is_a_listen(path: Path) -> bool:
    """True when the first non-blank line is a JSON object with a listen's keys: other JSON files
    (any dataset's metadata) must not be taken for listens."""
    with open(path, "rb") as handle:
        for line in iter(lambda: handle.readline(PEEK_BYTES), b""):
            if line.strip():
                try:
                    first = json.loads(line)
                except ValueError:
                    return False
                return isinstance(first, dict) and {"listened_at", "track_metadata"} <= first.keys()
    return False


def listen_files(folder: Path) -> list[Path]:
    """Every listen file under `folder`, sorted, outside hidden and __MACOSX folders."""
    return sorted(
        path for path in folder.rglob("*") if path.is_file() and not is_hidden(path, folder) and _is_listen_file(path)
    )


def _locate(folder: Path, options: dict) -> Path | None:
    found = listen_files(folder)
    return Path(os.path.commonpath([path.parent for path in found])) if found else None


def _read_listens(spark, base: Path):
    return (
        spark.read.schema(LISTEN_SCHEMA)
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", CORRUPT)
        .json([str(path) for path in listen_files(base)])
    )


def _given(column):
    """The trimmed value, or null when it is missing or blank."""
    from pyspark.sql import functions as F

    return F.when(F.trim(column) != "", F.trim(column))


def song_id():
    """MBID, else MSID, else "artist - track" in lower case; null without a track name."""
    from pyspark.sql import functions as F

    meta = "track_metadata"
    artist_track = F.concat_ws(
        " - ", F.lower(F.coalesce(_given(f"{meta}.artist_name"), F.lit(""))), F.lower(_given(f"{meta}.track_name"))
    )
    best = F.coalesce(
        _given(f"{meta}.mbid_mapping.recording_mbid"),
        _given(f"{meta}.additional_info.recording_mbid"),
        _given("recording_msid"),
        _given(f"{meta}.additional_info.recording_msid"),
        artist_track,
    )
    return F.when(_given(f"{meta}.track_name").isNotNull(), best)


def _interactions(spark, base: Path, options: dict):
    from pyspark.sql import functions as F

    return _read_listens(spark, base).select(
        F.col("user_name").alias(C.USER_ID),
        song_id().alias(C.ITEM_ID),
        F.lit(ONE_PLAY).alias(C.RATING),
        F.col("listened_at").alias(C.TIMESTAMP),
        F.col(CORRUPT).alias(C.RAW_LINE),
    ).select(*RAW_INTERACTION_COLUMNS)


def _items(spark, base: Path, options: dict):
    """One row per listen; prepare.clean_items keeps one title and artist per song."""
    from pyspark.sql import functions as F

    return (
        _read_listens(spark, base)
        .filter(F.col(CORRUPT).isNull())
        .select(
            song_id().alias(C.ITEM_ID),
            F.col("track_metadata.track_name").alias(C.TITLE),
            F.col("track_metadata.artist_name").alias(C.ARTIST),
        )
    )


LISTENBRAINZ = DatasetFormat("listenbrainz", "implicit", None, _locate, _interactions, _items)
