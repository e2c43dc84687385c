"""MovieLens CSV layout (ml-latest-small, ml-latest, ml-25m, ml-32m) and the embedded sample.

ratings.csv: userId,movieId,rating,timestamp. Items: movies.csv (movieId,title,genres) or, in
the embedded music sample, songs.csv (songId,title,artist).
"""

from __future__ import annotations

from pathlib import Path

from musicrec import columns as C
from musicrec.datasets.base import DatasetFormat, as_raw_interactions, find_file, read_delimited

ITEM_FILES = ("songs.csv", "movies.csv")


def _locate(folder: Path) -> Path | None:
    ratings = find_file(folder, ["ratings.csv"])
    if ratings is None or find_file(ratings.parent, ITEM_FILES, max_depth=0) is None:
        return None
    return ratings.parent


def _read_interactions(spark, base: Path):
    frame = read_delimited(spark, base / "ratings.csv", [C.USER_ID, C.ITEM_ID, C.RATING, C.TIMESTAMP], ",", header=True)
    return as_raw_interactions(frame)


def _read_items(spark, base: Path):
    from pyspark.sql import functions as F

    items_file = find_file(base, ITEM_FILES, max_depth=0)
    third = C.ARTIST if items_file.name == "songs.csv" else "genres"
    frame = read_delimited(spark, items_file, [C.ITEM_ID, C.TITLE, third], ",", header=True, multiline=True)
    artist = F.col(C.ARTIST) if third == C.ARTIST else F.lit(None).cast("string")
    return frame.select(C.ITEM_ID, C.TITLE, artist.alias(C.ARTIST))


MOVIELENS_CSV = DatasetFormat(
    name="movielens-csv",
    feedback="explicit",
    rating_range=(0.5, 5.0),
    locate=_locate,
    read_interactions=_read_interactions,
    read_items=_read_items,
)
