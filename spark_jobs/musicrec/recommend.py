"""Top-N songs per user from ALS factors, excluding songs the user already has, and the CSV."""

from __future__ import annotations

import shutil
from pathlib import Path

from musicrec import columns as C
from musicrec.paths import staged_dir

SCORE = "score"
RANK = "rank"


def top_n_unseen(model, seen, n: int, users=None):
    """For each user with factors (or each of `users`), the `n` best-scored songs not in `seen`.

    Scores every user x song pair as the dot product of their factors, drops the pairs in `seen`
    (user_index, item_index), and keeps the n best per user: user_index, item_index, score, rank.
    ALS's own recommendForAllUsers cannot exclude seen songs, which would fill a list with
    songs the user already rated.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    user_factors = model.userFactors.select(F.col("id").alias(C.USER_INDEX), F.col("features").alias("_u"))
    if users is not None:
        user_factors = user_factors.join(users.select(C.USER_INDEX).distinct(), C.USER_INDEX)
    item_factors = model.itemFactors.select(F.col("id").alias(C.ITEM_INDEX), F.col("features").alias("_i"))
    dot = F.aggregate(F.zip_with("_u", "_i", lambda x, y: x * y), F.lit(0.0), lambda acc, v: acc + v)
    scored = (
        user_factors.crossJoin(F.broadcast(item_factors))
        .select(C.USER_INDEX, C.ITEM_INDEX, dot.alias(SCORE))
        .join(seen.select(C.USER_INDEX, C.ITEM_INDEX), [C.USER_INDEX, C.ITEM_INDEX], "left_anti")
    )
    best_first = Window.partitionBy(C.USER_INDEX).orderBy(F.col(SCORE).desc(), F.col(C.ITEM_INDEX))
    return scored.withColumn(RANK, F.row_number().over(best_first)).filter(F.col(RANK) <= n)


def popular_unseen(train, seen, users, n: int):
    """The popularity baseline: the `n` most-played songs each user has not seen yet."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    # A user can skip at most (songs seen) of the ranking, so the top n + max seen suffice.
    max_seen = seen.groupBy(C.USER_INDEX).count().agg(F.max("count")).first()[0] or 0
    popular = (
        train.groupBy(C.ITEM_INDEX).agg(F.count("*").alias(SCORE))
        .orderBy(F.col(SCORE).desc(), C.ITEM_INDEX).limit(n + max_seen)
    )
    candidates = users.select(C.USER_INDEX).distinct().crossJoin(F.broadcast(popular))
    unseen = candidates.join(seen.select(C.USER_INDEX, C.ITEM_INDEX), [C.USER_INDEX, C.ITEM_INDEX], "left_anti")
    best_first = Window.partitionBy(C.USER_INDEX).orderBy(F.col(SCORE).desc(), C.ITEM_INDEX)
    return unseen.withColumn(RANK, F.row_number().over(best_first)).filter(F.col(RANK) <= n)


def with_original_ids(top, interactions, items):
    """Replace indices by the dataset's own IDs and add titles: the CSV's columns, in order."""
    from pyspark.sql import functions as F

    users = interactions.select(C.USER_ID, C.USER_INDEX).distinct()
    songs = interactions.select(C.ITEM_ID, C.ITEM_INDEX).distinct()
    return (
        top.join(users, C.USER_INDEX)
        .join(songs, C.ITEM_INDEX)
        .join(items.select(C.ITEM_ID, C.TITLE), C.ITEM_ID, "left")
        .select(
            C.USER_ID,
            F.col(RANK).alias("rank"),
            C.ITEM_ID,
            C.TITLE,
            F.round(F.col(SCORE), 4).alias("predicted_rating"),
        )
    )


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
