"""What the evaluate step computes, as functions of a model and its splits (the job wires them).

Explicit ratings: RMSE and MAE of the model and of its own bias baseline on the held-out rows,
and ranking metrics at k where a held-out song is relevant when its rating reaches
RELEVANT_SHARE_OF_SCALE of the top of the dataset's rating scale. Implicit play counts: every
held-out play is relevant. Ranking metrics compare the model with the popularity baseline, over
the held-out users the model has factors for (cold-start users are dropped for both), together
with catalogue coverage (distinct songs recommended / songs in training) and popular_share (the
share of recommendations that go to the 10% most played songs): a model can score well by
recommending the hits to everyone, and these two show it.
"""

from __future__ import annotations

from musicrec import columns as C
from musicrec.errors import PipelineError
from musicrec.metrics import ranking_metrics, rating_errors_of

EXPLICIT = "explicit"
RELEVANT_SHARE_OF_SCALE = 0.8  # explicit: a held-out rating >= 80% of the top of the scale is relevant
POPULAR_SHARE = 0.1  # "popular songs": the 10% most played in training (popular_share)
# Ranking metrics need every ranked user's top-N over the whole catalogue: at 25M plays (162k
# users x 59k songs) one such pass costs about a minute, and a nightly run on play counts makes
# four (the model and popularity; the model and the champion on the champion's rows). Above this
# many held-out users they are computed over a sample of about this size (the DAG's ranking_users
# param; 0: every user): 50k users put the standard error of a mean NDCG@10 near 0.001.
RANKING_USERS = 50_000
MIN_RANKING_USERS = 1000  # a smaller ranking_users (other than 0) says too little to judge a model
HASH_BUCKETS = 1_000_000


def relevance_threshold(rating_max: float | None, train_max: float | None) -> tuple[float, str]:
    """(threshold, what it is based on) for explicit ratings.

    The top of the dataset's scale (`rating_max`: 5 for MovieLens, so 4.0) when the format knows
    it; otherwise (a generic file without rating_max, or ratings forced on other data) the highest
    rating of the training split.
    """
    if rating_max is not None:
        return RELEVANT_SHARE_OF_SCALE * float(rating_max), "rating_scale"
    if train_max is None:
        raise PipelineError("the training split has no ratings: nothing to evaluate")
    return RELEVANT_SHARE_OF_SCALE * float(train_max), "highest_training_rating"


def relevant_rows(test, feedback: str, threshold: float | None = None):
    """The held-out rows that count as relevant: ratings >= threshold, or every play (implicit)."""
    if feedback == EXPLICIT:
        return test.filter(test[C.RATING] >= threshold)
    return test


def ranking_sample(relevant, max_users: int | None, user_ids=None):
    """(the rows of `relevant` whose users are in the ranking sample, what the sample is).

    Users are drawn by a fixed hash of their ID (user_id, not tonight's indices: from the frame
    when it has the column, else from `user_ids`, preprocess's user_id, user_index table): the
    cut-off scales with the number of users, so a user drawn at one cut-off is drawn at every
    higher one, and nights on similar data rank mostly the same users. About `max_users` of them;
    all when there are no more than that or `max_users` is 0/None. Counting the users is one job
    over `relevant` (cache it first).
    """
    import math

    from pyspark.sql import functions as F

    users = relevant.select(C.USER_INDEX).distinct().count()
    about = {"held_out_users": users, "max_users": max_users or None, "sampled": False}
    if not max_users or users <= max_users:
        return relevant, about
    by_id_table = C.USER_ID not in relevant.columns and user_ids is not None
    key = C.USER_ID if C.USER_ID in relevant.columns or by_id_table else C.USER_INDEX
    below = math.ceil(HASH_BUCKETS * max_users / users)
    chosen = F.pmod(F.xxhash64(F.col(key).cast("string")), F.lit(HASH_BUCKETS)) < below
    about.update(sampled=True, chosen_by=f"pmod(xxhash64({key}), {HASH_BUCKETS}) < {below}")
    if by_id_table:  # the same share of every user in the table: max_users x all / held-out users
        return rows_of_users(relevant, user_ids.filter(chosen)), about
    return relevant.filter(chosen), about


def rows_of_users(frame, users):
    """The rows of `frame` whose user_index is among those of `users` (a small frame: broadcast),
    in `frame`'s columns."""
    from pyspark.sql import functions as F

    chosen = F.broadcast(users.select(C.USER_INDEX).distinct())
    return frame.join(chosen, C.USER_INDEX, "left_semi").select(*frame.columns)


def rows_of_ranked_users(train, relevant, sample: dict):
    """The rows of `train` whose user is ranked: their seen songs are all the lists need (when
    `ranking_sample` sampled; else `train` itself). At 25M plays (50k of 162k users ranked) the
    evaluate step alone took 33.3 and 33.7 s, against 36.3 and 36.5 s grouping every user's."""
    return rows_of_users(train, relevant) if sample.get("sampled") else train


def headline_of(feedback: str, k: int) -> tuple[str, str]:
    """(headline metric, the baseline it is compared with)."""
    return ("rmse", "bias_baseline") if feedback == EXPLICIT else (f"ndcg_at_{k}", "popularity_baseline")


def evaluate_model(model, train, test, feedback: str, k: int, rating_max: float | None = None, details: bool = False,
                   ranking_users: int | None = RANKING_USERS, together: bool = False, user_ids=None) -> dict:
    """Every metric of the evaluate step, as written to metrics.json. Ranking metrics, coverage
    and the plots are over at most about `ranking_users` held-out users (`ranking_sample`, which
    draws them by user_id: from `test`, or from `user_ids` when `test` has only the indices).

    With `details`, also "_plots": small plain-Python samples for the report (musicrec.report).
    With `together`, the model's lists and the popularity baseline's are computed and scored at
    once (musicrec.side_by_side: for small data).
    """
    from pyspark.sql import functions as F

    from musicrec import side_by_side
    from musicrec.recommend import popular_unseen, seen_songs, top_n_unseen

    metrics: dict = {"feedback": feedback, "k": k}
    threshold = None
    scored = None
    if feedback == EXPLICIT:
        # The baseline is the model's own bias terms, scored on the same rows (cold-start dropped).
        scored = model.predict_baseline(model.predict(test), "baseline_prediction").cache()
        metrics.update(rating_errors_of(scored, {"model": C.PREDICTION, "bias_baseline": "baseline_prediction"}))
        train_max = None if rating_max is not None else train.agg(F.max(C.RATING)).first()[0]
        threshold, basis = relevance_threshold(rating_max, train_max)
        metrics["relevance"] = {"threshold": threshold, "based_on": basis}
    relevant = relevant_rows(test, feedback, threshold)
    every_relevant = relevant.join(model.als.userFactors.selectExpr(f"id AS {C.USER_INDEX}"), C.USER_INDEX).cache()
    relevant, metrics["ranking_sample"] = ranking_sample(every_relevant, ranking_users, user_ids)
    relevant = relevant.cache()  # the same frame when not sampled; else built from every_relevant's cache
    popularity = song_popularity(train).cache()
    seen = seen_songs(rows_of_ranked_users(train, relevant, metrics["ranking_sample"])).cache()  # once for both lists

    def scored_lists(make_lists):  # the lists are made in the thread: in-driver top-N runs at once
        lists = make_lists().cache()
        return lists, {**ranking_metrics(lists, relevant, k), **diversity(lists, popularity)}

    results, _ = side_by_side.run_timed({
        "model": lambda: scored_lists(lambda: top_n_unseen(model, seen, k, users=relevant)),
        "popularity_baseline": lambda: scored_lists(
            lambda: popular_unseen(train, seen, relevant, k, user_bound=model.user_table())),
    }, together=together)
    for name, (_, scores) in results.items():
        metrics[name] = {**metrics.get(name, {}), **scores}
    recommended, popular = results["model"][0], results["popularity_baseline"][0]
    if details:
        metrics["_plots"] = plot_samples(scored, recommended, relevant, popularity, k)
    for frame in (relevant, every_relevant, popularity, seen, recommended, popular, scored):
        if frame is not None:
            frame.unpersist()
    return metrics


def validation_score(model, fit_split, validation, feedback: str, k: int, rating_max: float | None = None,
                     ranking_users: int | None = RANKING_USERS) -> float:
    """The headline metric alone (RMSE, or NDCG@k for play counts, over the users
    `ranking_sample` draws from the validation users): what tuning compares."""
    from musicrec.recommend import top_n_unseen

    if feedback == EXPLICIT:
        return rating_errors_of(model.predict(validation), {"model": C.PREDICTION})["model"]["rmse"]
    known = validation.join(model.als.userFactors.selectExpr(f"id AS {C.USER_INDEX}"), C.USER_INDEX).cache()
    relevant, sample = ranking_sample(known, ranking_users)
    seen = rows_of_ranked_users(fit_split, relevant, sample)
    score = ranking_metrics(top_n_unseen(model, seen, k, users=relevant), relevant, k)[f"ndcg_at_{k}"]
    known.unpersist()  # the cached frame, sampled or not: tuning scores up to 18 candidates in one session
    return score


def ranking_users_arg(text: str) -> int:
    """--ranking-users: 0 (every user) or at least MIN_RANKING_USERS."""
    import argparse

    value = int(text)
    if value != 0 and value < MIN_RANKING_USERS:
        raise argparse.ArgumentTypeError(
            f"ranking_users is {value}: use 0 to rank every held-out user, or at least {MIN_RANKING_USERS} "
            "(fewer say too little to judge a model)"
        )
    return value


def song_popularity(train):
    """item_index, plays (training interactions), popular: the song is in the top POPULAR_SHARE (cached)."""
    import math

    from pyspark.sql import Window
    from pyspark.sql import functions as F

    counts = train.groupBy(C.ITEM_INDEX).agg(F.count("*").alias("plays")).cache()
    songs = counts.count()
    top = max(1, math.ceil(POPULAR_SHARE * songs))
    place = F.row_number().over(Window.orderBy(F.col("plays").desc(), C.ITEM_INDEX))
    return counts.withColumn("popular", place <= top)


def diversity(recommended, popularity) -> dict[str, float]:
    """coverage: distinct songs recommended / songs in the training catalogue; popular_share:
    the share of recommendations that go to the POPULAR_SHARE most played songs."""
    from pyspark.sql import functions as F

    joined = recommended.join(popularity, C.ITEM_INDEX, "left")
    row = joined.agg(
        F.countDistinct(C.ITEM_INDEX).alias("songs"), F.count("*").alias("rows"),
        F.sum(F.col("popular").cast("int")).alias("popular"),
    ).first()
    catalogue = popularity.count()
    rows = row["rows"] or 0
    return {
        "coverage": (row["songs"] / catalogue) if catalogue else 0.0,
        "popular_share": (row["popular"] or 0) / rows if rows else 0.0,
    }


PLOT_POINTS = 5000  # points per scatter in the report: enough to see the shape, small in HTML


def plot_samples(scored, recommended, relevant, popularity, k: int) -> dict:
    """What the report plots, as plain lists (at most PLOT_POINTS each, a fixed sample)."""
    from pyspark.sql import functions as F

    plots: dict = {}
    if scored is not None:
        pairs = scored.select(C.RATING, C.PREDICTION).orderBy(F.xxhash64(C.USER_INDEX, C.ITEM_INDEX)).limit(PLOT_POINTS)
        plots["predicted_vs_actual"] = [[float(r[0]), float(r[1])] for r in pairs.collect()]
    else:
        truth = relevant.groupBy(C.USER_INDEX).agg(F.collect_set(C.ITEM_INDEX).alias("truth"))
        lists = recommended.groupBy(C.USER_INDEX).agg(F.sort_array(F.collect_list(F.struct("rank", C.ITEM_INDEX))).alias("top"))
        users = truth.join(lists, C.USER_INDEX, "left").orderBy(F.xxhash64(C.USER_INDEX)).limit(PLOT_POINTS).collect()
        plots["user_ndcg"] = [user_ndcg([t[C.ITEM_INDEX] for t in (r["top"] or [])], set(r["truth"]), k) for r in users]
    counts = recommended.groupBy(C.ITEM_INDEX).agg(F.count("*").alias("times"))
    songs = popularity.join(counts, C.ITEM_INDEX, "left").orderBy(F.xxhash64(C.ITEM_INDEX)).limit(PLOT_POINTS)
    plots["popularity_vs_recommended"] = [[int(r["plays"]), int(r["times"] or 0)] for r in songs.collect()]
    return plots


def user_ndcg(ranked: list, relevant: set, k: int) -> float:
    """NDCG@k of one user's list with binary relevance (the definition of Spark's RankingMetrics, as in metrics.ranking_metrics)."""
    import math

    gain = sum(1.0 / math.log2(place + 2) for place, item in enumerate(ranked[:k]) if item in relevant)
    ideal = sum(1.0 / math.log2(place + 2) for place in range(min(len(relevant), k)))
    return gain / ideal if ideal else 0.0
