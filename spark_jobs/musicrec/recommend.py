"""Top-N songs per user from ALS factors, excluding songs the user already has, and the CSV."""

from __future__ import annotations

import shutil
from pathlib import Path

from musicrec import columns as C
from musicrec.paths import staged_dir

SCORE = "score"
RANK = "rank"


SCORES_PER_CHUNK = 20_000_000  # user x song scores held at once by one Python worker (160 MB)


def top_n_unseen(model, seen, n: int, users=None):
    """For each user with factors (or each of `users`), the `n` best-scored songs not in `seen`.

    Returns user_index, item_index, score, rank. Score = the model's predicted rating (or
    preference, for play counts); equal scores rank the smaller item_index first. A user with
    fewer than `n` unseen songs gets them all; one with none gets no rows. ALS's recommendForAllUsers cannot skip songs the user already
    has, so this scores them itself: song factors are broadcast to every Python worker, which
    scores its users in chunks with one matrix product and keeps the n best unseen (numpy).
    """
    user_table = model.user_table()
    if users is not None:
        user_table = user_table.join(users.select(C.USER_INDEX).distinct(), C.USER_INDEX)
    return _top_n(user_table, model.item_table(), seen, n)


def popular_unseen(train, seen, users, n: int):
    """The popularity baseline: the `n` songs with most training interactions each user lacks."""
    from pyspark.sql import functions as F

    items = train.groupBy(C.ITEM_INDEX).agg(
        F.array().cast("array<float>").alias("features"), F.count("*").cast("double").alias("offset")
    )
    user_table = users.select(C.USER_INDEX).distinct().select(
        C.USER_INDEX, F.array().cast("array<float>").alias("features"), F.lit(0.0).alias("offset")
    )
    return _top_n(user_table, items, seen, n)


def _top_n(user_table, item_table, seen, n: int):
    """score(u, i) = user offset + song offset + user features . song features; best n unseen."""
    import numpy as np
    import pandas as pd
    from pyspark.sql import functions as F

    # Sorted by index, so that a song's position breaks ties the way its index does.
    rows = sorted(item_table.select(C.ITEM_INDEX, "features", "offset").collect(), key=lambda r: r[C.ITEM_INDEX])
    item_ids = np.array([r[C.ITEM_INDEX] for r in rows], dtype=np.int64)
    item_vectors = np.array([r["features"] for r in rows], dtype=np.float64).reshape(len(rows), -1)
    item_offsets = np.array([r["offset"] for r in rows], dtype=np.float64)
    position = {int(item): pos for pos, item in enumerate(item_ids)}
    shared = user_table.sparkSession.sparkContext.broadcast((item_ids, item_vectors, item_offsets, position))
    chunk = max(1, SCORES_PER_CHUNK // max(len(rows), 1))
    seen_lists = seen.groupBy(C.USER_INDEX).agg(F.collect_list(C.ITEM_INDEX).alias("_seen"))
    users = user_table.join(seen_lists, C.USER_INDEX, "left")

    user_col, item_col, score_col, rank_col = C.USER_INDEX, C.ITEM_INDEX, SCORE, RANK  # no module refs in the closure

    def score(batches):
        ids, vectors, offsets, where = shared.value
        keep = min(n, len(ids))
        for batch in batches:
            for start in range(0, len(batch), chunk):
                part = batch.iloc[start : start + chunk]  # noqa: E203
                user_vectors = np.array(part["features"].tolist(), dtype=np.float64).reshape(len(part), -1)
                scores = user_vectors @ vectors.T + offsets + part["offset"].to_numpy()[:, None]
                for row, items in enumerate(part["_seen"]):
                    if items is not None and len(items):
                        scores[row, [where[i] for i in items if i in where]] = -np.inf
                best = _best_positions(scores, keep)
                best_scores = np.take_along_axis(scores, best, axis=1)
                order = np.lexsort((ids[best], -best_scores), axis=1)
                best, best_scores = np.take_along_axis(best, order, axis=1), np.take_along_axis(best_scores, order, axis=1)
                found = np.isfinite(best_scores)  # fewer than n unseen songs: shorter list
                yield pd.DataFrame({
                    user_col: np.repeat(part[user_col].to_numpy(), keep)[found.ravel()],
                    item_col: ids[best].ravel()[found.ravel()].astype(np.int32),
                    score_col: best_scores.ravel()[found.ravel()],
                    rank_col: np.tile(np.arange(1, keep + 1), len(part))[found.ravel()].astype(np.int32),
                })

    schema = f"{C.USER_INDEX} int, {C.ITEM_INDEX} int, {SCORE} double, {RANK} int"
    return users.mapInPandas(score, schema)


def _best_positions(scores, keep: int):
    """Per row, the positions of the `keep` highest scores (ties: the smaller position), unordered.

    argpartition alone keeps an arbitrary subset of the songs tied at the cut-off; here every
    song strictly above the keep-th best score is kept, and the tied ones fill the rest in order.
    """
    import numpy as np

    rows, width = scores.shape
    if keep >= width:
        return np.tile(np.arange(width), (rows, 1))
    negated = np.where(np.isnan(scores), np.inf, -scores)  # NaN ranks with the seen songs: last
    cut = np.partition(negated, keep - 1, axis=1)[:, keep - 1 : keep]  # noqa: E203 (the keep-th best, negated)
    above, tied = negated < cut, negated == cut
    room = keep - above.sum(axis=1, keepdims=True)
    chosen = above | (tied & (np.cumsum(tied, axis=1, dtype=np.int32) <= room))
    return np.nonzero(chosen)[1].reshape(rows, keep)


def with_original_ids(top, interactions, items):
    """Replace indices by the dataset's own IDs and add titles and artists: the CSV's columns, in
    order (C.RECOMMENDATION_COLUMNS). A song without metadata gets a null title and artist."""
    from pyspark.sql import functions as F

    users = interactions.select(C.USER_ID, C.USER_INDEX).distinct()
    songs = interactions.select(C.ITEM_ID, C.ITEM_INDEX).distinct()
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
