"""Validate raw interactions, count and keep every rejected row with its reason, index the IDs.

Rules, in order (a row gets the first reason that applies):
  malformed_line       the line does not split into the declared fields (or is not valid JSON)
  missing_field        user, song or value is empty
  undecodable_text     user or song ID holds text that did not decode (U+FFFD)
  non_numeric_value    value is not a finite number, or the timestamp is none of the forms below
  rating_out_of_range  explicit rating outside the dataset's scale
  non_positive_count   implicit play count <= 0
  duplicate            explicit ratings only: the same user and song again: the latest by timestamp
                       is kept (without timestamps, or on equal ones: the highest value)
  unknown_song         the song has no title in the items file
Play counts (implicit feedback) are never duplicates: a listen log repeats a song once per play,
so every kept row of one user and song is summed into one interaction (rating = the sum of the
values, timestamp = the latest known one), on the integer indices as they are written
(`add_indices`, `write_interactions`). `rows_kept` still counts rows (rows_read = rows_kept +
rows rejected); `plays_aggregated` counts the kept rows summed into another one.

Timestamps may be epoch seconds, epoch milliseconds or ISO 8601; all become epoch seconds (bigint,
fractions of a second dropped):
  a number below 1e11 is seconds, from 1e11 on milliseconds: 1e11 seconds is the year 5138, and
  1e11 milliseconds is March 1973, before any digital listening log (older millisecond stamps
  would be misread as seconds)
  text starting with a date, YYYY-MM-DD, is ISO 8601: "2026-03-01T12:00:00Z",
  "2026-03-01 12:00:00+02:00", "2026-03-01T12:00:00.123Z"; without an offset it is in the
  session time zone (UTC, see spark_config). Time-only text is rejected: Spark would date it today.
An ID listed twice in the items file keeps its lexicographically smallest title.
Users with a single interaction are kept (ALS learns them; the random split may move their only
row to the test set, and then they are dropped as cold-start users at evaluation). Songs that
nobody played are kept in the items table but can never be recommended: ALS has no factors for them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from musicrec import columns as C
from musicrec import interaction_files
from musicrec.errors import PipelineError
from musicrec.id_tables import IdTables
from musicrec.spark_config import BYPASS_PARTIAL_AGGREGATION, UNCOMPRESSED_CACHE, session_settings

REASON = C.REJECT_REASON
MIN_ROWS = 10  # fewer usable interactions than this cannot be split, trained and evaluated
UNDECODABLE = "\ufffd"
MILLISECONDS_FROM = 1e11  # an epoch number this large is milliseconds (see the module docstring)
ISO_DATE_START = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}"
RATING_TEXT, TIMESTAMP_TEXT = "rating_text", "timestamp_text"  # the raw texts, kept for the rejects table


@dataclass
class Prepared:
    rows: object  # DataFrame of the kept rows: user_id, song_id, rating, timestamp (play counts: repeats too)
    items: object  # DataFrame: song_id, title, artist
    rejects: object  # DataFrame: raw fields + reason
    rows_read: int
    rows_kept: int  # rows that passed validation, before repeated plays are summed
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    sum_plays: bool = False  # play counts: the rows of one user and song become one interaction
    # Interactions once summed: what preprocess wrote (`write_interactions`), else counted on demand.
    counted_interactions: int | None = None

    @property
    def rows_rejected(self) -> int:
        return sum(self.rejected_by_reason.values())

    @property
    def interactions(self):
        """One row per user and song, not indexed: user_id, song_id, rating, timestamp."""
        return sum_repeated_plays(self.rows) if self.sum_plays else self.rows

    @property
    def interactions_kept(self) -> int:
        """Rows of `interactions`: what the split, training and evaluation get."""
        if self.counted_interactions is None:
            self.counted_interactions = self.interactions.count() if self.sum_plays else self.rows_kept
        return self.counted_interactions

    @property
    def plays_aggregated(self) -> int:
        """Kept rows summed into another one (play counts only)."""
        return self.rows_kept - self.interactions_kept


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


def epoch_seconds(text):
    """Seconds since the epoch from a timestamp string column, or null when it is none of the
    accepted forms: epoch seconds, epoch milliseconds, ISO 8601 (see the module docstring)."""
    from pyspark.sql import functions as F

    number = F.col(text).try_cast("double")
    seconds = F.when(number >= MILLISECONDS_FROM, number / 1000).otherwise(number)
    dated = F.when(F.col(text).rlike(ISO_DATE_START), F.unix_seconds(F.try_to_timestamp(F.col(text))))
    return F.coalesce(seconds.try_cast("bigint"), dated)  # NaN, infinities, overflow: null


def label_rows(raw, items, feedback: str, rating_range: tuple[float, float] | None):
    """Return `raw` with typed columns and a `reason` column (null for a row to keep)."""
    from pyspark.sql import functions as F

    typed = raw.select(
        F.trim(C.USER_ID).alias(C.USER_ID),
        F.trim(C.ITEM_ID).alias(C.ITEM_ID),
        F.trim(C.RATING).alias(RATING_TEXT),
        F.trim(C.TIMESTAMP).alias(TIMESTAMP_TEXT),
        C.RAW_LINE,
    ).select("*", F.col(RATING_TEXT).try_cast("double").alias(C.RATING), epoch_seconds(TIMESTAMP_TEXT).alias(C.TIMESTAMP))

    def empty(name):
        return F.col(name).isNull() | (F.col(name) == "")

    out_of_range = F.lit(False)
    if feedback == "explicit" and rating_range:
        low, high = rating_range
        out_of_range = (F.col(C.RATING) < low) | (F.col(C.RATING) > high)
    non_positive = (F.col(C.RATING) <= 0) if feedback == "implicit" else F.lit(False)
    first_reason = (
        F.when(F.col(C.RAW_LINE).isNotNull(), "malformed_line")
        .when(empty(C.USER_ID) | empty(C.ITEM_ID) | empty(RATING_TEXT), "missing_field")
        .when(F.col(C.USER_ID).contains(UNDECODABLE) | F.col(C.ITEM_ID).contains(UNDECODABLE), "undecodable_text")
        .when(F.col(C.RATING).isNull() | F.isnan(C.RATING) | (F.abs(C.RATING) == float("inf")), "non_numeric_value")
        .when(~empty(TIMESTAMP_TEXT) & F.col(C.TIMESTAMP).isNull(), "non_numeric_value")
        .when(out_of_range, "rating_out_of_range")
        .when(non_positive, "non_positive_count")
    )
    # One projection over one scan: a union of the rejected and the passed rows would parse the
    # file twice (bench/: at 5M play counts 11.9-12.8 s -> 8.9-9.5 s to label and cache).
    return _label_repeats_and_unknown_songs(typed.withColumn(REASON, first_reason), items, feedback)


def _label_repeats_and_unknown_songs(checked, items, feedback: str):
    """`checked` with the reasons that need other rows: `duplicate` for all but the latest
    explicit rating of a user and song, `unknown_song` for songs without a title; a row keeps the
    reason it already has. Repeated plays stay: `add_indices` sums them, so play counts need no
    window (bench/: at 5M ratings the window costs ~7.5 s of a 61 s step; 5M play counts without
    it: 65-68 s against 71-77 s)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    known = items.select(C.ITEM_ID, F.lit(True).alias("_known"))
    labeled = checked
    is_duplicate = F.lit(False)
    if feedback == "explicit":
        # Rows already rejected sort after every passed row of their user and song: they never
        # make a passed rating a duplicate.
        latest_first = Window.partitionBy(C.USER_ID, C.ITEM_ID).orderBy(
            F.col(REASON).isNotNull(), F.col(C.TIMESTAMP).desc_nulls_last(), F.col(C.RATING).desc()
        )
        labeled = checked.withColumn("_order", F.row_number().over(latest_first))
        is_duplicate = F.col("_order") > 1
    later_reason = F.when(is_duplicate, "duplicate").when(F.col("_known").isNull(), "unknown_song")
    return (
        labeled.join(known, C.ITEM_ID, "left")
        .withColumn(REASON, F.coalesce(F.col(REASON), later_reason))
        .select(*checked.columns)
    )


def sum_repeated_plays(kept, keys=(C.USER_ID, C.ITEM_ID)):
    """One row per user and song (`keys`: their IDs or indices): the plays summed, the latest
    known timestamp."""
    from pyspark.sql import functions as F

    return kept.groupBy(*keys).agg(
        F.sum(C.RATING).alias(C.RATING), F.max(C.TIMESTAMP).alias(C.TIMESTAMP)
    )


@dataclass
class Indexed:
    """`add_indices`' result: the interactions with dense indices, and the two ID tables."""

    interactions: object  # DataFrame: user_index, item_index, rating, timestamp (the IDs: musicrec.id_tables)
    users: object  # DataFrame user_id, user_index: one row per user, from the indexer's labels
    songs: object  # DataFrame song_id, item_index: one row per song
    user_count: int
    song_count: int
    summed: bool = False  # play counts summed by `interactions` (write it with `write_interactions`)

    @property
    def whole_users_per_file(self) -> bool:
        """Whether `interactions` is grouped after interaction_files.by_user: the sum is (add_indices)."""
        return self.summed

    @property
    def id_tables(self) -> IdTables:
        return IdTables(self.users, self.songs)


def add_indices(rows, sum_plays: bool = False) -> Indexed:
    """Dense integer user and song indices for ALS (most rows first) instead of the original IDs,
    and the ID tables that map them back (the splits' draw, recommend's CSV, the champion's index
    space: musicrec.id_tables).

    The ID tables come from the fitted indexer's labels (index i is label i), not from a distinct
    over every interaction: at 5M interactions that scan cost recommend ~6 s, twice.

    With `sum_plays`, the rows of one user and song are summed (`sum_repeated_plays`) on the
    indices: a shuffle of integers, not of strings, and no cached copy of the summed rows to index
    afterwards. The step alone, alternating with the
    old order (sum on the IDs, cache, index): 25M play counts 87.2-91.3 s against 102.0-103.2 s,
    5M 28.4-30.5 s against 31.1-31.3 s, a listen log of 5M plays of 1M pairs (five each) 24.1
    against 24.5 s; the tables written were the same. A user or song is now ranked by its rows:
    in a listen log, by plays rather than by distinct songs or listeners, so the indices of a log
    can differ from a run before this change (the IDs, sums and recommendations do not depend on
    them).
    """
    from pyspark.ml.feature import StringIndexer
    from pyspark.sql import functions as F

    indexer = StringIndexer(
        inputCols=[C.USER_ID, C.ITEM_ID], outputCols=["_u", "_i"], stringOrderType="frequencyDesc"
    )
    fitted = indexer.fit(rows)
    user_labels, song_labels = fitted.labelsArray
    spark = rows.sparkSession
    users, songs = _id_table(spark, user_labels, C.USER_ID, C.USER_INDEX), _id_table(spark, song_labels, C.ITEM_ID, C.ITEM_INDEX)
    indices = [F.col("_u").cast("int").alias(C.USER_INDEX), F.col("_i").cast("int").alias(C.ITEM_INDEX)]
    indexed = fitted.transform(rows).select(*indices, C.RATING, C.TIMESTAMP)
    if sum_plays:
        # Shuffled by the user alone: each written file then holds whole users, which recommend
        # reads file by file (musicrec.interaction_files), for no more than the sum's own shuffle.
        indexed = sum_repeated_plays(interaction_files.by_user(indexed), (C.USER_INDEX, C.ITEM_INDEX))
    return Indexed(indexed, users, songs, len(user_labels), len(song_labels), summed=sum_plays)


def write_interactions(indexed: Indexed, path: Path) -> int | None:
    """Write `indexed.interactions` as parquet at `path`. Summed play counts: return how many rows
    were written (a job over the files' footers, not a scan of the data); else None (a row per
    kept row).

    Play counts are summed while this writes, without partial aggregation: a user and song is
    mostly one row already (play counts summed at the source), and merging rows before the
    shuffle then cost 18 of 42 s at 25M plays, 1.4 of 6 s at 5M. A listen log with 5 or 20 plays
    per user and song (5M rows) was no slower.
    """
    spark = indexed.interactions.sparkSession
    with session_settings(spark, BYPASS_PARTIAL_AGGREGATION if indexed.summed else {}):
        if indexed.whole_users_per_file:
            interaction_files.write_whole_users(indexed.interactions, path)
        else:
            indexed.interactions.write.parquet(str(path))
    return spark.read.parquet(str(path)).count() if indexed.summed else None


def _id_table(spark, labels, id_col: str, index_col: str):
    """id_col, index_col: label i of a fitted StringIndexer has index i.

    Built from an Arrow table: a list of tuples would start Spark's Python workers to read it.
    One partition (one file): Arrow's batches would make one every 10,000 IDs.
    """
    import pyarrow as pa

    table = pa.table({index_col: pa.array(range(len(labels)), pa.int32()), id_col: pa.array(labels, pa.string())})
    return spark.createDataFrame(table).coalesce(1).select(id_col, index_col)


def only_rejects_keep_raw_text(labeled):
    """`labeled` with the raw value and timestamp texts (the rejects table's) null on kept rows:
    those rows have them typed, and the cache holds two string columns fewer (bench/: at 5M play
    counts ~1 s of the 10 s it takes to label and cache)."""
    from pyspark.sql import functions as F

    rejected = F.col(REASON).isNotNull()
    return labeled.select(*[
        F.when(rejected, F.col(name)).alias(name) if name in (RATING_TEXT, TIMESTAMP_TEXT) else F.col(name)
        for name in labeled.columns
    ])


def prepare(raw, raw_items, feedback: str, rating_range) -> Prepared:
    """Label every row, count rejects by reason; `rows` are the kept rows, not yet indexed (play
    counts not yet summed: `add_indices` sums them on the indices).

    The caller writes the rejects, calls `check_rejects`, `add_indices`, `write_interactions`,
    then `check_enough`.
    """
    from pyspark.sql import functions as F

    items = clean_items(raw_items).cache()
    # Built uncompressed: three scans of it follow, and compressing its 25M rows cost more than it
    # saved (25M play counts: labeled and cached in 26.8-26.9 s against 31.5-34.2; the step alone
    # 57.9 and 60.3 s against 60.9-65.5 s, its scans of the cache ~1 s slower).
    with session_settings(raw.sparkSession, UNCOMPRESSED_CACHE):
        labeled = only_rejects_keep_raw_text(label_rows(raw, items, feedback, rating_range)).cache()
        counts = {row[REASON]: row["rows"] for row in labeled.groupBy(REASON).agg(F.count("*").alias("rows")).collect()}
    rows_kept = counts.pop(None, 0)
    kept = labeled.filter(F.col(REASON).isNull()).select(C.USER_ID, C.ITEM_ID, C.RATING, C.TIMESTAMP)
    rejects = labeled.filter(F.col(REASON).isNotNull()).select(
        C.USER_ID,
        C.ITEM_ID,
        F.col(RATING_TEXT).alias(C.RATING),
        F.col(TIMESTAMP_TEXT).alias(C.TIMESTAMP),
        C.RAW_LINE,
        REASON,
    )
    rows_read = rows_kept + sum(counts.values())
    return Prepared(kept, items, rejects, rows_read, rows_kept, dict(sorted(counts.items())), sum_plays=feedback == "implicit")


def _reasons(prepared: Prepared) -> str:
    return ", ".join(f"{reason}: {n}" for reason, n in prepared.rejected_by_reason.items()) or "none"


def check_rejects(prepared: Prepared, max_reject_share: float, source: str) -> None:
    """Fail on a dataset without rows or with too many rejected ones (known before indexing)."""
    if prepared.rows_read == 0:
        raise PipelineError(f"{source} has no interaction rows; check that the archive holds the data")
    share = prepared.rows_rejected / prepared.rows_read
    if share > max_reject_share:
        raise PipelineError(
            f"{source}: {prepared.rows_rejected} of {prepared.rows_read} rows ({share:.1%}) were rejected, "
            f"over the max_reject_share of {max_reject_share:.1%} (by reason: {_reasons(prepared)}). The rejected rows "
            "are in the run's preprocess_rejects table; fix the data or raise max_reject_share."
        )


def check_enough(prepared: Prepared, source: str) -> None:
    """Fail on too few user-song interactions to split, train and evaluate."""
    if prepared.interactions_kept < MIN_ROWS:
        summed = f", {prepared.plays_aggregated} repeated plays summed into others" if prepared.plays_aggregated else ""
        raise PipelineError(
            f"{source}: only {prepared.rows_kept} of {prepared.rows_read} rows are usable (rejected by "
            f"reason: {_reasons(prepared)}{summed}), giving {prepared.interactions_kept} user-song interactions; "
            f"at least {MIN_ROWS} are needed to split, train and evaluate"
        )
