"""Top-N songs per user from ALS factors, excluding songs the user already has, and the CSV.

Spark's side: the songs collected, users joined with their seen songs and scored where it pays
(musicrec.top_n_scoring does the scoring), the IDs put back, one CSV file written."""

from __future__ import annotations

import shutil
from pathlib import Path

from musicrec import columns as C
from musicrec import interaction_files
from musicrec import top_n_scoring as scoring
from musicrec.errors import PipelineError
from musicrec.paths import staged_dir
from musicrec.top_n_scoring import RANK, SCORE, SEEN, TOP_N_SCHEMA, Songs, Users, song_arrays, user_arrays

# Up to this many user x song scores (and users), top-N runs in the job's own Python process and
# Spark's Python workers are never started: on the sample that saved ~1 s of evaluate (bench/,
# within the run-to-run noise). The limit is an estimate: one process scores 50M in a few seconds
# of numpy; past that, the workers' parallelism should win. The user cap bounds what is collected.
IN_DRIVER_SCORES = 50_000_000
IN_DRIVER_USERS = 100_000
# Scoring file by file sends every user's factors to each Python worker, outside the executors'
# heap: above this many values (users x (rank + 1), 64 MB in single precision; 1.45M users at rank
# 10) Spark groups the seen songs and joins each user's factors instead.
BROADCAST_USER_VALUES = 16_000_000


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


def top_n_unseen_in_files(model, interactions, n: int):
    """top_n_unseen of every user with factors against the interactions in the folder
    `interactions` (preprocess's), reading the files with pyarrow instead of grouping them with
    Spark where it can: the same lists (up to single-precision rounding: which users share a
    chunk of the matrix product can move a score by one unit in the last place, and so reorder
    near-ties).

    - Up to the in-driver limits, the job's own process reads every file, groups by user in numpy
      and scores (any layout).
    - Above them, when preprocess wrote whole users per file (musicrec.interaction_files), each
      Python worker scores whole files: no shuffle of the interactions, no Arrow transfer of them
      (the 25M play counts' recommend step alone, alternating: 14.3 and 14.0 s against 18.3 and
      17.5 s). The users' factors are broadcast, so only up to BROADCAST_USER_VALUES. Every user
      with factors must have interactions there (the model was fitted on them or on a split of
      them): a user in no file gets no list.
    - Otherwise (ratings, a run written before that layout, a folder that is not local, users too
      many to broadcast) Spark groups them, as top_n_unseen does.
    """
    item_table, user_table = model.item_table(), model.user_table()
    spark = item_table.sparkSession
    songs = collected_songs(item_table)
    files = interaction_files.part_files(interactions)
    if files is not None:
        in_driver_users = in_driver_user_limit(len(songs.ids))
        whole_users = interaction_files.has_whole_users(interactions)
        broadcast_users = BROADCAST_USER_VALUES // songs.factors_t.shape[0] if whole_users else 0  # rank + 1 values each
        # Collected no further than either limit (a count first cost ~0.4 s more at 25M plays).
        users = collected_users(user_table.limit(max(in_driver_users, broadcast_users) + 1))
        if len(users.ids) <= in_driver_users:
            return _in_driver_frame(spark, [_scored_files(files, users, songs, n, scoring.SCORES_PER_CHUNK, every_user=True)])
        if len(users.ids) <= broadcast_users:
            return _scored_file_by_file(spark, interactions, files, users, songs, n)
    seen = spark.read.parquet(str(interactions)).select(C.USER_INDEX, C.ITEM_INDEX)
    return _top_n(user_table, item_table, seen, n, user_bound=user_table, songs=songs)


def _scored_file_by_file(spark, folder, files: list[str], users: Users, songs: Songs, n: int):
    """TOP_N_SCHEMA rows of the users in `files`, one Spark task per file (each holding whole
    users, as `folder`'s layout marker says), cached."""
    from pyspark.sql import functions as F

    shared = spark.sparkContext.broadcast((users, songs))
    chunk_scores = scoring.SCORES_PER_CHUNK  # read in the driver: the workers import the module anew

    def score(batches):
        users, songs = shared.value
        for batch in batches:
            for number in batch["id"].tolist():
                yield _scored_files([files[number]], users, songs, n, chunk_scores)

    # One row per task, each the number of its file: no shuffle to spread the paths.
    scored = spark.range(0, len(files), 1, len(files)).mapInPandas(score, TOP_N_SCHEMA).cache()
    # Scored now, so that Spark plans what follows with the lists' real size: planned from a range
    # of a few rows, the join with the ID tables broadcast the lists instead (at 25M plays 1.6M
    # rows, 129 MB) and ran in one task (2 s). The same pass checks the layout: a user whose rows
    # were in two files would have two lists, each blind to the other file's seen songs, and
    # there would be more lists than users (unless as many users got none: they have seen every
    # song). An exact check, counting distinct users, cost 0.4 s more at 25M plays.
    lists = scored.agg(F.count_if(F.col(RANK) == 1)).first()[0]
    if lists > len(users.ids):
        raise PipelineError(
            f"{lists} lists for {len(users.ids)} users: users have rows in more than one file of {folder}, although "
            f"its {interaction_files.LAYOUT_FILE} says that each file holds whole users. Nothing was published. Clear "
            "the run from preprocess on to write the folder again (or delete that file to have it read through Spark)."
        )
    return scored


def _scored_files(files: list[str], users: Users, songs: Songs, n: int, chunk_scores: int, every_user: bool = False):
    """The top-N rows (pandas) of the users with factors in `files`, read together; `every_user`:
    also of the users with factors and no interaction there (with nothing seen)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    pairs = pa.concat_tables([pq.read_table(f, columns=[C.USER_INDEX, C.ITEM_INDEX], use_threads=False) for f in files])
    ids, lengths, items = scoring.grouped_by_user(pairs.column(C.USER_INDEX).to_numpy(), pairs.column(C.ITEM_INDEX).to_numpy())
    rows = users.rows_of(ids)
    known = rows >= 0
    lengths, items, rows = lengths[known], items[np.repeat(known, lengths)], rows[known]
    if every_user:
        unseen = np.setdiff1d(np.arange(len(users.ids)), rows)
        rows, lengths = np.concatenate([rows, unseen]), np.concatenate([lengths, np.zeros(len(unseen), dtype=lengths.dtype)])
    seen = scoring.seen_cells_of(lengths, items, songs.position_of)
    return scoring.score_arrays(users.take(rows), seen, songs, n, chunk_scores)


def in_driver_user_limit(song_count: int) -> int:
    """How many users top-N scores in the job's own process against `song_count` songs."""
    return min(IN_DRIVER_SCORES // max(song_count, 1), IN_DRIVER_USERS)


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


def _top_n(user_table, item_table, seen, n: int, user_bound, songs: Songs | None = None):
    """score(u, i) = user offset + song offset + user features . song features; best n unseen.

    `user_bound` has at least as many rows as `user_table` and is cheap to scan: counting it (no
    further than the in-driver limit) decides where the scoring runs without computing the
    users' own joins and shuffles twice. `songs`: item_table already collected.
    """
    songs = collected_songs(item_table) if songs is None else songs
    chunk_scores = scoring.SCORES_PER_CHUNK  # read here, in the driver: the workers import the module anew
    users = user_table.join(seen_songs(seen), C.USER_INDEX, "left")
    spark = user_table.sparkSession
    in_driver_users = in_driver_user_limit(len(songs.ids))
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
    return song_arrays(*_collected_factors(item_table, C.ITEM_INDEX))


def collected_users(user_table) -> Users:
    """user_arrays of `user_table` (user_index, features, offset), collected as Arrow."""
    return user_arrays(*_collected_factors(user_table, C.USER_INDEX))


def _collected_factors(table, index_col: str):
    """(indices, factors, offsets) of a factor table, sorted by index, as numpy arrays."""
    import numpy as np

    table = table.select(index_col, "features", "offset").toArrow()
    ids = table.column(index_col).to_numpy().astype(np.int64)
    order = np.argsort(ids, kind="stable")
    features = table.column("features").combine_chunks()
    widths = set(features.value_lengths().to_numpy(zero_copy_only=False).tolist())
    if features.null_count or len(widths) > 1:
        # A flat buffer cut into equal rows would misalign the songs: say so instead.
        raise ValueError(f"factors must be non-null and of one length; found {features.null_count} null and "
                         f"lengths {sorted(widths)[:5]}")
    vectors = features.flatten().to_numpy(zero_copy_only=False).reshape(len(ids), widths.pop() if widths else 0)
    return ids[order], vectors[order], table.column("offset").to_numpy()[order]



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
