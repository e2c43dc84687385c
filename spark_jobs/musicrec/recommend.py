"""Top-N songs per user from ALS factors, excluding songs the user already has, and the CSV.

Spark's side: the songs collected, users joined with their seen songs and scored where it pays
(musicrec.top_n_scoring does the scoring), the IDs put back, one CSV file written."""

from __future__ import annotations

import shutil
from pathlib import Path

from musicrec import columns as C
from musicrec import top_n_scoring as scoring
from musicrec.paths import staged_dir
from musicrec.top_n_scoring import RANK, SCORE, SEEN, TOP_N_SCHEMA, Songs, song_arrays

# Up to this many user x song scores (and users), top-N runs in the job's own Python process and
# Spark's Python workers are never started: on the sample that saved ~1 s of evaluate (bench/,
# within the run-to-run noise). The limit is an estimate: one process scores 50M in a few seconds
# of numpy; past that, the workers' parallelism should win. The user cap bounds what is collected.
IN_DRIVER_SCORES = 50_000_000
IN_DRIVER_USERS = 100_000


def seen_songs(interactions):
    """user_index, SEEN: the list of songs each user has, from interactions (user_index,
    item_index). Idempotent (a frame that has SEEN already is returned as is), so that the
    top-N functions take either form: evaluate groups the training split once, caches it, and
    scores the model and the popularity baseline against it."""
    from pyspark.sql import functions as F

    if SEEN in interactions.columns:
        return interactions
    return interactions.groupBy(C.USER_INDEX).agg(F.collect_list(C.ITEM_INDEX).alias(SEEN))


def top_n_unseen(model, seen, n: int, users=None):
    """For each user with factors (or each of `users`), the `n` best-scored songs not in `seen`
    (interactions: user_index, item_index; or `seen_songs` of them).

    Returns user_index, item_index, score, rank. Score = the model's predicted rating (or
    preference, for play counts); equal scores (before the user's constant offset is added) rank
    the smaller item_index first. A user with
    fewer than `n` unseen songs gets them all; one with none gets no rows. ALS's recommendForAllUsers cannot skip songs the user already
    has, so this scores them itself: song factors are broadcast to every Python worker, which
    scores its users in chunks with one matrix product and keeps the n best unseen (numpy); up to
    IN_DRIVER_SCORES scores, the job's own process does the same without starting the workers.
    """
    every_user = model.user_table()
    user_table = every_user
    if users is not None:
        user_table = every_user.join(users.select(C.USER_INDEX).distinct(), C.USER_INDEX)
    return _top_n(user_table, model.item_table(), seen, n, user_bound=every_user)


def popular_unseen(train, seen, users, n: int, user_bound=None):
    """The popularity baseline: the `n` songs with most training interactions each user lacks.

    `user_bound`: a frame with at least as many rows as `users` has distinct users and cheap to
    scan (no shuffle), such as the model's user table; by default `users` itself.
    """
    from pyspark.sql import functions as F

    items = train.groupBy(C.ITEM_INDEX).agg(
        F.array().cast("array<float>").alias("features"), F.count("*").cast("double").alias("offset")
    )
    user_table = users.select(C.USER_INDEX).distinct().select(
        C.USER_INDEX, F.array().cast("array<float>").alias("features"), F.lit(0.0).alias("offset")
    )
    return _top_n(user_table, items, seen, n, user_bound=users if user_bound is None else user_bound)


def _top_n(user_table, item_table, seen, n: int, user_bound):
    """score(u, i) = user offset + song offset + user features . song features; best n unseen.

    `user_bound` has at least as many rows as `user_table` and is cheap to scan: counting it (no
    further than the in-driver limit) decides where the scoring runs without computing the
    users' own joins and shuffles twice.
    """
    songs = collected_songs(item_table)
    chunk_scores = scoring.SCORES_PER_CHUNK  # read here, in the driver: the workers import the module anew
    users = user_table.join(seen_songs(seen), C.USER_INDEX, "left")
    spark = user_table.sparkSession
    song_count = len(songs.ids)
    in_driver_users = min(IN_DRIVER_SCORES // max(song_count, 1), IN_DRIVER_USERS)
    if in_driver_users and user_bound.limit(in_driver_users + 1).count() <= in_driver_users:
        return _in_driver_frame(spark, list(scoring.score_batches([users.toPandas()], songs, n, chunk_scores)))

    shared = spark.sparkContext.broadcast(songs)

    def score(batches):
        return scoring.score_batches(batches, shared.value, n, chunk_scores)

    return users.mapInPandas(score, TOP_N_SCHEMA)


def collected_songs(item_table) -> Songs:
    """song_arrays of `item_table` (item_index, features, offset), collected as Arrow: at 59,000
    songs 0.14-0.30 s against 0.76-1.03 s as Rows (a 25M-plays model, three rounds). Sorted by
    index, so that a song's position breaks ties the way its index does (and, with
    StringIndexer's most-played-first indices, the first positions are the popular songs)."""
    import numpy as np

    table = item_table.select(C.ITEM_INDEX, "features", "offset").toArrow()
    ids = table.column(C.ITEM_INDEX).to_numpy().astype(np.int64)
    order = np.argsort(ids, kind="stable")
    features = table.column("features").combine_chunks()
    widths = set(features.value_lengths().to_numpy(zero_copy_only=False).tolist())
    if features.null_count or len(widths) > 1:
        # A flat buffer cut into equal rows would misalign the songs: say so instead.
        raise ValueError(f"song factors must be non-null and of one length; found {features.null_count} null and "
                         f"lengths {sorted(widths)[:5]}")
    vectors = features.flatten().to_numpy(zero_copy_only=False).reshape(len(ids), widths.pop() if widths else 0)
    return song_arrays(ids[order], vectors[order], table.column("offset").to_numpy()[order])



def _in_driver_frame(spark, frames):
    """The top-N rows scored in the driver as a DataFrame of TOP_N_SCHEMA, handed over as Arrow
    (no Python worker); `score_batches` already gives the columns their types."""
    import pandas as pd
    import pyarrow as pa

    if not frames:  # no users: nothing to hand over
        return spark.createDataFrame(spark.sparkContext.emptyRDD(), TOP_N_SCHEMA)
    return spark.createDataFrame(pa.Table.from_pandas(pd.concat(frames, ignore_index=True), preserve_index=False), TOP_N_SCHEMA)



def with_original_ids(top, user_ids, song_ids, items):
    """Replace indices by the dataset's own IDs (`user_ids`: user_id, user_index; `song_ids`:
    song_id, item_index, preprocess's ID tables) and add titles and artists: the CSV's columns, in
    order (C.RECOMMENDATION_COLUMNS). A song without metadata gets a null title and artist."""
    from pyspark.sql import functions as F

    users = user_ids.select(C.USER_ID, C.USER_INDEX)
    songs = song_ids.select(C.ITEM_ID, C.ITEM_INDEX)
    return (
        top.join(users, C.USER_INDEX)
        .join(songs, C.ITEM_INDEX)
        .join(items.select(C.ITEM_ID, C.TITLE, C.ARTIST), C.ITEM_ID, "left")
        .select(
            C.USER_ID,
            F.col(RANK).alias("rank"),
            C.ITEM_ID,
            C.TITLE,
            C.ARTIST,
            F.round(F.col(SCORE), 4).alias("predicted_rating"),
        )
    )


def recommendation_counts(rows) -> tuple[int, int]:
    """(rows, users) of recommendations (with_original_ids' columns) in one pass: every user with
    a list has exactly one song at rank 1, so counting those counts the users without a distinct
    (its shuffle cost ~1 s of 25M plays' recommend step)."""
    from pyspark.sql import functions as F

    counted = rows.agg(F.count("*").alias("rows"), F.count_if(F.col("rank") == 1).alias("users")).first()
    return counted["rows"], counted["users"]


def write_single_csv(frame, target: Path) -> Path:
    """Write `frame` as one RFC 4180 CSV file at `target`, sorted by user then rank.

    Numeric user IDs sort as numbers; others as text.
    """
    from pyspark.sql import functions as F

    ordered = frame.coalesce(1).sortWithinPartitions(
        F.expr(f"try_cast({C.USER_ID} AS BIGINT)").asc_nulls_last(), C.USER_ID, "rank"
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    with staged_dir(target.parent / (target.name + ".parts")) as parts:
        ordered.write.mode("overwrite").option("header", True).option("escape", '"').option(
            "quoteAll", False
        ).csv(str(parts / "csv"))
        (part,) = list((parts / "csv").glob("part-*.csv"))
        tmp = target.with_name("." + target.name + ".tmp")
        shutil.move(str(part), tmp)
        tmp.replace(target)
    shutil.rmtree(target.parent / (target.name + ".parts"), ignore_errors=True)
    return target
