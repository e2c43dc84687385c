"""Last.fm listening data: play counts, so implicit feedback.

  lastfm-hetrec  hetrec2011-lastfm-2k: user_artists.dat (userID, artistID, weight = plays; tab,
                 header) + artists.dat (id, name, url, pictureURL); files may sit at the root
  lastfm-360k    usersha1-artmbid-artname-plays.tsv: SHA-1 user, MusicBrainz artist ID (may be
                 empty), artist name, plays; no header. Artists without an MBID are keyed by name.
"""

from __future__ import annotations

from pathlib import Path

from musicrec import columns as C
from musicrec.datasets.base import CORRUPT, DatasetFormat, as_raw_interactions, find_file, read_delimited

PLAYS_360K = "usersha1-artmbid-artname-plays.tsv"


def _hetrec_locate(folder: Path, options: dict) -> Path | None:
    plays = find_file(folder, ["user_artists.dat"])
    if plays is None or not (plays.parent / "artists.dat").is_file():
        return None
    return plays.parent


def _hetrec_interactions(spark, base: Path, options: dict):
    frame = read_delimited(spark, base / "user_artists.dat", [C.USER_ID, C.ITEM_ID, C.RATING], "\t", header=True)
    return as_raw_interactions(frame)


def _hetrec_items(spark, base: Path, options: dict):
    from pyspark.sql import functions as F

    frame = read_delimited(spark, base / "artists.dat", [C.ITEM_ID, C.TITLE, "url", "picture_url"], "\t", header=True)
    return frame.select(C.ITEM_ID, C.TITLE, F.col(C.TITLE).alias(C.ARTIST))


def _360k_locate(folder: Path, options: dict) -> Path | None:
    plays = find_file(folder, [PLAYS_360K])
    return plays.parent if plays else None


def _360k_read(spark, base: Path):
    from pyspark.sql import functions as F

    frame = read_delimited(spark, base / PLAYS_360K, [C.USER_ID, "mbid", "artist_name", C.RATING], "\t", header=False)
    item = F.when(F.trim("mbid") != "", F.trim("mbid")).otherwise(F.concat(F.lit("name:"), F.lower(F.trim("artist_name"))))
    return frame.withColumn(C.ITEM_ID, F.when(F.col("artist_name").isNotNull(), item))


def _360k_interactions(spark, base: Path, options: dict):
    return as_raw_interactions(_360k_read(spark, base))


def _360k_items(spark, base: Path, options: dict):
    from pyspark.sql import functions as F

    frame = _360k_read(spark, base).filter(F.col(CORRUPT).isNull() & F.col(C.ITEM_ID).isNotNull())
    # An artist keyed by name may be spelled several ways ("die Ärzte", "Die Ärzte"): the
    # lexicographically smallest spelling, the same on every run.
    return frame.groupBy(C.ITEM_ID).agg(F.min("artist_name").alias(C.TITLE)).select(
        C.ITEM_ID, C.TITLE, F.col(C.TITLE).alias(C.ARTIST)
    )


LASTFM_HETREC = DatasetFormat("lastfm-hetrec", "implicit", None, _hetrec_locate, _hetrec_interactions, _hetrec_items)
LASTFM_360K = DatasetFormat("lastfm-360k", "implicit", None, _360k_locate, _360k_interactions, _360k_items)
