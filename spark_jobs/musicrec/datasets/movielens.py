"""The MovieLens layouts, and the embedded sample (MovieLens CSV with songs instead of movies).

  movielens-csv  ml-latest-small, ml-latest, ml-25m, ml-32m: ratings.csv + movies.csv (or songs.csv)
  movielens-dat  ml-1m, ml-10m: ratings.dat + movies.dat, `::`-separated, Latin-1
  movielens-100k ml-100k: u.data (tab-separated) + u.item (`|`-separated), Latin-1
"""

from __future__ import annotations

from pathlib import Path

from musicrec import columns as C
from musicrec.datasets.base import CORRUPT, DatasetFormat, as_raw_interactions, find_file, read_delimited

RATING_FIELDS = [C.USER_ID, C.ITEM_ID, C.RATING, C.TIMESTAMP]
CSV_ITEM_FILES = ("songs.csv", "movies.csv")
LATIN_1 = "ISO-8859-1"
# u.item: id | title | release date | video release date | IMDb URL | 19 genre flags
U_ITEM_FIELDS = [C.ITEM_ID, C.TITLE, "released", "video_released", "imdb_url"] + [f"genre_{i}" for i in range(19)]


def _locator(ratings_file: str, item_files: tuple[str, ...]):
    def locate(folder: Path, options: dict) -> Path | None:
        ratings = find_file(folder, [ratings_file])
        if ratings is None or find_file(ratings.parent, item_files, max_depth=0) is None:
            return None
        return ratings.parent

    return locate


def _no_artist(frame):
    from pyspark.sql import functions as F

    return frame.select(C.ITEM_ID, C.TITLE, F.lit(None).cast("string").alias(C.ARTIST))


def _csv_interactions(spark, base: Path, options: dict):
    return as_raw_interactions(read_delimited(spark, base / "ratings.csv", RATING_FIELDS, ",", header=True))


def _csv_items(spark, base: Path, options: dict):
    items_file = find_file(base, CSV_ITEM_FILES, max_depth=0)
    if items_file.name == "songs.csv":
        return read_delimited(spark, items_file, [C.ITEM_ID, C.TITLE, C.ARTIST], ",", header=True, multiline=True).drop(CORRUPT)
    return _no_artist(read_delimited(spark, items_file, [C.ITEM_ID, C.TITLE, "genres"], ",", header=True, multiline=True))


def _dat_interactions(spark, base: Path, options: dict):
    frame = read_delimited(spark, base / "ratings.dat", RATING_FIELDS, "::", header=False, encoding=LATIN_1)
    return as_raw_interactions(frame)


def _dat_items(spark, base: Path, options: dict):
    return _no_artist(read_delimited(spark, base / "movies.dat", [C.ITEM_ID, C.TITLE, "genres"], "::", header=False, encoding=LATIN_1))


def _100k_interactions(spark, base: Path, options: dict):
    return as_raw_interactions(read_delimited(spark, base / "u.data", RATING_FIELDS, "\t", header=False))


def _100k_items(spark, base: Path, options: dict):
    return _no_artist(read_delimited(spark, base / "u.item", U_ITEM_FIELDS, "|", header=False, encoding=LATIN_1))


MOVIELENS_CSV = DatasetFormat("movielens-csv", "explicit", (0.5, 5.0), _locator("ratings.csv", CSV_ITEM_FILES), _csv_interactions, _csv_items)
MOVIELENS_DAT = DatasetFormat("movielens-dat", "explicit", (0.5, 5.0), _locator("ratings.dat", ("movies.dat",)), _dat_interactions, _dat_items)
MOVIELENS_100K = DatasetFormat("movielens-100k", "explicit", (1.0, 5.0), _locator("u.data", ("u.item",)), _100k_interactions, _100k_items)
