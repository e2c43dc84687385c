"""Validate raw interactions, count and keep every rejected row with its reason, index the IDs.

Rules, in order (a row gets the first reason that applies):
  malformed_line       the line does not split into the declared fields
  missing_field        user, song or value is empty
  undecodable_text     user or song ID holds text that did not decode (U+FFFD)
  non_numeric_value    value or timestamp is not a finite number
  rating_out_of_range  explicit rating outside the dataset's scale
  non_positive_count   implicit play count <= 0
  duplicate            the same user and song again: the latest by timestamp is kept (without
                       timestamps, or on equal ones: the highest value)
  unknown_song         the song has no title in the items file
An ID listed twice in the items file keeps its lexicographically smallest title.
Users with a single interaction are kept (ALS learns them; the random split may move their only
row to the test set, and then they are dropped as cold-start users at evaluation). Songs that
nobody played are kept in the items table but can never be recommended: ALS has no factors for them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from musicrec import columns as C
from musicrec.errors import PipelineError

REASON = C.REJECT_REASON
MIN_ROWS = 10  # fewer usable rows than this cannot be split, trained and evaluated
UNDECODABLE = "\ufffd"


@dataclass
class Prepared:
    interactions: object  # DataFrame: user_id, song_id, user_index, item_index, rating, timestamp
    items: object  # DataFrame: song_id, title, artist
    rejects: object  # DataFrame: raw fields + reason
    rows_read: int
    rows_kept: int
    rejected_by_reason: dict[str, int] = field(default_factory=dict)

    @property
    def rows_rejected(self) -> int:
        return sum(self.rejected_by_reason.values())


def clean_items(raw_items):
    """Items with an ID and a non-empty title, one row per ID.

    An ID listed twice keeps its lexicographically smallest title (then artist): the same choice
    on every run, whatever the order Spark reads the file in.
    """
    from pyspark.sql import functions as F

    items = raw_items.select(
        F.trim(C.ITEM_ID).alias(C.ITEM_ID), F.col(C.TITLE), F.trim(C.ARTIST).alias(C.ARTIST)
    ).filter(F.col(C.ITEM_ID).isNotNull() & (F.col(C.ITEM_ID) != "") & (F.trim(C.TITLE) != ""))
    first = F.min(F.struct(C.TITLE, C.ARTIST)).alias("_first")
    return items.groupBy(C.ITEM_ID).agg(first).select(C.ITEM_ID, f"_first.{C.TITLE}", f"_first.{C.ARTIST}")


def label_rows(raw, items, feedback: str, rating_range: tuple[float, float] | None):
    """Return `raw` with typed columns and a `reason` column: null for a row to keep."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    value = F.expr("try_cast(rating_text AS DOUBLE)")
    stamp = F.expr("try_cast(timestamp_text AS BIGINT)")
    typed = raw.select(
        F.trim(C.USER_ID).alias(C.USER_ID),
        F.trim(C.ITEM_ID).alias(C.ITEM_ID),
        F.trim(C.RATING).alias("rating_text"),
        F.trim(C.TIMESTAMP).alias("timestamp_text"),
        C.RAW_LINE,
    ).select("*", value.alias(C.RATING), stamp.alias(C.TIMESTAMP))

    def empty(name):
        return F.col(name).isNull() | (F.col(name) == "")

    out_of_range = F.lit(False)
    if feedback == "explicit" and rating_range:
        low, high = rating_range
        out_of_range = (F.col(C.RATING) < low) | (F.col(C.RATING) > high)
    non_positive = (F.col(C.RATING) <= 0) if feedback == "implicit" else F.lit(False)
    first_reason = (
        F.when(F.col(C.RAW_LINE).isNotNull(), "malformed_line")
        .when(empty(C.USER_ID) | empty(C.ITEM_ID) | empty("rating_text"), "missing_field")
        .when(F.col(C.USER_ID).contains(UNDECODABLE) | F.col(C.ITEM_ID).contains(UNDECODABLE), "undecodable_text")
        .when(F.col(C.RATING).isNull() | F.isnan(C.RATING) | (F.abs(C.RATING) == float("inf")), "non_numeric_value")
        .when(~empty("timestamp_text") & F.col(C.TIMESTAMP).isNull(), "non_numeric_value")
        .when(out_of_range, "rating_out_of_range")
        .when(non_positive, "non_positive_count")
    )
    checked = typed.withColumn(REASON, first_reason)

    latest_first = Window.partitionBy(C.USER_ID, C.ITEM_ID).orderBy(
        F.col(C.TIMESTAMP).desc_nulls_last(), F.col(C.RATING).desc()
    )
    known = items.select(C.ITEM_ID, F.lit(True).alias("_known"))
    passed = (
        checked.filter(F.col(REASON).isNull())
        .withColumn("_order", F.row_number().over(latest_first))
        .join(known, C.ITEM_ID, "left")
        .withColumn(REASON, F.when(F.col("_order") > 1, "duplicate").when(F.col("_known").isNull(), "unknown_song"))
        .drop("_order", "_known")
    )
    return checked.filter(F.col(REASON).isNotNull()).unionByName(passed)


def add_indices(interactions):
    """Dense integer user and song indices for ALS (most active first), beside the original IDs.

    Returns (indexed frame, number of users, number of songs).
    """
    from pyspark.ml.feature import StringIndexer
    from pyspark.sql import functions as F

    indexer = StringIndexer(
        inputCols=[C.USER_ID, C.ITEM_ID], outputCols=["_u", "_i"], stringOrderType="frequencyDesc"
    )
    fitted = indexer.fit(interactions)
    users, songs = (len(labels) for labels in fitted.labelsArray)
    indexed = fitted.transform(interactions)
    return indexed.select(
        C.USER_ID,
        C.ITEM_ID,
        F.col("_u").cast("int").alias(C.USER_INDEX),
        F.col("_i").cast("int").alias(C.ITEM_INDEX),
        C.RATING,
        C.TIMESTAMP,
    ), users, songs


def prepare(raw, raw_items, feedback: str, rating_range) -> Prepared:
    """Label every row, count rejects by reason; `interactions` are the kept rows, not yet indexed.

    The caller writes the rejects, calls `check_usable`, then `add_indices`.
    """
    from pyspark.sql import functions as F

    items = clean_items(raw_items).cache()
    labeled = label_rows(raw, items, feedback, rating_range).cache()
    counts = {row[REASON]: row["count"] for row in labeled.groupBy(REASON).count().collect()}
    rows_kept = counts.pop(None, 0)
    kept = labeled.filter(F.col(REASON).isNull()).select(C.USER_ID, C.ITEM_ID, C.RATING, C.TIMESTAMP)
    rejects = labeled.filter(F.col(REASON).isNotNull()).select(
        C.USER_ID,
        C.ITEM_ID,
        F.col("rating_text").alias(C.RATING),
        F.col("timestamp_text").alias(C.TIMESTAMP),
        C.RAW_LINE,
        REASON,
    )
    rows_read = rows_kept + sum(counts.values())
    return Prepared(kept, items, rejects, rows_read, rows_kept, dict(sorted(counts.items())))


def check_usable(prepared: Prepared, max_reject_share: float, source: str) -> None:
    reasons = ", ".join(f"{reason}: {n}" for reason, n in prepared.rejected_by_reason.items()) or "none"
    if prepared.rows_read == 0:
        raise PipelineError(f"{source} has no interaction rows; check that the archive holds the data")
    share = prepared.rows_rejected / prepared.rows_read
    if share > max_reject_share:
        raise PipelineError(
            f"{source}: {prepared.rows_rejected} of {prepared.rows_read} rows ({share:.1%}) were rejected, "
            f"over the max_reject_share of {max_reject_share:.1%} (by reason: {reasons}). The rejected rows "
            "are in the run's preprocess_rejects table; fix the data or raise max_reject_share."
        )
    if prepared.rows_kept < MIN_ROWS:
        raise PipelineError(
            f"{source}: only {prepared.rows_kept} of {prepared.rows_read} rows are usable (rejected by "
            f"reason: {reasons}); at least {MIN_ROWS} are needed to split, train and evaluate"
        )
