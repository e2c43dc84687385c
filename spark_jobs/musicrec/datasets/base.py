"""What a dataset adapter is, and the one reader of delimited text they all use."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from musicrec import columns as C

CORRUPT = "_corrupt_record"

# Raw interactions: every column a string, as it stood in the file; `raw` holds the line of a
# row Spark could not split into the declared fields.
RAW_INTERACTION_COLUMNS = (C.USER_ID, C.ITEM_ID, C.RATING, C.TIMESTAMP, C.RAW_LINE)


@dataclass(frozen=True)
class DatasetFormat:
    """One dataset layout. `options` is the user's `column_mapping` (generic format only)."""

    name: str
    feedback: str  # "explicit" (ratings) or "implicit" (play counts)
    rating_range: tuple[float, float] | None  # the valid scale of explicit ratings
    locate: Callable[[Path, dict], Path | None]  # folder holding the files, or None if not this format
    read_interactions: Callable  # (spark, base folder, options) -> DataFrame of RAW_INTERACTION_COLUMNS
    read_items: Callable  # (spark, base folder, options) -> DataFrame of song_id, title, artist (strings)


def find_file(folder: Path, names: Sequence[str], max_depth: int = 2) -> Path | None:
    """The first of `names` found at the top of `folder` or up to `max_depth` folders below."""
    for depth in range(max_depth + 1):
        pattern = "/".join(["*"] * depth + ["{name}"])
        for name in names:
            hits = sorted(p for p in folder.glob(pattern.format(name=name)) if p.is_file() and not is_hidden(p, folder))
            if hits:
                return hits[0]
    return None


def is_hidden(path: Path, root: Path) -> bool:
    """Inside a hidden folder (.git) or a zip's __MACOSX resource forks: never dataset files."""
    return any(part.startswith((".", "__MACOSX")) for part in path.relative_to(root).parts)


def read_delimited(
    spark,
    path: Path,
    names: Sequence[str],
    sep: str,
    header: bool,
    encoding: str = "UTF-8",
    multiline: bool = False,
):
    """Read a delimited text file as all-string columns `names`, keeping unsplittable lines.

    Rows with too few or too many fields land in column CORRUPT with their original text.
    """
    from pyspark.sql.types import StringType, StructField, StructType

    schema = StructType([StructField(n, StringType()) for n in names] + [StructField(CORRUPT, StringType())])
    return (
        spark.read.schema(schema)
        .option("header", header)
        .option("sep", sep)
        .option("encoding", encoding)
        .option("quote", '"' if sep == "," else "\u0000")
        .option("escape", '"')
        .option("multiLine", multiline)
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", CORRUPT)
        .option("ignoreLeadingWhiteSpace", True)
        .option("ignoreTrailingWhiteSpace", True)
        .csv(str(path))
    )


def as_raw_interactions(frame):
    """Shape a `read_delimited` frame (with user/item/rating/timestamp columns) for prepare."""
    from pyspark.sql import functions as F

    if C.TIMESTAMP not in frame.columns:
        frame = frame.withColumn(C.TIMESTAMP, F.lit(None).cast("string"))
    return frame.withColumnRenamed(CORRUPT, C.RAW_LINE).select(*RAW_INTERACTION_COLUMNS)
