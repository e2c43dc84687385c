"""Biased ALS, its persistence, and the metric functions on hand-checked numbers."""

from __future__ import annotations

import math

import pytest

from musicrec import columns as C
from musicrec.metrics import bias_baseline, ranking_metrics, rating_errors
from musicrec.model import AlsParams, fit, load


def ratings_frame(spark, rows):
    return spark.createDataFrame(rows, f"{C.USER_INDEX} int, {C.ITEM_INDEX} int, {C.RATING} double")


def test_rating_errors_by_hand(spark):
    frame = spark.createDataFrame([(4.0, 3.0), (2.0, 4.0), (5.0, 5.0)], f"{C.RATING} double, {C.PREDICTION} double")
    errors = rating_errors(frame)
    assert errors["rmse"] == pytest.approx(math.sqrt((1 + 4 + 0) / 3))
    assert errors["mae"] == pytest.approx(1.0)
    assert errors["rows"] == 3


def test_bias_baseline_by_hand(spark):
    # At the production lambda = 5, with users who rate differently and songs with non-zero biases:
    # mu = 18 / 6 = 3.
    # b_i = sum(r - mu) / (n_i + 5): song 0 (5, 3) -> 2/7; song 1 (4, 2) -> 0; song 2 (1, 3) -> -2/7.
    # b_u = sum(r - mu - b_i) / (n_u + 5): user 0 ((5-3-2/7) + (4-3-0)) / 7 = 19/49;
    #   user 1 ((3-3-2/7) + (1-3+2/7)) / 7 = -2/7; user 2 ((2-3-0) + (3-3+2/7)) / 7 = -5/49.
    # (Without b_i, user 0 would get 3/7; with lambda 0, 19/14.)
    from musicrec.metrics import BIAS_REGULARIZATION

    assert BIAS_REGULARIZATION == 5.0
    train = ratings_frame(spark, [(0, 0, 5.0), (0, 1, 4.0), (1, 0, 3.0), (1, 2, 1.0), (2, 1, 2.0), (2, 2, 3.0)])
    mu, users, items = bias_baseline(train)
    assert mu == pytest.approx(3.0)
    assert {r[C.ITEM_INDEX]: r["b_i"] for r in items.collect()} == pytest.approx({0: 2 / 7, 1: 0.0, 2: -2 / 7})
    assert {r[C.USER_INDEX]: r["b_u"] for r in users.collect()} == pytest.approx({0: 19 / 49, 1: -2 / 7, 2: -5 / 49})


def test_ranking_metrics_by_hand(spark):
    # k = 3. Rows are given out of rank order, and item IDs fall as rank rises for users 0 and 2,
    # so sorting by item instead of rank changes every NDCG and MAP below.
    recommended = spark.createDataFrame(
        [(0, 20, 3), (0, 10, 2), (0, 30, 1), (2, 60, 2), (2, 61, 1), (3, 70, 1)], f"{C.USER_INDEX} int, {C.ITEM_INDEX} int, rank int"
    )
    # user 0: hits at ranks 2 and 3 of 3 relevant; user 1: relevant songs but no recommendation at
    # all (counts, with zeros); user 2: hit at rank 2 of 1 relevant; user 3: nothing relevant (left out).
    relevant = spark.createDataFrame([(0, 10), (0, 20), (0, 40), (1, 50), (2, 60)], f"{C.USER_INDEX} int, {C.ITEM_INDEX} int")
    scores = ranking_metrics(recommended, relevant, k=3)
    ideal_3 = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert scores["ranking_users"] == 3
    assert scores["precision_at_3"] == pytest.approx((2 / 3 + 0 + 1 / 3) / 3)
    assert scores["recall_at_3"] == pytest.approx((2 / 3 + 0 + 1) / 3)
    assert scores["ndcg_at_3"] == pytest.approx(((1 / math.log2(3) + 1 / math.log2(4)) / ideal_3 + 0 + 1 / math.log2(3)) / 3)
    assert scores["map_at_3"] == pytest.approx(((1 / 2 + 2 / 3) / 3 + 0 + (1 / 2) / 1) / 3)


def test_ranking_metrics_match_spark_ranking_evaluator(spark):
    """One aggregation computes what Spark's RankingEvaluator computes metric by metric, on lists
    shorter and longer than k, users without a recommendation and more relevant songs than k."""
    import random

    from pyspark.ml.evaluation import RankingEvaluator
    from pyspark.sql import functions as F

    rng = random.Random(7)
    recommended, relevant = [], []
    for user in range(40):
        for rank, item in enumerate(rng.sample(range(30), rng.choice([0, 2, 5, 8])), start=1):
            recommended.append((user, item, rank))
        relevant += [(user, item) for item in rng.sample(range(30), rng.randint(1, 12))]
    recommended = spark.createDataFrame(recommended, f"{C.USER_INDEX} int, {C.ITEM_INDEX} int, rank int")
    relevant = spark.createDataFrame(relevant, f"{C.USER_INDEX} int, {C.ITEM_INDEX} int")
    k = 5
    scores = ranking_metrics(recommended, relevant, k)

    lists = recommended.groupBy(C.USER_INDEX).agg(
        F.transform(F.array_sort(F.collect_list(F.struct("rank", C.ITEM_INDEX))), lambda s: s[C.ITEM_INDEX].cast("double")).alias("prediction")
    )
    truth = relevant.groupBy(C.USER_INDEX).agg(F.collect_list(F.col(C.ITEM_INDEX).cast("double")).alias("label"))
    joined = truth.join(lists, C.USER_INDEX, "left").select(
        F.coalesce("prediction", F.array().cast("array<double>")).alias("prediction"), "label"
    )
    evaluator = RankingEvaluator(k=k, predictionCol="prediction", labelCol="label")
    spark_names = {"precision": "precisionAtK", "recall": "recallAtK", "ndcg": "ndcgAtK", "map": "meanAveragePrecisionAtK"}
    for name, metric in spark_names.items():
        assert scores[f"{name}_at_{k}"] == pytest.approx(evaluator.setMetricName(metric).evaluate(joined), rel=1e-9), name
    assert scores["ranking_users"] == 40


def test_biased_als_beats_its_own_biases_and_survives_save_load(spark, tmp_path):
    """On data with a real taste structure the factors must add to the biases."""
    import random

    rng = random.Random(3)
    taste = {u: rng.choice([-1, 1]) for u in range(60)}
    kind = {i: rng.choice([-1, 1]) for i in range(40)}
    rows = [(u, i, 3.0 + 1.5 * taste[u] * kind[i] + rng.gauss(0, 0.3)) for u in range(60) for i in range(40) if rng.random() < 0.5]
    train, test = ratings_frame(spark, rows).randomSplit([0.8, 0.2], seed=1)
    model = fit(train, AlsParams(rank=4, reg_param=0.05, max_iter=8), str(tmp_path / "ck"))
    scored = model.predict_baseline(model.predict(test), "baseline_prediction")
    als_rmse, bias_rmse = rating_errors(scored)["rmse"], rating_errors(scored, "baseline_prediction")["rmse"]
    assert als_rmse < 0.6 * bias_rmse

    model.save(tmp_path / "model")
    reloaded = load(spark, tmp_path / "model")
    assert reloaded.params == model.params
    assert rating_errors(reloaded.predict(test))["rmse"] == pytest.approx(als_rmse, rel=1e-6)
